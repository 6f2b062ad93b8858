//! An issued document's evidence: the offline-verifiable bundle and its
//! files.
//!
//! Must never: hand out a file of a document the caller may not read.

use actix_web::{get, web, HttpResponse};

use crate::api::auth::Caller;
use crate::api::problem::{from_domain, Problem};
use crate::api::AppState;
use crate::bundle::{Bundle, LogEvidence, LoggedRecord, Signed as BundleSigned, FORMAT};
use crate::domain::access;
use crate::domain::document::{self};

use super::*;

/// `GET /v1/documents/{id}/bundle`: everything needed to verify the issued
/// document offline (`vanthu verify bundle.json --trust root.pem`); for a
/// document from another system, the evidence its package carried.
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "A vanthu.bundle.v1"), (status = 401), (status = 404), (status = 409)))]
#[get("/v1/documents/{id}/bundle")]
pub(crate) async fn bundle(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(bundle_for(&state, &caller, &id).await?))
}

fn broken(detail: String) -> Problem {
    Problem::new(crate::api::problem::Kind::Internal, "Internal error").with_detail(detail)
}

/// The offline bundle of document `id`, with the records the caller may see.
pub(crate) async fn bundle_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Bundle, Problem> {
    let doc = load_readable(state, caller, id)?;
    // Another system's document: the evidence it came with, as it came.
    if let Some(origin) = &doc.origin {
        let bytes = state
            .blobs
            .get(&origin.from.evidence)
            .await
            .map_err(crate::api::problem::from_store)?
            .ok_or_else(|| broken(format!("evidence {} is missing", origin.from.evidence)))?;
        return serde_json::from_slice(&bytes)
            .map_err(|e| broken(format!("evidence {}: {e}", origin.from.evidence)));
    }
    let now = state.docs.clock.now();
    let org = state.org.snapshot();
    bundle_of(state, &doc, |event_type| {
        access::bundle_carries(&doc, &org, &caller.id, now, event_type)
    })
    .await
}

/// The offline bundle of an issued `doc`, with the records `carried`
/// (by event type) and their proofs.
pub(crate) async fn bundle_of(
    state: &AppState,
    doc: &document::Document,
    carried: impl Fn(&str) -> bool,
) -> Result<Bundle, Problem> {
    let (Some(sig), Some(issued)) = (&doc.signature, &doc.issue) else {
        return Err(from_domain(document::DomainError::WrongState {
            command: "bundle",
            state: doc.status.as_str(),
        }));
    };
    let (mut org, _) = crate::service::load::org_history(&state.log).map_err(internal)?;
    org.truncate(issued.org_version as usize);
    // What the seal attests (seal v2: the authority-relevant events only).
    let org = crate::domain::signing::sealed_org(issued.seal_payload.seal_version, &org)
        .ok_or_else(|| broken("the seal is of an unknown version".into()))?;
    let log = log_evidence(state, doc, carried).await?;
    let out = Bundle {
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
        crls: state.docs.crls.snapshot().pems.clone(),
        org,
        log: Some(log),
    };
    Ok(out)
}

/// How long a bundle waits for the signer to cover the document's records.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The document's records `carries` picks, each with a tlog-proof
/// against the first checkpoint that covers them all.
async fn log_evidence(
    state: &AppState,
    doc: &document::Document,
    carries: impl Fn(&str) -> bool,
) -> Result<LogEvidence, Problem> {
    let stream = document::stream_id(doc.id);
    let records = state
        .log
        .read_stream(&stream, 1, usize::MAX)
        .map_err(internal)?;
    let carried: Vec<u64> = records
        .iter()
        .filter(|r| carries(&r.event_type))
        .map(|r| r.position)
        .collect();
    let last = carried.last().copied().unwrap_or_default();
    let Some(checkpoint) = state.tlog.covering(last, CHECKPOINT_WAIT).await else {
        return Err(Problem::new(
            crate::api::problem::Kind::Unavailable,
            "The log has not signed a checkpoint covering this document yet",
        )
        .with_detail(format!(
            "the document's last record is at position {last}; retry in a moment"
        )));
    };
    let note = std::sync::Arc::clone(&checkpoint.note);
    crate::api::log::on_tree(state, checkpoint.size, move |log, tree| {
        let mut out = Vec::with_capacity(carried.len());
        for position in carried {
            let bytes = log
                .record_bytes(position)?
                .ok_or(crate::store::StoreError::Corrupt {
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
    .await
}

/// `GET /v1/documents/{id}/content/{sha256}`: one of the document's files,
/// for anyone who may read the document.
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path), ("sha256" = String, Path)),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"), (status = 401), (status = 404)))]
#[get("/v1/documents/{id}/content/{sha256}")]
pub(crate) async fn content(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, sha256) = path.into_inner();
    content_for(&state, &caller, &id, &sha256).await
}

/// One of document `id`'s files, for a caller who may read the document.
pub(crate) async fn content_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
    sha256: &str,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(state, caller, id)?;
    if !doc.draft.content.iter().any(|c| c.sha256 == sha256) {
        return Err(Problem::not_found().with_detail("the document has no such file"));
    }
    crate::api::blobs::send(state, sha256).await
}
