//! The offline check (`vanthu check`, and `restore` before it puts a
//! backup in place): every record re-hashed, the Merkle tree recomputed
//! from the leaves, and the newest checkpoint's root compared.
//!
//! Must never: write to the store it checks (it opens read-only), or run
//! against a store a service has open and call that a verdict.

use std::path::Path;

use rocksdb::IteratorMode;

use super::codec::keys;
use super::rocks::{self, CF_CHECKPOINTS};
use super::{tree, StoreError};

/// What `check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Records re-hashed, the head, the last record's time.
    pub tail: rocks::TailReport,
    /// The Merkle tree recomputed from the leaves and compared with every
    /// stored hash (`None`: the log predates the tree and was not opened
    /// by a version that builds it yet).
    pub tree: Option<tree::Recomputed>,
    /// The newest signed checkpoint's tree size, if any; its root was
    /// found equal to the recomputed tree's at that size.
    pub checkpoint: Option<u64>,
}

/// Verifies every record of the log at `path`: positions gapless, records
/// decodable, leaf hashes intact; then recomputes the Merkle tree from the
/// leaves and compares every stored hash, and the newest checkpoint's root
/// (its signature is not checked: that needs the log's verifier key). The
/// service must not be running.
pub fn check(path: &Path) -> Result<CheckReport, StoreError> {
    if !path.join("CURRENT").exists() {
        return Err(StoreError::Io(
            path.display().to_string(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no event log here"),
        ));
    }
    let db = rocks::open_read_only(path)?;
    if [rocks::CF_LOG, rocks::CF_LEAVES]
        .iter()
        .any(|name| db.cf_handle(name).is_none())
    {
        // Killed before the first open created the log's families: no record
        // was ever written (families come before any append).
        return Ok(CheckReport {
            tail: rocks::TailReport {
                head: 0,
                verified: 0,
                last_recorded_at: None,
            },
            tree: None,
            checkpoint: None,
        });
    }
    let tail = rocks::verify_tail(&db, u64::MAX)?;
    let tree = match db.cf_handle(rocks::CF_TREE) {
        Some(_) => Some(tree::verify(&db, tail.head)?),
        None => None,
    };
    let mut checkpoint = None;
    if let Some(family) = db.cf_handle(CF_CHECKPOINTS) {
        if let Some(item) = db.iterator_cf(&family, IteratorMode::End).next() {
            let (k, note) = item?;
            let size = keys::parse_position(&k)?;
            let corrupt = |reason: String| StoreError::Corrupt {
                position: size,
                reason,
            };
            let stated = signed_note::Note::from_bytes(&note)
                .map_err(|e| corrupt(format!("the newest checkpoint is not a note: {e}")))
                .and_then(|n| {
                    crate::crypto::note::Checkpoint::parse_body(n.text())
                        .map_err(|e| corrupt(format!("the newest checkpoint: {e}")))
                })?;
            if size > tail.head {
                return Err(corrupt(format!(
                    "a checkpoint of {size} records was signed but the log has {}",
                    tail.head
                )));
            }
            if stated.size != size || tree::reader(&db, size).root()? != stated.root {
                return Err(corrupt(
                    "the newest checkpoint's root is not the tree's at its size".into(),
                ));
            }
            checkpoint = Some(size);
        }
    }
    Ok(CheckReport {
        tail,
        tree,
        checkpoint,
    })
}
