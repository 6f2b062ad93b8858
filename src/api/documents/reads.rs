//! Reading a document: its view, its events, the payload a routed signer
//! signs.
//!
//! Must never: show what `domain::access::view` hides from the caller.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::access::view;
use crate::domain::authority::{judge, SigningAct};
use crate::domain::document::{self};
use crate::domain::org::Authority;
use crate::http::auth::Caller;
use crate::http::problem::{from_domain, Problem};
use crate::http::AppState;

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
    let doc = readable(&state, &caller.id, &id)?;
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
    let doc = readable(&state, &caller.id, &id)?;
    let trail = crate::service::load::trail(&state, &caller.id, &doc)?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", format!("\"{}\"", doc.version)))
        .json(json!({ "document": doc.id, "version": doc.version, "events": trail })))
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
    let doc = readable(&state, &caller.id, &id)?;
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
