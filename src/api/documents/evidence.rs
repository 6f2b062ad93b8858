//! An issued document's evidence over HTTP: `GET /v1/documents/{id}/bundle`
//! and `GET /v1/documents/{id}/content/{sha256}` (`service::evidence` makes
//! them).
//!
//! Must never: hand out a file of a document the caller may not read.

use actix_web::{get, web, HttpResponse};

use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::service::evidence;

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
    Ok(HttpResponse::Ok().json(evidence::bundle_for(&state, &caller.id, &id).await?))
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
    let bytes = evidence::file_of(&state, &caller.id, &id, &sha256).await?;
    Ok(file_response(&sha256, bytes))
}

/// A file's bytes as a response, its hash as its `ETag`.
pub fn file_response(sha256: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("ETag", format!("\"{sha256}\"")))
        .body(bytes)
}
