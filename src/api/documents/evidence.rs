//! An issued document's evidence: the offline-verifiable bundle and its
//! files.
//!
//! Must never: hand out a file of a document the caller may not read.

use actix_web::{get, web, HttpResponse};

use crate::api::auth::Caller;
use crate::api::problem::{from_domain, Problem};
use crate::api::AppState;
use crate::bundle::{Bundle, Signed as BundleSigned, FORMAT};
use crate::domain::document::{self};

use super::*;

/// `GET /v1/documents/{id}/bundle`: everything needed to verify the issued
/// document offline (`vanthu verify bundle.json --trust root.pem`).
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "A vanthu.bundle.v1"), (status = 401), (status = 404), (status = 409)))]
#[get("/v1/documents/{id}/bundle")]
pub(crate) async fn bundle(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let (Some(sig), Some(issued)) = (&doc.signature, &doc.issue) else {
        return Err(from_domain(document::DomainError::WrongState {
            command: "bundle",
            state: doc.status.as_str(),
        }));
    };
    let (mut org, _) = crate::service::load::org_history(&state.log).map_err(internal)?;
    org.truncate(issued.org_version as usize);
    let bundle = Bundle {
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
    };
    Ok(HttpResponse::Ok().json(bundle))
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
    let doc = load_readable(&state, &caller, &id)?;
    if !doc.draft.content.iter().any(|c| c.sha256 == sha256) {
        return Err(Problem::not_found().with_detail("the document has no such file"));
    }
    crate::api::blobs::send(&state, &sha256)
}
