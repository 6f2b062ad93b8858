//! The HTTP API: an actix-web application factory shared by `vanthu serve`
//! and the tests, with the service's routes, body limits and JSON error
//! handling.
//!
//! Must never: carry business rules (they live in `domain`) or touch RocksDB
//! directly (everything goes through `store::RocksLog`).

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod body;
pub mod dev;
pub mod documents;
pub mod interchange;
pub mod loading;
pub mod log;
pub mod openapi;
pub mod ops;
pub mod org;
pub mod problem;
pub mod queries;
pub mod request_id;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::store::{BlobStore, EventLog, RocksLog};
use problem::Problem;

/// Largest JSON body accepted (DESIGN §7).
pub const JSON_LIMIT: usize = 1 << 20;

/// What every handler can reach.
pub struct AppState {
    /// This node's log: the one written (RocksDB backend) or the local
    /// replica of the JetStream stream; every read and projection uses it.
    pub log: RocksLog,
    /// Where appends go (`store.backend`): `log` itself, or JetStream.
    pub events: Arc<dyn EventLog>,
    /// Where document files go: `log`'s blobs, or JetStream's object store.
    pub blobs: Arc<dyn BlobStore>,
    pub org: Arc<org::OrgState>,
    pub tokens: auth::TokenVerifier,
    pub docs: documents::Services,
    pub projections: std::sync::Arc<crate::projections::Projections>,
    /// The checkpoint signer and the newest checkpoint.
    pub tlog: Arc<crate::tlog::Checkpoints>,
    /// How far back an organisation change may take effect (with a reason).
    pub org_backdate_window: chrono::Duration,
    /// Where `POST /v1/admin/backups` puts backups.
    pub backup_dir: std::path::PathBuf,
    /// The pages under `/ui/`: sessions and sign-in.
    pub ui: crate::ui::Pages,
    /// Webhook deliveries: their table, re-drives, secrets.
    pub outbox: Arc<crate::outbox::dispatch::Sender>,
    /// The interchange's peers (who may post packages, with which secret).
    pub peers: Arc<crate::interchange::Peers>,
}

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

/// Registers every route and the JSON error handler on an app.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _req| Problem::bad_request(err.to_string()).into()),
            )
            .app_data(web::PathConfig::default().error_handler(|err, _req| {
                Problem::not_found().with_detail(err.to_string()).into()
            }))
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|err, _req| Problem::bad_request(err.to_string()).into()),
            )
            .default_service(web::to(unrouted));
        routes(&mut utoipa_actix_web::service_config::ServiceConfig::new(
            cfg,
        ));
        cfg.service(openapi::serve)
            .configure(dev::routes)
            .configure(crate::ui::routes);
    }
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

/// A request no route took: 405 with `Allow` (RFC 9110 §15.5.6) when the
/// path is a documented route's and only the method is wrong, else 404.
async fn unrouted(req: HttpRequest) -> HttpResponse {
    let allowed = openapi::methods_of(req.path());
    if allowed.is_empty() {
        return actix_web::ResponseError::error_response(&Problem::not_found());
    }
    let problem = Problem::new(
        problem::Kind::MethodNotAllowed,
        "This route does not take this method",
    )
    .with_detail(format!("{} takes {}", req.path(), allowed.join(", ")));
    let mut resp = actix_web::ResponseError::error_response(&problem);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}
