//! Document files: the limits on uploads ([`BlobPolicy`]), which uploads a
//! document cites (the citations view), whose quota an upload counts
//! against, and the collection of uploads no document cites after the
//! grace period.
//!
//! Must never: collect a file a document cites, or one whose citing draft
//! the citations view has not read yet (collection waits for the view to
//! reach the log's head first); or speak HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::projections::citations;
use crate::store::StoreError;

use super::Core;

/// How many documents citing a blob are looked at when deciding whether a
/// caller may cite it because they may read one of them.
const CITERS_CHECKED: usize = 64;

/// Limits on document files.
pub struct BlobPolicy {
    /// Largest file, bytes.
    pub limit: usize,
    /// Bytes an official may have uploaded that no document cites.
    pub quota: u64,
    /// Age after which an upload no document cites is collected.
    pub grace: chrono::Duration,
    /// Held from an upload's quota check to its write, so concurrent
    /// uploads cannot together pass the quota.
    pub uploading: tokio::sync::Mutex<()>,
    /// Complete collection passes so far (`/readyz` shows it, so a test can
    /// wait for a pass instead of sleeping).
    passes: AtomicU64,
}

impl BlobPolicy {
    /// Limits of `limit` bytes per file, `quota` bytes of uncited uploads
    /// per official, collected after `grace_hours`.
    pub fn new(limit: usize, quota: u64, grace_hours: u64) -> Self {
        Self {
            limit,
            quota,
            grace: chrono::Duration::hours(
                i64::try_from(grace_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
            uploading: tokio::sync::Mutex::new(()),
            passes: AtomicU64::new(0),
        }
    }

    /// Complete collection passes since the service started.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Acquire)
    }
}

/// Whether any document cites the blob (as far as the citations view has
/// read the log; without the view, every blob counts as cited, so nothing
/// is collected).
fn cited(core: &Core, sha256: &str) -> Result<bool, StoreError> {
    let Some(table) = core.projections.table(citations::NAME) else {
        return Ok(true);
    };
    Ok(!table
        .scan(citations::prefix(sha256).as_bytes(), None, 1)?
        .is_empty())
}

/// Bytes `owner` has uploaded that no document cites, not counting `except`.
pub async fn pending_bytes(core: &Core, owner: &str, except: &str) -> Result<u64, StoreError> {
    let mut total = 0u64;
    for u in core.blobs.uploads(Some(owner)).await? {
        if u.sha256 != except && !cited(core, &u.sha256)? {
            total = total.saturating_add(u.size);
        }
    }
    Ok(total)
}

/// Whether a document that cites the blob is one `caller` may read.
pub fn cited_by_readable(core: &Core, caller: &str, sha256: &str) -> Result<bool, StoreError> {
    let Some(table) = core.projections.table(citations::NAME) else {
        return Ok(false);
    };
    let prefix = citations::prefix(sha256);
    let rows = table.scan(prefix.as_bytes(), None, CITERS_CHECKED)?;
    for (key, _) in rows {
        let Some(doc) = std::str::from_utf8(&key[prefix.len()..])
            .ok()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            continue;
        };
        if super::load::readable_by(core, caller, doc)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What one collection pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub uploads: u64,
    pub bytes: u64,
}

/// Collects uploads older than the grace period that no document cites.
/// Runs only once the citations view has read the whole log as it stood
/// when the pass began (else it could miss a fresh citation); None if the
/// view did not catch up within a few seconds.
pub async fn collect(core: &Core) -> Result<Option<Collected>, StoreError> {
    let head = core.log.head();
    if !core
        .projections
        .wait(citations::NAME, head, Duration::from_secs(5))
        .await
    {
        return Ok(None);
    }
    let policy = &core.docs.blobs;
    let before = (core.docs.clock.now() - policy.grace).timestamp();
    let mut done = Collected::default();
    for u in core.blobs.uploads(None).await? {
        if u.at >= before || cited(core, &u.sha256)? {
            continue;
        }
        // Re-checked under the store's blob lock: an upload touched since
        // (a draft citing it) is newer now and stays.
        if let Some(freed) = core.blobs.collect(&u.sha256, &u.owner, before).await? {
            done.uploads += 1;
            done.bytes += freed;
        }
    }
    if done.uploads > 0 {
        tracing::info!(
            uploads = done.uploads,
            bytes = done.bytes,
            "collected uploads no document cites"
        );
    }
    policy.passes.fetch_add(1, Ordering::AcqRel);
    Ok(Some(done))
}
