//! An issued document's evidence: the offline-verifiable bundle (the two
//! signatures, the organisation history the seal attests, the CRLs, and the
//! carried log records with tlog-proofs against a signed checkpoint), and a
//! document's files for those who may read it.
//!
//! Must never: hand out a file or a record of a document the caller may not
//! read (the caller's view is `domain::access`'s), or speak HTTP.

use crate::bundle::{Bundle, LogEvidence, LoggedRecord, Signed as BundleSigned, FORMAT};
use crate::domain::access;
use crate::domain::document::{self, DomainError};
use crate::store::tree::TreeReader;
use crate::store::{RocksLog, StoreError};

use super::load::{readable, ReadError};
use super::Core;

/// How long a bundle waits for the signer to cover the document's records.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why there is no evidence to give.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// No such document for this caller.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// No such file (of the document).
    #[error("{0}")]
    NotFound(&'static str),
    /// The document is not issued yet.
    #[error(transparent)]
    WrongState(DomainError),
    /// The log has not signed a checkpoint covering the document's records.
    #[error("the document's last record is at position {last}; retry in a moment")]
    NotCovered { last: u64 },
    /// What the log holds does not make a bundle (missing or undecodable).
    #[error("{0}")]
    Broken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The offline bundle of document `id`, with the records `who` may see; for
/// a document from another system, the evidence its package carried.
pub async fn bundle_for(core: &Core, who: &str, id: &str) -> Result<Bundle, EvidenceError> {
    let doc = readable(core, who, id)?;
    // Another system's document: the evidence it came with, as it came.
    if let Some(origin) = &doc.origin {
        let evidence = &origin.from.evidence;
        let bytes = core
            .blobs
            .get(evidence)
            .await?
            .ok_or_else(|| EvidenceError::Broken(format!("evidence {evidence} is missing")))?;
        return serde_json::from_slice(&bytes)
            .map_err(|e| EvidenceError::Broken(format!("evidence {evidence}: {e}")));
    }
    let now = core.docs.clock.now();
    let org = core.org.snapshot();
    bundle_of(core, &doc, |event_type| {
        access::bundle_carries(&doc, &org, who, now, event_type)
    })
    .await
}

/// The offline bundle of an issued `doc`, with the records `carried`
/// (by event type) and their proofs.
pub async fn bundle_of(
    core: &Core,
    doc: &document::Document,
    carried: impl Fn(&str) -> bool,
) -> Result<Bundle, EvidenceError> {
    let (Some(sig), Some(issued)) = (&doc.signature, &doc.issue) else {
        return Err(EvidenceError::WrongState(DomainError::WrongState {
            command: "bundle",
            state: doc.status.as_str(),
        }));
    };
    let (mut org, _) = super::load::org_history(&core.log)?;
    org.truncate(issued.org_version as usize);
    // What the seal attests (seal v2: the authority-relevant events only).
    let org = crate::domain::signing::sealed_org(issued.seal_payload.seal_version, &org)
        .ok_or_else(|| EvidenceError::Broken("the seal is of an unknown version".into()))?;
    let log = log_evidence(core, doc, carried).await?;
    Ok(Bundle {
        format: FORMAT.into(),
        personal: BundleSigned {
            jws: sig.jws.clone(),
            payload: sig.payload.clone(),
            recorded_at: sig.at,
        },
        seal: BundleSigned {
            jws: issued.seal.clone(),
            payload: issued.seal_payload.clone(),
            recorded_at: issued.at,
        },
        crls: core.docs.crls.snapshot().pems.clone(),
        org,
        log: Some(log),
    })
}

/// The document's records `carries` picks, each with a tlog-proof
/// against the first checkpoint that covers them all.
async fn log_evidence(
    core: &Core,
    doc: &document::Document,
    carries: impl Fn(&str) -> bool,
) -> Result<LogEvidence, EvidenceError> {
    let stream = document::stream_id(doc.id);
    let records = core.log.read_stream(&stream, 1, usize::MAX)?;
    let carried: Vec<u64> = records
        .iter()
        .filter(|r| carries(&r.event_type))
        .map(|r| r.position)
        .collect();
    let last = carried.last().copied().unwrap_or_default();
    let Some(checkpoint) = core.tlog.covering(last, CHECKPOINT_WAIT).await else {
        return Err(EvidenceError::NotCovered { last });
    };
    let note = std::sync::Arc::clone(&checkpoint.note);
    let evidence = on_tree(&core.log, checkpoint.size, move |log, tree| {
        let mut out = Vec::with_capacity(carried.len());
        for position in carried {
            let bytes = log.record_bytes(position)?.ok_or(StoreError::Corrupt {
                position,
                reason: "record missing below the head".into(),
            })?;
            let path = crate::crypto::merkle::inclusion_proof(tree, position - 1, tree.size())?;
            out.push(LoggedRecord {
                position,
                record: String::from_utf8_lossy(&bytes).into_owned(),
                proof: crate::crypto::note::tlog_proof(position - 1, &path, &note),
            });
        }
        Ok(LogEvidence {
            checkpoint: String::from_utf8_lossy(&note).into_owned(),
            records: out,
        })
    })
    .await?;
    Ok(evidence)
}

/// Runs `f` on a blocking thread with the tree of `size` records (which
/// the caller checked the log has).
pub async fn on_tree<T: Send + 'static>(
    log: &RocksLog,
    size: u64,
    f: impl FnOnce(&RocksLog, &TreeReader<'_>) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || {
        let tree = log.tree_at(size).ok_or(StoreError::Closed)?;
        f(&log, &tree)
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

/// One of document `id`'s files, for a caller who may read the document.
pub async fn file_of(
    core: &Core,
    who: &str,
    id: &str,
    sha256: &str,
) -> Result<Vec<u8>, EvidenceError> {
    let doc = readable(core, who, id)?;
    if !doc.draft.content.iter().any(|c| c.sha256 == sha256) {
        return Err(EvidenceError::NotFound("the document has no such file"));
    }
    blob(core, sha256).await
}

/// A file's bytes by its hash (not found if absent).
pub async fn blob(core: &Core, sha256: &str) -> Result<Vec<u8>, EvidenceError> {
    core.blobs
        .get(sha256)
        .await?
        .ok_or(EvidenceError::NotFound("no such blob"))
}
