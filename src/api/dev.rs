//! Development-only endpoints: `POST /v1/dev/clock` moves the service
//! clock forward so deadlines can be shown passing (the demo's late reply,
//! tests of deadline states). Enabled only with `dev_clock = true`.
//!
//! Must never: be reachable when the clock is not adjustable (404 then), or
//! be used by anyone but an admin.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::http::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    #[serde(default)]
    pub days: i64,
    #[serde(default)]
    pub hours: i64,
}

/// `GET /v1/dev/clock`: the service's now and its offset from system time.
pub async fn get_clock(
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, Problem> {
    let clock = &state.docs.clock;
    if !clock.adjustable() {
        return Err(Problem::not_found());
    }
    Ok(HttpResponse::Ok().json(json!({
        "now": clock.now(),
        "offset_seconds": clock.offset().num_seconds(),
    })))
}

/// `POST /v1/dev/clock {"days": N, "hours": H}`: moves the clock forward.
pub async fn advance(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let bytes = super::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let body: Advance = super::body::parse_json(&req, &bytes)?;
    let clock = &state.docs.clock;
    if !clock.adjustable() {
        return Err(Problem::not_found());
    }
    if !state.org.read(|o| o.is_admin(&caller.id, clock.now())) {
        return Err(Problem::forbidden(
            "only an admin moves the development clock",
        ));
    }
    let out_of_range = || Problem::rule(crate::clock::ClockError::Range.to_string());
    let by = chrono::Duration::try_days(body.days)
        .zip(chrono::Duration::try_hours(body.hours))
        .and_then(|(d, h)| d.checked_add(&h))
        .ok_or_else(out_of_range)?;
    let now = clock
        .advance(by)
        .map_err(|e| Problem::rule(e.to_string()))?;
    tracing::warn!(%now, by = %by, "development clock moved forward");
    Ok(HttpResponse::Ok().json(json!({
        "now": now,
        "offset_seconds": clock.offset().num_seconds(),
    })))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/dev/clock", web::get().to(get_clock))
        .route("/v1/dev/clock", web::post().to(advance));
}
