//! Operational endpoints outside `/v1`: liveness, readiness and metrics.
//!
//! `/healthz` says the process answers; `/readyz` says it can take writes
//! (the log writer has not stopped on a storage error, the disk is not
//! nearly full, no projection stopped, every CRL is current).
//!
//! Must never: do work proportional to the data size; probes run often.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::http::problem::{Kind, Problem};
use crate::http::AppState;

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(tag = "ops", security(), responses((status = 200, description = "The process is up")))]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Prometheus metrics in the text exposition format (`docs/OPERATIONS.md`
/// lists them and what to alert on).
#[utoipa::path(tag = "ops", security(), responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::http::metrics::observe(&state);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::http::metrics::install().render())
}

/// Readiness: 200 while the log accepts writes, 503 once its writer stopped.
#[utoipa::path(tag = "ops", security(), responses((status = 200, description = "The log accepts writes; its head position"), (status = 503)))]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    readiness(&state).map(|ready| HttpResponse::Ok().json(ready))
}

/// What `/readyz` answers, for the HTTP route and the control socket's
/// `ready` (`vanthu probe`): the ready report, or the problem that stops it.
pub fn readiness(state: &AppState) -> Result<serde_json::Value, Problem> {
    let log = state.log.health();
    let mut projections = state.projections.progress();
    projections.extend(state.outbox.progress());
    let stopped: Vec<&str> = projections
        .iter()
        .filter(|p| p.error.is_some())
        .map(|p| p.name)
        .collect();
    let crls = state.docs.crls.status();
    let expired = state.docs.crls.expired(state.docs.clock.now());
    let storage = state.log.space();
    if log.writable && stopped.is_empty() && expired.is_empty() && !storage.low {
        Ok(
            json!({ "status": "ready", "log": log, "projections": projections, "crls": crls, "storage": storage,
                    "outbox": state.outbox.activity(), "blobs": { "collections": state.docs.blobs.passes() } }),
        )
    } else if log.writable && storage.low {
        Err(Problem::new(Kind::NotReady,
            "The disk is nearly full",
        )
        .with_detail(format!(
            "{} bytes available; the service keeps {} free and needs room beyond that for a write of up to {}: writes that do not fit are refused (507 storage-full) until space is freed; reads go on",
            storage.available_bytes.unwrap_or_default(),
            storage.min_free_bytes,
            storage.headroom_bytes
        ))
        .with("storage", &storage)
        .with("log", &log))
    } else if log.writable && stopped.is_empty() {
        Err(Problem::new(Kind::NotReady,
            "A revocation list is out of date",
        )
        .with_detail(format!(
            "the newest CRL of {} is past its nextUpdate: signatures under it are refused (INDETERMINATE/TRY_LATER) until a current CRL is loaded",
            expired.join("; ")
        ))
        .with("crls", &crls)
        .with("projections", &projections))
    } else if log.writable {
        Err(Problem::new(Kind::NotReady, "A projection stopped")
            .with_detail(format!("stopped: {}", stopped.join(", ")))
            .with("projections", &projections))
    } else {
        Err(
            Problem::new(Kind::NotReady, "The event log is not accepting writes")
                .with_detail(log.error.clone().unwrap_or_default())
                .with("storage", &storage)
                .with("log", &log),
        )
    }
}
