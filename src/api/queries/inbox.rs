//! Inboxes: the caller's own boxes, a unit's, and read marks.
//!
//! Must never: show a box the caller does not read (`domain::access`).

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::domain::access::{self};
use crate::projections::inbox;
use crate::store::{ExpectedVersion, Metadata, NewEvent, StreamAppend};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// `sign`, `review`, `handle`, `info`; default all.
    #[serde(rename = "box")]
    pub box_: Option<String>,
    /// `pending` (default) or `done`.
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub min_position: Option<u64>,
    /// For a unit inbox: the unit's agency (default: the caller's).
    pub agency: Option<String>,
}

/// Items of `parties` in the asked boxes and state, newest first, one page.
fn inbox_page(
    state: &AppState,
    who: &str,
    parties: &[String],
    q: &InboxQuery,
) -> Result<Value, Problem> {
    let boxes: Vec<&str> = match q.box_.as_deref() {
        None => inbox::BOXES.to_vec(),
        Some(b) if inbox::BOXES.contains(&b) => vec![b],
        Some(b) => {
            return Err(Problem::bad_request(format!(
                "box {b:?} is not one of sign, review, handle, info"
            )))
        }
    };
    let wanted = q.state.as_deref().unwrap_or("pending");
    if !matches!(wanted, "pending" | "done") {
        return Err(Problem::bad_request("state must be pending or done"));
    }
    let limit = limit(q.limit)?;
    // The cursor is the merge key of the last item: "{suffix}|{party}|{box}".
    let cursor: Option<(String, String)> = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let mut parts = c.splitn(2, '|');
            let suffix = parts.next().unwrap_or_default();
            let tie = parts.next().unwrap_or_default();
            if suffix.len() < 22 || !suffix.is_ascii() || tie.is_empty() {
                return Err(Problem::bad_request("cursor is not one this API issued"));
            }
            Some((suffix.to_owned(), tie.to_owned()))
        }
    };
    let t = table(state, "inbox");
    // Merge key "{newest-first position}/{doc}|{party}|{box}" → item.
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    for party in parties {
        for b in &boxes {
            let prefix = inbox::prefix(party, b, wanted);
            let tie = format!("{party}|{b}");
            // Items of the cursor's own suffix come after it only in the
            // streams that sort after the cursor's stream.
            let rows = match &cursor {
                None => t.scan(prefix.as_bytes(), None, limit),
                Some((suffix, at)) if tie.as_str() > at.as_str() => t.scan_from(
                    prefix.as_bytes(),
                    format!("{prefix}{suffix}").as_bytes(),
                    limit,
                ),
                Some((suffix, _)) => t.scan(
                    prefix.as_bytes(),
                    Some(format!("{prefix}{suffix}").as_bytes()),
                    limit,
                ),
            }
            .map_err(internal)?;
            for (k, v) in rows {
                let suffix = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let mut item: Value = decode(state, "inbox", &k, &v)?;
                let read = item["doc"]
                    .as_str()
                    .and_then(|d| uuid::Uuid::parse_str(d).ok())
                    .map(|d| t.get(inbox::read_key(who, d).as_bytes()))
                    .transpose()
                    .map_err(internal)?
                    .flatten()
                    .is_some();
                item["read"] = json!(read);
                merged.insert(format!("{suffix}|{tie}"), item);
            }
        }
    }
    let items: Vec<(String, Value)> = merged.into_iter().take(limit).collect();
    let next = (items.len() == limit)
        .then(|| items.last().map(|(k, _)| k.clone()))
        .flatten();
    Ok(json!({
        "items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "next_cursor": next,
    }))
}

/// `GET /v1/inbox`: what awaits the caller (and, for clerks and leaders,
/// their agency: documents to receive or to assign).
#[utoipa::path(tag = "queries", params(InboxQuery),
    responses((status = 200, description = "{items, next_cursor}"), (status = 400), (status = 401), (status = 503)))]
#[get("/v1/inbox")]
pub(crate) async fn my_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<InboxQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "inbox").await?;
    Ok(HttpResponse::Ok().json(own_inbox(&state, &caller, &q)?))
}

/// One page of the caller's own boxes (`{items, next_cursor}`).
pub(crate) fn own_inbox(
    state: &AppState,
    caller: &Caller,
    q: &InboxQuery,
) -> Result<Value, Problem> {
    let now = state.docs.clock.now();
    let parties: Vec<String> = state
        .org
        .read(|org| access::own_inboxes(org, &caller.id, now))
        .iter()
        .map(inbox::party_key)
        .collect();
    inbox_page(state, &caller.id, &parties, q)
}

/// `GET /v1/units/{unit}/inbox?agency=`: a unit's items, for its members and
/// its agency's clerks and leaders.
#[utoipa::path(tag = "queries", params(("unit" = String, Path), InboxQuery),
    responses((status = 200, description = "{items, next_cursor}"), (status = 400), (status = 401), (status = 403), (status = 503)))]
#[get("/v1/units/{unit}/inbox")]
pub(crate) async fn unit_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    unit: web::Path<String>,
    q: web::Query<InboxQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "inbox").await?;
    let now = state.docs.clock.now();
    let allowed = state
        .org
        .read(|org| access::unit_inbox_agency(org, &caller.id, &unit, q.agency.as_deref(), now));
    let Some(agency) = allowed else {
        return Err(Problem::forbidden(format!(
            "only members of unit {unit} and clerks or leaders of its agency see its inbox"
        )));
    };
    let parties = [inbox::party_key(&access::Party::Unit {
        agency,
        unit: unit.into_inner(),
    })];
    Ok(HttpResponse::Ok().json(inbox_page(&state, &caller.id, &parties, &q)?))
}

/// `POST /v1/inbox/{doc}/read`: marks a document read for the caller.
#[utoipa::path(tag = "queries", params(("doc" = uuid::Uuid, Path)),
    responses((status = 200, description = "{doc, read}; Vanthu-Position"), (status = 400), (status = 401), (status = 404), (status = 413), (status = 415)))]
#[post("/v1/inbox/{doc}/read")]
pub(crate) async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    doc: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = crate::api::body::read_body(payload, crate::http::JSON_LIMIT).await?;
    let _: crate::api::documents::EmptyRequest = crate::api::body::parse_json(&req, &body)?;
    let (id, position) = mark_read_for(&state, &caller, &doc).await?;
    let mut resp = HttpResponse::Ok();
    if let Some(p) = position {
        resp.insert_header(("Vanthu-Position", p.to_string()));
    }
    Ok(resp.json(json!({ "doc": id, "read": true })))
}

/// Marks document `doc` read for the caller: its id, and the mark's
/// position (`None` when it was marked before).
pub(crate) async fn mark_read_for(
    state: &AppState,
    caller: &Caller,
    doc: &str,
) -> Result<(uuid::Uuid, Option<u64>), Problem> {
    let document = crate::service::load::readable(state, &caller.id, doc)?;
    let already = table(state, "inbox")
        .get(inbox::read_key(&caller.id, document.id).as_bytes())
        .map_err(internal)?
        .is_some();
    if already {
        return Ok((document.id, None));
    }
    let mark = inbox::ReadMark {
        official: caller.id.clone(),
        doc: document.id,
    };
    let appended = state
        .events
        .append(
            vec![StreamAppend::new(
                format!("inbox-{}", caller.id),
                ExpectedVersion::Any,
                vec![
                    NewEvent::new(inbox::READ, serde_json::to_value(&mark).unwrap_or_default())
                        .with_metadata(Metadata {
                            actor: Some(caller.id.clone()),
                            ..Default::default()
                        }),
                ],
            )],
            // One mark per official and document even while the projection
            // lags behind repeated calls: the writer replays a repeated key.
            Some(&inbox::read_mark_key(&caller.id, document.id)),
        )
        .await
        .map_err(from_append)?;
    Ok((document.id, Some(appended.last_position)))
}
