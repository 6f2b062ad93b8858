//! Webhooks over HTTP, for admins: subscribe an integration client's
//! endpoint, read and rotate its secret, end it; read the delivery log and
//! re-drive a delivery (`POST /v1/admin/deliveries/{id}/retry`).
//!
//! Subscriptions are organisation events (`org.webhook_subscribed.v1`…),
//! validated by `domain::org`; deliveries are the outbox's (`crate::outbox`).
//!
//! Must never: show a secret to anyone but an admin, or write anything on
//! a refused request.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::require_admin;
use crate::domain::org::{OrgEvent, Webhook};
use crate::http::auth::Caller;
use crate::http::problem::{Kind, Problem};
use crate::http::AppState;
use crate::outbox::{OutboxError, Status};
use crate::store::Metadata;

fn outbox_problem(state: &AppState, e: OutboxError) -> Problem {
    match e {
        OutboxError::NotFound(id) => Problem::not_found().with_detail(format!("no delivery {id}")),
        e @ OutboxError::Decode(..) => {
            state.outbox.unreadable(&e);
            Problem::new(
                Kind::ViewUnreadable,
                "The delivery log holds a row it cannot read",
            )
            .with_detail(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "the outbox table");
            Problem::new(Kind::Unavailable, "The delivery log could not be read")
                .with_detail(other.to_string())
        }
    }
}

/// 503 when the service has no webhook key: nothing could be signed.
fn require_key(state: &AppState) -> Result<(), Problem> {
    if state.outbox.has_key() {
        Ok(())
    } else {
        Err(Problem::new(Kind::Unavailable, "Webhooks are off").with_detail(
            "the service has no webhook key: put 32 random bytes, base64, in keys_dir/webhooks/webhooks.key and restart",
        ))
    }
}

/// The webhook `id` in force now, or 404.
fn webhook(state: &AppState, id: &str) -> Result<Webhook, Problem> {
    let now = state.docs.clock.now();
    state
        .org
        .read(|org| org.webhook_at(id, now).cloned())
        .ok_or_else(|| Problem::not_found().with_detail(format!("no webhook {id} is subscribed")))
}

/// The webhooks as admins see them (no secret), counting their
/// deliveries off the HTTP workers.
async fn shown_all(
    state: &web::Data<AppState>,
    webhooks: Vec<Webhook>,
) -> Result<Vec<serde_json::Value>, Problem> {
    super::queries::blocking(state.clone(), move |state| {
        webhooks.iter().map(|w| shown(state, w)).collect()
    })
    .await
}

/// The webhook as admins see it (no secret).
fn shown(state: &AppState, w: &Webhook) -> Result<serde_json::Value, Problem> {
    let [pending, delivered, dead] =
        crate::outbox::counts(state.outbox.table(), &w.id).map_err(|e| outbox_problem(state, e))?;
    Ok(json!({
        "id": w.id,
        "client": w.client,
        "url": w.url,
        "events": w.events,
        "agencies": w.agencies,
        "since": w.span.from,
        "secret_generation": w.rotations.len(),
        "deliveries": { "pending": pending, "delivered": delivered, "dead": dead },
    }))
}

/// The secrets that sign now, current first, as `whsec_…`.
fn secrets(state: &AppState, w: &Webhook) -> Result<Vec<String>, Problem> {
    require_key(state)?;
    let now = state.docs.clock.now();
    Ok(state
        .outbox
        .secrets(w, now)
        .unwrap_or_default()
        .iter()
        .map(|s| s.expose())
        .collect())
}

/// Records one organisation event for a webhook.
async fn record(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    event: OrgEvent,
) -> Result<crate::store::Appended, Problem> {
    state
        .org
        .record(
            &*state.events,
            vec![event],
            &Metadata {
                actor: Some(caller.id.clone()),
                request_id: crate::http::request_id::of(req),
                ..Default::default()
            },
            // No idempotency key: the event carries the service's instant,
            // so a retry is a new request; a repeated subscription is
            // refused (the id is taken) and a repeated end finds none.
            None,
        )
        .await
        .map_err(Problem::from)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscribe {
    /// 1–64 of letters, digits, `.`, `_`, `-`, `@`.
    id: String,
    /// A registered integration client with scope `feed:read`.
    client: String,
    /// `https://…` (plain `http` only to this machine).
    url: String,
    /// Of `document.issued`, `document.recalled`, `document.replaced`,
    /// `document.received`, `document.replied`.
    events: Vec<String>,
    /// Only events about these agencies (as issuer or recipient); all when empty.
    #[serde(default)]
    agencies: Vec<String>,
}

/// Subscribes an integration client's endpoint; answers with the secret
/// its messages are signed with (readable again at `…/secret`).
#[utoipa::path(tag = "webhooks", request_body = Subscribe,
    responses((status = 201, description = "{webhook, secret}"), (status = 400), (status = 401), (status = 403), (status = 422), (status = 503)))]
#[post("/v1/admin/webhooks")]
pub(crate) async fn subscribe(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "subscribe a webhook")?;
    require_key(&state)?;
    let body = super::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let s: Subscribe = super::body::parse_json(&req, &body)?;
    let event = OrgEvent::WebhookSubscribed {
        id: s.id.clone(),
        client: s.client,
        url: s.url,
        events: s.events,
        agencies: s.agencies,
        at: state.docs.clock.now(),
    };
    let appended = record(&state, &caller, &req, event).await?;
    let w = webhook(&state, &s.id)?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Vanthu-Position", appended.last_position.to_string()))
        .json(json!({ "secret": secrets(&state, &w)?[0], "webhook": shown_all(&state, vec![w]).await?.remove(0) })))
}

/// Every webhook in force.
#[utoipa::path(tag = "webhooks", responses((status = 200, description = "{webhooks}"), (status = 401), (status = 403)))]
#[get("/v1/admin/webhooks")]
pub(crate) async fn list(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "read webhooks")?;
    let now = state.docs.clock.now();
    let webhooks: Vec<Webhook> = state.org.read(|org| {
        org.webhooks
            .iter()
            .filter(|w| org.webhook_at(&w.id, now).is_some())
            .cloned()
            .collect()
    });
    let shown = shown_all(&state, webhooks).await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": shown })))
}

/// One webhook, with counts of its deliveries.
#[utoipa::path(tag = "webhooks", responses((status = 200), (status = 401), (status = 403), (status = 404)))]
#[get("/v1/admin/webhooks/{id}")]
pub(crate) async fn get_one(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "read webhooks")?;
    let w = webhook(&state, &id)?;
    Ok(HttpResponse::Ok().json(shown_all(&state, vec![w]).await?.remove(0)))
}

/// The secrets that sign the webhook's messages now: the current one
/// first, and while a rotation overlaps, the previous one.
#[utoipa::path(tag = "webhooks", responses((status = 200, description = "{secrets}"), (status = 401), (status = 403), (status = 404), (status = 503)))]
#[get("/v1/admin/webhooks/{id}/secret")]
pub(crate) async fn secret(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "read a webhook's secret")?;
    let w = webhook(&state, &id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "secrets": secrets(&state, &w)? })))
}

/// Rotates the webhook's secret: messages carry both signatures for a day.
#[utoipa::path(tag = "webhooks", responses((status = 200, description = "{secret, previous_valid_until}"), (status = 401), (status = 403), (status = 404), (status = 503)))]
#[post("/v1/admin/webhooks/{id}/rotate")]
pub(crate) async fn rotate(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "rotate a webhook's secret")?;
    require_key(&state)?;
    webhook(&state, &id)?;
    let at = state.docs.clock.now();
    record(
        &state,
        &caller,
        &req,
        OrgEvent::WebhookSecretRotated { id: id.clone(), at },
    )
    .await?;
    let w = webhook(&state, &id)?;
    let overlap = chrono::Duration::hours(crate::domain::org::WEBHOOK_ROTATION_OVERLAP_HOURS);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "secret": secrets(&state, &w)?[0], "previous_valid_until": at + overlap })))
}

/// Ends the webhook; its pending deliveries become dead letters.
#[utoipa::path(tag = "webhooks", responses((status = 204), (status = 401), (status = 403), (status = 404)))]
#[delete("/v1/admin/webhooks/{id}")]
pub(crate) async fn unsubscribe(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "end a webhook")?;
    webhook(&state, &id)?;
    let at = state.docs.clock.now();
    record(
        &state,
        &caller,
        &req,
        OrgEvent::WebhookUnsubscribed { id: id.clone(), at },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead`.
    status: Option<String>,
    /// The delivery to read after (the previous page's `next`).
    after: Option<String>,
    limit: Option<usize>,
}

/// The webhook's delivery log, in log order, with every attempt.
#[utoipa::path(tag = "webhooks", params(("status" = Option<String>, Query, description = "pending, delivered or dead"), ("after" = Option<String>, Query, description = "the previous page's next (a delivery id)"), ("limit" = Option<usize>, Query, description = "1–500, default 100")),
    responses((status = 200, description = "{deliveries, next}"), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[get("/v1/admin/webhooks/{id}/deliveries")]
pub(crate) async fn deliveries(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "read the delivery log")?;
    // A webhook, or an interchange peer (`peer:{id}`: its packages and
    // status messages).
    let known = state
        .org
        .read(|org| org.webhooks.iter().any(|w| w.id == *id))
        || id
            .strip_prefix(crate::interchange::PEER_PREFIX)
            .is_some_and(|p| state.peers.get(p).is_some());
    if !known {
        return Err(Problem::not_found().with_detail(format!("no webhook {id}")));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Problem::bad_request(format!("status {s:?}: one of pending, delivered, dead"))
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit: 1 to 500"));
    }
    let (after, id) = (q.after.clone(), id.into_inner());
    let (rows, next) = super::queries::blocking(state, move |state| {
        crate::outbox::list(state.outbox.table(), &id, after.as_deref(), status, limit).map_err(
            |e| match e {
                OutboxError::NotFound(d) => Problem::bad_request(format!(
                    "after: {d} is no delivery of this webhook (give the previous page's next)"
                )),
                other => outbox_problem(state, other),
            },
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": rows, "next": next })))
}

/// One delivery: its message and every attempt.
#[utoipa::path(tag = "webhooks", responses((status = 200), (status = 401), (status = 403), (status = 404)))]
#[get("/v1/admin/deliveries/{id}")]
pub(crate) async fn delivery(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "read the delivery log")?;
    let r =
        crate::outbox::report(state.outbox.table(), &id).map_err(|e| outbox_problem(&state, e))?;
    Ok(HttpResponse::Ok().json(r))
}

/// Re-drives a delivery: pending again, due now, its maximum age counted
/// from now (a dead letter once its receiver is fixed, or a resend).
#[utoipa::path(tag = "webhooks", responses((status = 202), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/v1/admin/deliveries/{id}/retry")]
pub(crate) async fn retry(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_admin(&state, &caller, "re-drive a delivery")?;
    use crate::outbox::dispatch::RedriveError;
    let r = state.outbox.redrive(&id).await.map_err(|e| match e {
        RedriveError::Outbox(e) => outbox_problem(&state, e),
        other => Problem::new(Kind::Conflict, "The delivery cannot be re-driven now")
            .with_detail(other.to_string()),
    })?;
    tracing::info!(delivery = %id, by = %caller.id, "delivery re-driven");
    Ok(HttpResponse::Accepted().json(r))
}

/// Registers the routes (and their OpenAPI paths).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(subscribe)
        .service(list)
        .service(get_one)
        .service(secret)
        .service(rotate)
        .service(unsubscribe)
        .service(deliveries)
        .service(delivery)
        .service(retry);
}
