//! The log as a transparency log, over HTTP: the C2SP tlog-tiles read API
//! under `/log/` (checkpoint, hash tiles, entry bundles), the log key, and
//! RFC 9162 inclusion and consistency proofs under `/v1/log/`.
//!
//! Checkpoints, tiles, proofs and the key reveal hashes only and are
//! public. Entry bundles are the records themselves (drafts, internal
//! correspondence, confidential documents): only an auditor reads them
//! (`domain::access::may_read_log_entries`).
//!
//! Must never: serve an entry bundle to anyone else, or serve a tile or a
//! proof beyond the durable head.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::crypto::merkle::{self, TilePath};
use crate::domain::access;
use crate::http::auth::Caller;
use crate::http::problem::{from_store, Problem};
use crate::http::AppState;
use crate::store::tree::TreeReader;
use crate::store::{RocksLog, StoreError};

/// Tiles never change once served: a year in any cache.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /log/checkpoint`: the newest signed checkpoint (C2SP
/// tlog-checkpoint as a signed note).
#[utoipa::path(tag = "log", security(), responses((status = 200, description = "The checkpoint note (text/plain)")))]
#[get("/log/checkpoint")]
pub(crate) async fn checkpoint(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(state.tlog.latest().note.to_vec())
}

/// `GET /log/tile/<L>/<N>[.p/<W>]` (hashes, public) and
/// `GET /log/tile/entries/<N>[.p/<W>]` (records, auditors only).
#[utoipa::path(tag = "log", security((), ("bearer" = [])), params(("path" = String, Path, description = "<L>/<N>[.p/<W>] or entries/<N>[.p/<W>], C2SP tlog-tiles encoding")),
    responses((status = 200, description = "The tile (application/octet-stream)"), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[get("/log/tile/{path:.*}")]
pub(crate) async fn tile(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let Some(wanted) = merkle::parse_tile_path(&path) else {
        return Err(Problem::bad_request(format!(
            "{:?} is not a tile path: <level>/<index>[.p/<width>] or entries/<index>[.p/<width>], the index in 3-digit groups (x001/x234/067)",
            path.as_str()
        )));
    };
    let (bytes, cache) = match wanted {
        TilePath::Hashes(t) => {
            let log = state.log.clone();
            let bytes = web::block(move || log.tile(t.level, t.index, t.width))
                .await
                .map_err(|_| Problem::not_found())?
                .map_err(from_store)?;
            (bytes, IMMUTABLE)
        }
        TilePath::Entries { index, width } => {
            let caller = crate::http::auth::authenticate(&req).await?;
            auditor(&state, &caller)?;
            let log = state.log.clone();
            let bytes = web::block(move || log.entry_bundle(index, width))
                .await
                .map_err(|_| Problem::not_found())?
                .map_err(from_store)?;
            (bytes, "private, no-store")
        }
    };
    let bytes = bytes.ok_or_else(|| {
        Problem::not_found().with_detail(format!(
            "the log does not have tile {path} (yet): it has {} records",
            state.log.head()
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .body(bytes))
}

/// Only an auditor reads the log's records.
fn auditor(state: &AppState, caller: &Caller) -> Result<(), Problem> {
    let now = state.docs.clock.now();
    if state
        .org
        .read(|org| access::may_read_log_entries(org, &caller.id, now))
    {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "entry bundles hold every record of the log (drafts and confidential documents included): only an official with the auditor role reads them; tiles of hashes are public",
        ))
    }
}

/// The log key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogKey {
    /// The log's origin, the key's name.
    pub origin: String,
    /// C2SP signed-note verifier key: `name+hexkeyid+base64(0x01‖public key)`.
    pub verifier_key: String,
}

/// `GET /v1/log/key`: the note verifier key that signs checkpoints, as
/// text (one line) or, with `Accept: application/json`, with its origin.
#[utoipa::path(tag = "log", security(), responses((status = 200,
    description = "The verifier key as one line of text, or, with `Accept: application/json`, LogKey",
    content((String = "text/plain"), (LogKey = "application/json")))))]
#[get("/v1/log/key")]
pub(crate) async fn key(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let vkey = state.tlog.verifier_key();
    let json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if json {
        HttpResponse::Ok().json(LogKey {
            origin: state.tlog.origin().to_owned(),
            verifier_key: vkey,
        })
    } else {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{vkey}\n"))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The record's position (its leaf index is `position - 1`).
    pub position: u64,
    /// The size of the tree to prove inclusion in (a checkpoint's).
    pub tree_size: u64,
}

/// An inclusion proof (RFC 9162 §2.1.3).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub position: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The record's leaf hash, base64 (recompute it: SHA-256(0x00 ‖ record)).
    pub leaf_hash: String,
    /// The audit path, base64, leaf sibling first.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/inclusion?position=P&tree_size=N`.
#[utoipa::path(tag = "log", security(), params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400)))]
#[get("/v1/log/proof/inclusion")]
pub(crate) async fn inclusion(
    state: web::Data<AppState>,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, Problem> {
    let InclusionQuery {
        position,
        tree_size,
    } = q.into_inner();
    within_head(&state, tree_size)?;
    if position == 0 || position > tree_size {
        return Err(Problem::bad_request(format!(
            "position {position} is not in a tree of {tree_size} records (positions start at 1)"
        )));
    }
    let (leaf, hashes) = on_tree(&state, tree_size, move |log, tree| {
        let leaf = log.leaf_hash(position)?.ok_or(StoreError::Corrupt {
            position,
            reason: "leaf hash missing below the head".into(),
        })?;
        Ok((
            leaf,
            merkle::inclusion_proof(tree, position - 1, tree_size)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(InclusionProof {
        position,
        leaf_index: position - 1,
        tree_size,
        leaf_hash: B64.encode(leaf),
        hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
}

/// A consistency proof (RFC 9162 §2.1.4).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Base64 hashes; empty when `from` is 0 or equals `to`.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/consistency?from=M&to=N`.
#[utoipa::path(tag = "log", security(), params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400)))]
#[get("/v1/log/proof/consistency")]
pub(crate) async fn consistency(
    state: web::Data<AppState>,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, Problem> {
    let ConsistencyQuery { from, to } = q.into_inner();
    within_head(&state, to)?;
    if from > to {
        return Err(Problem::bad_request(format!(
            "from ({from}) is larger than to ({to})"
        )));
    }
    let hashes = on_tree(&state, to, move |_, tree| {
        merkle::consistency_proof(tree, from, to)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ConsistencyProof {
        from,
        to,
        hashes: hashes.iter().map(|h| B64.encode(h)).collect(),
    }))
}

/// Runs `f` on a blocking thread with the tree of `size` records (which
/// the caller checked the log has).
async fn on_tree<T: Send + 'static>(
    state: &AppState,
    size: u64,
    f: impl FnOnce(&RocksLog, &TreeReader<'_>) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Problem> {
    crate::service::evidence::on_tree(&state.log, size, f)
        .await
        .map_err(from_store)
}

/// Refuses a tree size the log does not have yet.
fn within_head(state: &AppState, size: u64) -> Result<(), Problem> {
    let head = state.log.head();
    if size > head {
        return Err(Problem::bad_request(format!(
            "the log has {head} records; a tree of {size} does not exist yet"
        )));
    }
    Ok(())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(checkpoint)
        .service(tile)
        .service(key)
        .service(inclusion)
        .service(consistency);
}
