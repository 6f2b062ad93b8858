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

use actix_web::{get, post, web, HttpResponse};
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::problem::{from_store, Kind, Problem};
use crate::http::AppState;
use crate::service::blobs;

/// `POST /v1/blobs`: raw bytes in, `{sha256, size}` out.
#[utoipa::path(tag = "blobs", request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "{sha256, size}; Location"), (status = 400, description = "an empty body"), (status = 401), (status = 403),
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
    if body.is_empty() {
        return Err(Problem::bad_request(
            "the body is empty: send the file's bytes (a document file is never empty)",
        ));
    }
    let sha256 = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&body))
    };
    let _one_at_a_time = policy.uploading.lock().await;
    let pending = blobs::pending_bytes(&state, &caller.id, &sha256)
        .await
        .map_err(from_store)?;
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
        crate::http::metrics::blob_stored(body.len());
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/blobs/{sha256}")))
        .json(json!({ "sha256": sha256, "size": body.len() })))
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
    let bytes = crate::service::evidence::blob(&state, &sha256).await?;
    Ok(super::documents::file_response(&sha256, bytes))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload).service(download);
}
