//! Content blobs (document files): `POST /v1/blobs` stores the raw body
//! under its SHA-256, `GET /v1/blobs/{sha256}` returns it. Drafts refer to
//! their content by these hashes, and signatures cover the hashes.
//!
//! Must never: accept a body over the configured blob limit, or store a blob
//! under any name but its own hash.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::Caller;
use super::problem::{from_store, Problem};
use super::AppState;

/// `POST /v1/blobs`: raw bytes in, `{sha256, size}` out.
#[utoipa::path(post, path = "/v1/blobs", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "{sha256, size}; Location"), (status = 401), (status = 403), (status = 413)))]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    if !caller.is_official() {
        return Err(Problem::forbidden(
            "only officials upload document files; integration clients do not",
        ));
    }
    let body = super::documents::read_body(payload, state.docs.blob_limit).await?;
    let (sha256, _new) = state.log.put_blob(&body, &caller.id).map_err(from_store)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/blobs/{sha256}")))
        .json(json!({ "sha256": sha256, "size": body.len() })))
}

/// `GET /v1/blobs/{sha256}`: for the official who uploaded it; readers of a
/// document use `GET /v1/documents/{id}/content/{sha256}`.
#[utoipa::path(get, path = "/v1/blobs/{sha256}", params(("sha256" = String, Path)),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    sha256: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let owned = state
        .log
        .blob_owned_by(&sha256, &caller.id)
        .map_err(from_store)?;
    if !owned {
        return Err(Problem::not_found().with_detail("no such blob of yours"));
    }
    send(&state, &sha256)
}

/// The blob's bytes (404 if absent).
pub fn send(state: &AppState, sha256: &str) -> Result<HttpResponse, Problem> {
    let bytes = state
        .log
        .get_blob(sha256)
        .map_err(from_store)?
        .ok_or_else(|| Problem::not_found().with_detail("no such blob"))?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("ETag", format!("\"{sha256}\"")))
        .body(bytes))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/blobs", web::post().to(upload))
        .route("/v1/blobs/{sha256}", web::get().to(download));
}
