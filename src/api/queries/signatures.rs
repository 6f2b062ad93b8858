//! The evidence a signature was accepted with, and organisation changes
//! recorded later that bear on it.
//!
//! Must never: fold a later change into the verdict given at acceptance.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::projections::signatures;

/// `GET /v1/documents/{id}/verification`: the evidence recorded when the
/// signature was accepted and the seal applied, from the signatures view.
#[utoipa::path(tag = "queries", params(("id" = uuid::Uuid, Path), ("min_position" = Option<u64>, Query)),
    responses((status = 200, description = "Signature report and authority verdict"), (status = 400), (status = 401), (status = 404), (status = 503)))]
#[get("/v1/documents/{id}/verification")]
pub(crate) async fn verification(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<MinPosition>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "signatures").await?;
    let doc = crate::service::load::readable(&state, &caller.id, &id)?;
    Ok(HttpResponse::Ok().json(verification_of(&state, &doc)?))
}

/// The evidence of a document's signature (the caller may read it), with
/// the organisation changes recorded later that bear on it; 404 when it is
/// not signed.
pub(crate) fn verification_of(
    state: &AppState,
    doc: &crate::domain::document::Document,
) -> Result<Value, Problem> {
    let key = signatures::key(doc.id);
    let row = table(state, "signatures")
        .get(key.as_bytes())
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found().with_detail("the document is not signed"))?;
    let evidence: signatures::Evidence = decode(state, "signatures", key.as_bytes(), &row)?;
    let later = recorded_later(state, evidence.accepted_at)?;
    let mut body = serde_json::to_value(&evidence).expect("evidence serialises");
    body["recorded_later"] = json!(later);
    Ok(body)
}

/// Organisation changes recorded after `accepted_at` that take effect at or
/// before it: they rewrite what the organisation was when the signature was
/// made. The verdict given at acceptance stands as evidence; these are shown
/// beside it, never folded into it.
fn recorded_later(state: &AppState, accepted_at: DateTime<Utc>) -> Result<Vec<Value>, Problem> {
    let records = state
        .log
        .read_stream(crate::domain::org::STREAM, 1, usize::MAX)
        .map_err(internal)?;
    let mut later = Vec::new();
    for r in records.into_iter().filter(|r| r.recorded_at > accepted_at) {
        let event: crate::domain::org::OrgEvent = serde_json::from_value(r.payload.clone())
            .map_err(|e| {
                internal(crate::store::StoreError::Corrupt {
                    position: r.position,
                    reason: format!("an org event does not decode: {e}"),
                })
            })?;
        if event.effective_at().is_some_and(|t| t <= accepted_at) {
            later.push(json!({
                "position": r.position,
                "recorded_at": r.recorded_at,
                "effective_at": event.effective_at(),
                "reason": r.metadata.reason,
                "event": r.payload,
            }));
        }
    }
    Ok(later)
}
