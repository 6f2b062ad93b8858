//! Content blobs (document files): `POST /v1/blobs` stores the raw body
//! under its SHA-256 for the official who sent it, `GET /v1/blobs/{sha256}`
//! returns it to them; everyone else reads a file through a document they
//! may read (`GET /v1/documents/{id}/content/{sha256}`). Drafts refer to
//! their content by these hashes, and signatures cover the hashes.
//!
//! Each official may keep `blobs.quota_bytes` uploaded that no document
//! cites; uploads no document cites are collected `blobs.grace_hours` after
//! the upload (or the last draft command that tried to cite them).
//!
//! Must never: accept a body over the configured blob limit or from anyone
//! but an official, store a blob under any name but its own hash, hand a
//! blob to someone who neither uploaded it nor may read a document citing
//! it, or collect a blob a document cites.

use std::time::Duration;

use actix_web::{get, post, web, HttpResponse};
use serde_json::json;

use super::auth::Caller;
use super::problem::{from_store, Kind, Problem};
use super::AppState;
use crate::projections::citations;

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
}

impl BlobPolicy {
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            limit: config.blob_limit,
            quota: config.blobs.quota_bytes,
            grace: chrono::Duration::hours(
                i64::try_from(config.blobs.grace_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
            uploading: tokio::sync::Mutex::new(()),
        }
    }
}

/// `POST /v1/blobs`: raw bytes in, `{sha256, size}` out.
#[utoipa::path(tag = "blobs", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "{sha256, size}; Location"), (status = 401), (status = 403),
              (status = 413, description = "over the blob limit, or over the uploader's quota (type quota-exceeded)")))]
#[post("/v1/blobs")]
pub(crate) async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    if !caller.is_official() {
        return Err(Problem::forbidden(
            "only officials upload document files; integration clients do not",
        ));
    }
    let policy = &state.docs.blobs;
    let body = super::body::read_body(payload, policy.limit).await?;
    let sha256 = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&body))
    };
    let _one_at_a_time = policy.uploading.lock().await;
    let pending = pending_bytes(&state, &caller.id, &sha256).await?;
    if pending.saturating_add(body.len() as u64) > policy.quota {
        return Err(Problem::new(Kind::QuotaExceeded,
            "Over your upload quota",
        )
        .with_detail(format!(
            "you have {pending} bytes uploaded that no document cites; with these {} bytes that would pass your quota of {} bytes. Cite your files in drafts, or wait for uploads no document cites to be collected ({} hours after upload)",
            body.len(),
            policy.quota,
            policy.grace.num_hours()
        ))
        .with("quota", policy.quota)
        .with("pending", pending));
    }
    let now = state.docs.clock.now().timestamp();
    let (stored, new) = state
        .blobs
        .put(&body, &caller.id, now)
        .await
        .map_err(from_store)?;
    debug_assert_eq!(stored, sha256);
    if new {
        crate::metrics::blob_stored(body.len());
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/blobs/{sha256}")))
        .json(json!({ "sha256": sha256, "size": body.len() })))
}

/// Whether any document cites the blob (as far as the citations view has
/// read the log; without the view, every blob counts as cited, so nothing
/// is collected).
fn cited(state: &AppState, sha256: &str) -> Result<bool, Problem> {
    let Some(table) = state.projections.table(citations::NAME) else {
        return Ok(true);
    };
    Ok(!table
        .scan(citations::prefix(sha256).as_bytes(), None, 1)
        .map_err(from_store)?
        .is_empty())
}

/// Bytes `owner` has uploaded that no document cites, not counting `except`.
async fn pending_bytes(state: &AppState, owner: &str, except: &str) -> Result<u64, Problem> {
    let mut total = 0u64;
    for u in state.blobs.uploads(Some(owner)).await.map_err(from_store)? {
        if u.sha256 != except && !cited(state, &u.sha256)? {
            total = total.saturating_add(u.size);
        }
    }
    Ok(total)
}

/// Whether a document that cites the blob is one `caller` may read.
pub fn cited_by_readable(state: &AppState, caller: &str, sha256: &str) -> Result<bool, Problem> {
    let Some(table) = state.projections.table(citations::NAME) else {
        return Ok(false);
    };
    let prefix = citations::prefix(sha256);
    let rows = table
        .scan(prefix.as_bytes(), None, CITERS_CHECKED)
        .map_err(from_store)?;
    for (key, _) in rows {
        let Some(doc) = std::str::from_utf8(&key[prefix.len()..])
            .ok()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
        else {
            continue;
        };
        if super::loading::readable_by(state, caller, doc)? {
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
pub async fn collect(state: &AppState) -> Result<Option<Collected>, Problem> {
    let head = state.log.head();
    if !state
        .projections
        .wait(citations::NAME, head, Duration::from_secs(5))
        .await
    {
        return Ok(None);
    }
    let before = (state.docs.clock.now() - state.docs.blobs.grace).timestamp();
    let mut done = Collected::default();
    for u in state.blobs.uploads(None).await.map_err(from_store)? {
        if u.at >= before || cited(state, &u.sha256)? {
            continue;
        }
        // Re-checked under the store's blob lock: an upload touched since
        // (a draft citing it) is newer now and stays.
        if let Some(freed) = state
            .blobs
            .collect(&u.sha256, &u.owner, before)
            .await
            .map_err(from_store)?
        {
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
    Ok(Some(done))
}

/// `GET /v1/blobs/{sha256}`: for the official who uploaded it; readers of a
/// document use `GET /v1/documents/{id}/content/{sha256}`.
#[utoipa::path(tag = "blobs", params(("sha256" = String, Path)),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"), (status = 401), (status = 404)))]
#[get("/v1/blobs/{sha256}")]
pub(crate) async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    sha256: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let owned = state
        .blobs
        .owned_by(&sha256, &caller.id)
        .await
        .map_err(from_store)?;
    if !owned {
        return Err(Problem::not_found().with_detail("no such blob of yours"));
    }
    send(&state, &sha256).await
}

/// The blob's bytes (404 if absent).
pub async fn send(state: &AppState, sha256: &str) -> Result<HttpResponse, Problem> {
    let bytes = state
        .blobs
        .get(sha256)
        .await
        .map_err(from_store)?
        .ok_or_else(|| Problem::not_found().with_detail("no such blob"))?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("ETag", format!("\"{sha256}\"")))
        .body(bytes))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload).service(download);
}
