//! The organisation over HTTP: `GET /v1/org` (as of now or `?at=`), and
//! `POST /v1/org/events` for admins to record agencies, units,
//! appointments, certificate bindings and delegations.
//!
//! Must never: decide organisation rules here (they are `domain::org`'s) or
//! let anyone but an admin at this instant change the organisation.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::domain::org::OrgEvent;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::service::org::OrgFailure;
use crate::store::Metadata;

#[derive(Deserialize)]
pub struct AtQuery {
    /// RFC 3339 instant; default now.
    at: Option<DateTime<Utc>>,
}

/// The organisation as it stood at `?at=` (default: now).
#[utoipa::path(tag = "org", params(("at" = Option<String>, Query, description = "RFC 3339 instant; default now")),
    responses((status = 200, description = "The organisation as of the instant"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/org")]
pub(crate) async fn get_org(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<AtQuery>,
) -> Result<HttpResponse, Problem> {
    if !caller.is_official() && !caller.has_scope(ORG_SCOPE) {
        return Err(Problem::forbidden(format!(
            "an integration client reads the organisation only with scope {ORG_SCOPE}"
        )));
    }
    let at = q.at.unwrap_or_else(|| state.docs.clock.now());
    let body = state
        .org
        .read(|org| serde_json::to_value(org.as_of(at)).unwrap_or_default());
    Ok(HttpResponse::Ok().json(body))
}

/// The scope an integration client needs to read the organisation.
pub const ORG_SCOPE: &str = "org:read";

/// `POST /v1/org/events` takes the event alone, or this (a reason is
/// required to backdate a change).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithReason {
    event: OrgEvent,
    reason: String,
}

/// Records one organisation event (admins only).
#[utoipa::path(tag = "org", request_body = OrgEvent,
    responses((status = 201, description = "{position, version, replayed}"), (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/org/events")]
pub(crate) async fn post_event(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    if !state
        .org
        .read(|org| org.is_admin(&caller.id, state.docs.clock.now()))
    {
        return Err(Problem::forbidden(format!(
            "only an official with the admin role may change the organisation; {} has none",
            caller.id
        )));
    }
    let key = super::idempotency_key(&req)?;
    let body = super::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let value: serde_json::Value = super::body::parse_json(&req, &body)?;
    let (event, reason) = if value.get("event").is_some() {
        let c: WithReason = serde_json::from_value(value)
            .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
        (c.event, Some(c.reason))
    } else {
        let event: OrgEvent = serde_json::from_value(value)
            .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
        (event, None)
    };
    if matches!(
        event,
        OrgEvent::WebhookSubscribed { .. }
            | OrgEvent::WebhookSecretRotated { .. }
            | OrgEvent::WebhookUnsubscribed { .. }
    ) {
        return Err(OrgFailure::Rule(crate::domain::org::OrgError::Invalid(
            "webhooks are managed at /v1/admin/webhooks (which answers the secret and takes the instant from the service clock)".into(),
        ))
        .into());
    }
    event
        .check_backdating(
            state.docs.clock.now(),
            state.org_backdate_window,
            reason.as_deref(),
        )
        .map_err(OrgFailure::Rule)?;
    let appended = state
        .org
        .record(
            &*state.events,
            vec![event],
            &Metadata {
                actor: Some(caller.id.clone()),
                reason,
                request_id: crate::http::request_id::of(&req),
                ..Default::default()
            },
            key.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("ETag", format!("\"{}\"", appended.streams[0].last_version)))
        .insert_header(("Vanthu-Position", appended.last_position.to_string()))
        .json(json!({
            "position": appended.last_position,
            "version": appended.streams[0].last_version,
            "replayed": appended.replayed,
        })))
}
