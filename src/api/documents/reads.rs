//! Reading a document: its view, its events, the payload a routed signer
//! signs.
//!
//! Must never: show what `domain::access::view` hides from the caller.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::api::auth::Caller;
use crate::api::problem::{from_domain, Problem};
use crate::api::AppState;
use crate::domain::access::{sees_drafting, view};
use crate::domain::authority::{judge, SigningAct};
use crate::domain::document::{self};
use crate::domain::org::Authority;

use super::*;

/// `GET /v1/documents/{id}`: the document view with its `version`.
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The document; ETag = version"), (status = 401), (status = 404)))]
#[get("/v1/documents/{id}")]
pub(crate) async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(
            state
                .org
                .read(|org| view(&doc, org, &caller.id, state.docs.clock.now())),
        ))
}

/// `GET /v1/documents/{id}/events`: the audit trail.
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Every event of the document, in order"), (status = 401), (status = 404)))]
#[get("/v1/documents/{id}/events")]
pub(crate) async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let trail = trail(&state, &caller, &doc)?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(json!({ "document": doc.id, "version": doc.version, "events": trail })))
}

/// The audit trail of a document the caller may read: every event in
/// order, for those who see its drafting (404 for the others).
pub(crate) fn trail(
    state: &AppState,
    caller: &Caller,
    doc: &document::Document,
) -> Result<Vec<serde_json::Value>, Problem> {
    let now = state.docs.clock.now();
    if !state
        .org
        .read(|org| sees_drafting(doc, org, &caller.id, now))
    {
        // The audit trail is the issuing agency's (and the officials involved).
        return Err(Problem::not_found());
    }
    let records = state
        .log
        .read_stream(&document::stream_id(doc.id), 1, usize::MAX)
        .map_err(internal)?;
    Ok(records
        .into_iter()
        .map(|r| {
            json!({
                "position": r.position,
                "version": r.version,
                "type": r.event_type,
                "recorded_at": r.recorded_at,
                "actor": r.metadata.actor,
                "payload": r.payload,
            })
        })
        .collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PayloadQuery {
    /// Signing form: "" (direct), TM., KT., TL., TUQ., Q.
    pub authority: Option<String>,
}

/// `GET /v1/documents/{id}/signing-payload?authority=KT.`: what the routed
/// signer must sign, as of now.
#[utoipa::path(tag = "documents", params(("id" = Uuid, Path), PayloadQuery),
    responses((status = 200, description = "{payload, version}"), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[get("/v1/documents/{id}/signing-payload")]
pub(crate) async fn signing_payload(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    q: web::Query<PayloadQuery>,
) -> Result<HttpResponse, Problem> {
    let doc = load_readable(&state, &caller, &id)?;
    let form = match q.authority.as_deref() {
        None => Authority::Direct,
        Some(s) => Authority::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "authority {s:?} is not one of \"\", TM., KT., TL., TUQ., Q."
            ))
        })?,
    };
    document::may_sign(&doc, &caller.id).map_err(from_domain)?;
    let now = state.docs.clock.now();
    let verdict = state.org.read(|org| {
        judge(
            org,
            &SigningAct {
                official: &caller.id,
                agency: &doc.agency,
                doc_type: &doc.draft.doc_type,
                form,
                at: now,
            },
        )
    });
    if !verdict.passed {
        return Err(Problem::forbidden(verdict.reason.clone()).with("authority", &verdict));
    }
    let payload = doc.signing_payload(&caller.id, &verdict, now);
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(json!({ "payload": payload, "version": doc.version, "authority": verdict })))
}
