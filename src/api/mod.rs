//! The HTTP API: an actix-web application factory shared by `vanthu serve`
//! and the tests, with the service's routes, body limits and JSON error
//! handling.
//!
//! Must never: carry business rules (they live in `domain`) or touch RocksDB
//! directly (everything goes through `store::RocksLog`).

pub mod admin;
pub mod blobs;
pub mod body;
pub mod dev;
pub mod documents;
pub mod interchange;
pub mod log;
pub mod openapi;
pub mod ops;
pub mod org;
pub mod queries;
pub mod webhooks;

use actix_web::HttpRequest;

use crate::http::problem::Problem;

/// The request's `Idempotency-Key`, validated.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(v) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| crate::store::codec::validate_idempotency_key(k).is_ok())
        .ok_or_else(|| {
            Problem::bad_request("Idempotency-Key must be 1..255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// Every documented route, once: what the service serves and what its
/// OpenAPI document describes both come from this list (and each
/// handler's own `#[get]`/`#[post]` path).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(org::get_org)
        .service(org::post_event)
        .configure(documents::routes)
        .configure(queries::routes)
        .configure(blobs::routes)
        .configure(log::routes)
        .service(admin::backup)
        .configure(webhooks::routes)
        .configure(interchange::routes);
}
