//! The interchange at the HTTP edge: `POST /v1/interchange/inbound`, where
//! peers post packages and status messages (docs/INTERCHANGE.md), and the
//! arrivals query. The peer is authenticated, the body read and the media
//! type checked here; what is taken and how is `service::interchange`'s,
//! whose failures are mapped to problems once, here.
//!
//! Must never: read more of a body than the package limit, hand a request
//! that is not a peer's, not whole, or not valid to the service, or decide
//! anything the service decides.

use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest, HttpResponse};

use crate::domain::access;
use crate::http::problem::{Kind, Problem};
use crate::http::AppState;
use crate::interchange::edxml::EdxmlError;
use crate::interchange::spool::SpoolError;
use crate::interchange::PEER_HEADER;
use crate::outbox::dispatch::ComposeError;
use crate::outbox::Delivery;
use crate::service::interchange::{Env, Failure};

/// The services' view of `state`, for request `request_id`.
fn env<'a>(
    state: &'a AppState,
    org: &'a (dyn Fn() -> Arc<crate::domain::org::Org> + Sync),
    request_id: Option<String>,
) -> Env<'a> {
    Env {
        log: &state.log,
        events: &*state.events,
        blobs: &*state.blobs,
        org,
        clock: &state.docs.clock,
        calendar: &state.docs.calendar,
        crls: &state.docs.crls,
        peers: &state.peers,
        request_id,
    }
}

/// The edXML package of `delivery`, for the outbox's composer
/// (`service::interchange::package_for`, with this state's bundles).
pub async fn package_for(state: &AppState, delivery: &Delivery) -> Result<Vec<u8>, ComposeError> {
    let org = || state.org.snapshot();
    let env = env(state, &org, None);
    crate::service::interchange::package_for(&env, delivery, |doc| async move {
        crate::service::evidence::bundle_of(state, &doc, access::recipient_evidence)
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

/// The problem for a package or status the service did not take.
fn problem(f: Failure) -> Problem {
    match f {
        Failure::BadPackage(e) => bad_package(e),
        Failure::Refused { field, detail } => refused(&field, detail),
        Failure::Forbidden { field, detail } => Problem::forbidden(detail).with("field", &field),
        Failure::OutOfTurn(why) => Problem::new(
            Kind::WrongState,
            "The status does not fit the document's state",
        )
        .with_detail(why)
        .with("field", "StatusCode"),
        Failure::Replaced => {
            Problem::new(Kind::Conflict, "Another package already arrived under this DocumentId")
                .with_detail("updates and replacements of an arrived package (BussinessDocType 2, 3) are not taken yet")
                .with("field", "DocumentId")
        }
        Failure::KeptChanging { title, detail } => {
            Problem::new(Kind::Conflict, title).with_detail(detail)
        }
        Failure::Store(e) => crate::http::problem::from_store(e),
        Failure::Append(e) => crate::http::problem::from_append(e),
        Failure::Internal(e) => Problem::new(Kind::Internal, "Internal error").with_detail(e),
    }
}

/// How far a peer's `webhook-timestamp` may be from this clock, seconds.
const TOLERANCE: i64 = 300;

/// 400 naming the package's field.
fn bad_package(e: EdxmlError) -> Problem {
    Problem::bad_request(format!("the package is refused: {e}")).with("field", &e.field)
}

/// 422 naming the package's field: it reads, but cannot be taken.
fn refused(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(Kind::Rule, "The package cannot be taken")
        .with_detail(detail)
        .with("field", field)
}

/// 413: over `interchange.max_package_bytes`, declared or streamed.
fn too_large(limit: usize) -> Problem {
    Problem::new(Kind::TooLarge, "The package is too large").with_detail(format!(
        "the limit is {limit} bytes (interchange.max_package_bytes): send large files in several packages"
    ))
}

fn unauthorised(detail: String) -> Problem {
    Problem::new(Kind::Unauthorized, "Not a known interchange peer").with_detail(detail)
}

/// The peer the request says it is from, and a fresh timestamp: checked
/// before the body is read, so a stranger costs no more than its headers.
fn claimed_peer<'a>(
    state: &'a AppState,
    req: &HttpRequest,
) -> Result<&'a crate::interchange::Peer, Problem> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let peer = header(PEER_HEADER)
        .and_then(|name| state.peers.get(name))
        .ok_or_else(|| unauthorised(format!("{PEER_HEADER} must name a peer configured here")))?;
    let now = state.docs.clock.system_now().timestamp();
    let fresh = header("webhook-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .is_some_and(|t| t.saturating_sub(now).saturating_abs() <= TOLERANCE);
    if !fresh {
        return Err(unauthorised(format!(
            "webhook-timestamp must be this clock's Unix seconds, within {TOLERANCE} s"
        )));
    }
    Ok(peer)
}

/// `POST /v1/interchange/inbound`: an edXML package or status message from
/// a configured peer, signed with the secret both hold (Standard Webhooks
/// headers, `Vanthu-Peer` naming the sender). A package whose signatures
/// verify lands as arrived (01) for the recipient agencies' clerks, and
/// status 01 goes back; a package already taken answers 200 and writes
/// nothing. Anything else is refused with the field named, and nothing
/// is written.
#[utoipa::path(tag = "interchange", request_body(content = String, content_type = "application/xml"),
    responses((status = 202, description = "Arrived"), (status = 200, description = "Already taken"), (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)))]
#[post("/v1/interchange/inbound")]
pub(crate) async fn inbound(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let peer = claimed_peer(&state, &req)?;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.peers.max_package_bytes as u64) {
        return Err(too_large(state.peers.max_package_bytes));
    }
    // D1: nothing is held before the peer is known. The signature's
    // headers are checked now; the body streams to a spool file while its
    // HMAC is computed off the workers, a few bodies per peer at a time.
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let check = crate::webhooks::Streaming::start(
        std::slice::from_ref(&peer.secret),
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        state.docs.clock.system_now().timestamp(),
        TOLERANCE,
    )
    .map_err(|e| unauthorised(format!("the request's signature: {e}")))?;
    let turn = peer.admit().await.ok_or_else(|| {
        Problem::new(Kind::Unavailable, "Too many packages from this peer at once")
            .with_detail(format!(
                "at most {} bodies under one peer's name are read at once before their signature is checked: send again shortly",
                crate::interchange::UNAUTHENTICATED_PER_PEER
            ))
    })?;
    let limit = state.peers.max_package_bytes;
    let body =
        crate::interchange::spool::authenticated(payload, check, limit, &std::env::temp_dir())
            .await
            .map_err(|e| match e {
                SpoolError::TooLarge(_) => too_large(limit),
                SpoolError::Unauthenticated(_) => unauthorised(e.to_string()),
                SpoolError::Body(e) => Problem::bad_request(format!("reading the body: {e}")),
                SpoolError::Io(e) => {
                    Problem::new(Kind::Internal, "Internal error").with_detail(e.to_string())
                }
            })?;
    drop(turn);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(mime, "application/xml" | "text/xml") {
        return Err(
            Problem::new(Kind::UnsupportedMediaType, "Not XML").with_detail(format!(
                "content-type {content_type:?}: send application/xml"
            )),
        );
    }
    let text = String::from_utf8(body).map_err(|_| {
        bad_package(EdxmlError {
            field: "xml".into(),
            reason: "not UTF-8".into(),
        })
    })?;
    let message_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let read = web::block(move || crate::interchange::edxml::read(&text))
        .await
        .map_err(|e| Problem::new(Kind::Internal, "Internal error").with_detail(e.to_string()))?
        .map_err(bad_package)?;
    let org = || state.org.snapshot();
    let env = env(&state, &org, crate::http::request_id::of(&req));
    let taken = crate::service::interchange::take(&env, &peer.id, message_id, read)
        .await
        .map_err(problem)?;
    Ok(match taken.position {
        Some(position) if !taken.already => HttpResponse::Accepted()
            .insert_header(("Vanthu-Position", position.to_string()))
            .json(taken.body),
        _ => HttpResponse::Ok().json(taken.body),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArrivalsQuery {
    agency: String,
    min_position: Option<u64>,
}

/// `GET /v1/interchange/arrivals?agency=X`: packages from other systems
/// addressed to agency X, for those who keep its books (its clerks,
/// leaders and office chief), newest last.
#[utoipa::path(tag = "interchange", params(("agency" = String, Query, description = "one of this system's agencies"), ("min_position" = Option<u64>, Query, description = "read your writes")),
    responses((status = 200, description = "{arrivals}"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/interchange/arrivals")]
pub(crate) async fn arrivals(
    state: web::Data<AppState>,
    caller: crate::http::auth::Caller,
    req: HttpRequest,
    q: web::Query<ArrivalsQuery>,
) -> Result<HttpResponse, Problem> {
    let now = state.docs.clock.now();
    let known = state.org.read(|org| {
        org.agencies
            .get(&q.agency)
            .is_some_and(|a| !a.is_external())
    });
    if !known {
        return Err(Problem::bad_request(format!(
            "agency {}: no agency of this system",
            q.agency
        )));
    }
    state
        .org
        .read(|org| access::may_read_register(org, &caller.id, &q.agency, false, now))
        .map_err(crate::api::queries::refused)?;
    crate::api::queries::caught_up(
        &state,
        &req,
        q.min_position,
        crate::projections::arrivals::NAME,
    )
    .await?;
    let agency = q.agency.clone();
    let rows = crate::api::queries::blocking(state, move |state| {
        let table = crate::api::queries::table(state, crate::projections::arrivals::NAME);
        table
            .scan(
                crate::projections::arrivals::prefix(&agency).as_bytes(),
                None,
                usize::MAX,
            )
            .map_err(crate::http::problem::from_store)?
            .iter()
            .map(|(k, v)| {
                crate::api::queries::decode::<crate::projections::arrivals::Row>(
                    state,
                    crate::projections::arrivals::NAME,
                    k,
                    v,
                )
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "arrivals": rows })))
}

/// Registers the routes (and their OpenAPI paths).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(inbound).service(arrivals);
}
