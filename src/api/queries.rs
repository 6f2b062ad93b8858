//! Queries over the projections: inboxes, deadlines (list, statistics,
//! overdue CSV), registers (JSON and CSV), the issued-documents feed, and
//! read marks. Every query accepts `?min_position=P` (or the header
//! `Vanthu-Min-Position: P`) and waits up to 2 s for its projection to pass
//! P, else answers 503 with `Retry-After`: read-your-writes.
//!
//! Must never: compute a deadline status any other way than
//! `projections::deadlines::Row::status`, or show rows of agencies the
//! caller has no part in.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::problem::{from_append, Kind, Problem};
use super::AppState;
use crate::domain::access::{self, DeadlineScope, ViewRefusal};
use crate::projections::deadlines::{self, Row, Status};
use crate::projections::{feed, inbox, registers, signatures};
use crate::store::{ExpectedVersion, Metadata, NewEvent, StoreError, StreamAppend};

/// How long a query waits for its projection to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(2);
/// Default and largest page size.
const LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

use super::problem::from_store as internal;

/// Waits until projection `name` has applied position `min` (from the query
/// or the `Vanthu-Min-Position` header); 503 with Retry-After if it does not
/// within 2 s.
pub async fn caught_up(
    state: &AppState,
    req: &HttpRequest,
    min: Option<u64>,
    name: &str,
) -> Result<(), Problem> {
    let header = match req.headers().get("Vanthu-Min-Position") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Vanthu-Min-Position must be a position"))?,
        ),
    };
    let Some(min) = min.max(header) else {
        return Ok(());
    };
    let head = state.log.head();
    if min > head {
        // Positions are only ever handed out by appends: one beyond the head
        // was never given to anyone, and waiting for it could last forever.
        return Err(Problem::bad_request(format!(
            "min_position {min} is beyond the log's head {head}: use a position a response gave you"
        )));
    }
    if state.projections.wait(name, min, CATCH_UP).await {
        Ok(())
    } else {
        Err(
            Problem::new(Kind::ProjectionBehind, "The view has not caught up yet").with_detail(
                format!(
                    "{name} is at position {}, not yet {min}; retry shortly",
                    state.projections.position(name)
                ),
            ),
        )
    }
}

/// Decodes a row of view `name`; a row that does not decode is never
/// skipped (a register would come out short, the feed would skip): the
/// answer is 503 and `/readyz` reports the view until it is rebuilt.
fn decode<T: serde::de::DeserializeOwned>(
    state: &AppState,
    name: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        state.projections.mark_unreadable(name, key, &e.to_string());
        Problem::new(Kind::ViewUnreadable, "A view holds a row it cannot read").with_detail(
            format!(
            "the {name} view cannot answer completely; an operator must rebuild it (see /readyz)"
        ),
        )
    })
}

fn limit(raw: Option<usize>) -> Result<usize, Problem> {
    match raw {
        None => Ok(LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(Problem::bad_request(format!(
            "limit {n} is not within 1..={MAX_LIMIT}"
        ))),
    }
}

fn table<'a>(state: &'a AppState, name: &str) -> &'a crate::store::tables::Table {
    state
        .projections
        .table(name)
        .expect("every projection is opened at start")
}

// ---------------------------------------------------------------- inbox

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
#[utoipa::path(get, path = "/v1/inbox", params(InboxQuery),
    responses((status = 200, description = "{items, next_cursor}"), (status = 400), (status = 401), (status = 503)))]
pub async fn my_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<InboxQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "inbox").await?;
    let now = state.docs.clock.now();
    let parties: Vec<String> = state
        .org
        .read(|org| access::own_inboxes(org, &caller.id, now))
        .iter()
        .map(inbox::party_key)
        .collect();
    Ok(HttpResponse::Ok().json(inbox_page(&state, &caller.id, &parties, &q)?))
}

/// `GET /v1/units/{unit}/inbox?agency=`: a unit's items, for its members and
/// its agency's clerks and leaders.
#[utoipa::path(get, path = "/v1/units/{unit}/inbox", params(("unit" = String, Path), InboxQuery),
    responses((status = 200, description = "{items, next_cursor}"), (status = 400), (status = 401), (status = 403), (status = 503)))]
pub async fn unit_inbox(
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
#[utoipa::path(post, path = "/v1/inbox/{doc}/read", params(("doc" = uuid::Uuid, Path)),
    responses((status = 200, description = "{doc, read}; Vanthu-Position"), (status = 400), (status = 401), (status = 404), (status = 413), (status = 415)))]
pub async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    doc: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = super::body::read_body(payload, super::JSON_LIMIT).await?;
    let _: super::documents::EmptyRequest = super::body::parse_json(&req, &body)?;
    let document = super::loading::load_readable(&state, &caller, &doc)?;
    let already = table(&state, "inbox")
        .get(inbox::read_key(&caller.id, document.id).as_bytes())
        .map_err(internal)?
        .is_some();
    if already {
        return Ok(HttpResponse::Ok().json(json!({ "doc": document.id, "read": true })));
    }
    let mark = inbox::ReadMark {
        official: caller.id.clone(),
        doc: document.id,
    };
    let appended = state
        .log
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
    Ok(HttpResponse::Ok()
        .insert_header(("Vanthu-Position", appended.last_position.to_string()))
        .json(json!({ "doc": document.id, "read": true })))
}

// ---------------------------------------------------------------- deadlines

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadlineQuery {
    /// The answering agency (default: the caller's).
    pub agency: Option<String>,
    /// A unit, or `-` for the agency's reply rows.
    pub unit: Option<String>,
    /// pending, due_soon, overdue, replied_on_time, replied_late.
    pub status: Option<String>,
    /// Only deadlines before this date.
    pub due_before: Option<NaiveDate>,
    /// Statistics: deadlines from this date.
    pub from: Option<NaiveDate>,
    /// Statistics: deadlines up to this date.
    pub to: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub min_position: Option<u64>,
}

/// Which deadline rows of an agency a caller may see (`domain::access`).
fn deadline_scope(
    state: &AppState,
    caller: &Caller,
    agency: Option<&str>,
) -> Result<DeadlineScope, Problem> {
    let now = state.docs.clock.now();
    state
        .org
        .read(|org| access::deadline_scope(org, &caller.id, agency, now))
        .map_err(refused)
}

/// The problem for a view the caller may not read as asked.
fn refused(r: ViewRefusal) -> Problem {
    match r {
        ViewRefusal::NameTheAgency => Problem::bad_request("name the agency"),
        ViewRefusal::Forbidden(why) => Problem::forbidden(why),
    }
}

/// Most rows one list request reads; the page ends early (with a cursor)
/// when a filter is this selective.
const SCAN_BUDGET: usize = 20_000;

/// Rows with their status, and the cursor of the next page.
type Page = (Vec<(Row, Status)>, Option<String>);

/// Rows of `agency` the caller may see, filtered, one page (all when `page` is None).
fn deadline_rows(
    state: &AppState,
    scope: &DeadlineScope,
    q: &DeadlineQuery,
    page: Option<usize>,
) -> Result<Page, Problem> {
    let agency = scope.agency.as_str();
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "status {s:?} is not one of pending, due_soon, overdue, replied_on_time, replied_late"
            ))
        })?),
    };
    let t = table(state, "deadlines");
    let prefix = deadlines::prefix(agency);
    let now = state.docs.clock.now();
    let calendar = &state.docs.calendar;
    let mut after = q.cursor.clone().map(|c| format!("{prefix}{c}"));
    let mut out = Vec::new();
    let mut scanned = 0;
    loop {
        if page.is_some() && scanned >= SCAN_BUDGET {
            // A selective filter over many rows: hand back what we have.
            let cursor = after.as_deref().map(|a| a[prefix.len()..].to_owned());
            return Ok((out, cursor));
        }
        let rows = t
            .scan(prefix.as_bytes(), after.as_deref().map(str::as_bytes), 1000)
            .map_err(internal)?;
        let Some((last, _)) = rows.last() else {
            return Ok((out, None));
        };
        scanned += rows.len();
        after = Some(String::from_utf8_lossy(last).into_owned());
        for (k, v) in &rows {
            let row: Row = decode(state, "deadlines", k, v)?;
            if !scope.admits(&row.agency, &row.issuer, row.confidential) {
                continue;
            }
            if let Some(u) = &q.unit {
                if row.unit.as_deref().unwrap_or("-") != u {
                    continue;
                }
            }
            if q.due_before.is_some_and(|d| row.deadline >= d)
                || q.from.is_some_and(|d| row.deadline < d)
                || q.to.is_some_and(|d| row.deadline > d)
            {
                continue;
            }
            let s = row.status(calendar, now, state.docs.due_soon_days);
            if status.is_some_and(|want| want != s) {
                continue;
            }
            out.push((row, s));
            if page.is_some_and(|n| out.len() == n) {
                let cursor = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                return Ok((out, Some(cursor)));
            }
        }
    }
}

fn row_json(row: &Row, status: Status, state: &AppState) -> Value {
    let now = state.docs.clock.now();
    let mut v = serde_json::to_value(row).unwrap_or_default();
    v["status"] = json!(status.as_str());
    v["late_against_original"] = json!(row.late_against_original(&state.docs.calendar, now));
    v
}

/// `GET /v1/deadlines`: reply and handling deadlines of an agency.
#[utoipa::path(get, path = "/v1/deadlines", params(DeadlineQuery),
    responses((status = 200, description = "{rows, next_cursor}"), (status = 400), (status = 401), (status = 403), (status = 503)))]
pub async fn list_deadlines(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, q.agency.as_deref())?;
    let agency = scope.agency.clone();
    let (rows, next) = deadline_rows(&state, &scope, &q, Some(limit(q.limit)?))?;
    Ok(HttpResponse::Ok().json(json!({
        "agency": agency,
        "rows": rows.iter().map(|(r, s)| row_json(r, *s, &state)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /v1/deadlines/stats`: per unit, on time vs late (on the deadline in force).
#[utoipa::path(get, path = "/v1/deadlines/stats", params(DeadlineQuery),
    responses((status = 200, description = "{agency, units: [{unit, total, on_time, late, open_overdue, open_in_time, on_time_rate}]}"), (status = 400), (status = 401), (status = 403)))]
pub async fn deadline_stats(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, q.agency.as_deref())?;
    let agency = scope.agency.clone();
    let q = q.into_inner();
    let (rows, _) = blocking(state.clone(), move |st| deadline_rows(st, &scope, &q, None)).await?;
    Ok(HttpResponse::Ok().json(json!({ "agency": agency, "units": stats(&rows) })))
}

/// Runs blocking RocksDB work off the HTTP workers.
async fn blocking<T: Send + 'static>(
    state: web::Data<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    web::block(move || f(&state)).await.map_err(|e| {
        internal(StoreError::Io(
            "blocking task".into(),
            std::io::Error::other(e.to_string()),
        ))
    })?
}

/// Counts per unit (`-` = the agency's replies).
pub fn stats(rows: &[(Row, Status)]) -> Vec<Value> {
    let mut per: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (row, status) in rows {
        let c = per
            .entry(row.unit.clone().unwrap_or_else(|| "-".into()))
            .or_default();
        match status {
            Status::RepliedOnTime => c[0] += 1,
            Status::RepliedLate => c[1] += 1,
            Status::Overdue => c[2] += 1,
            Status::Pending | Status::DueSoon => c[3] += 1,
        }
    }
    per.into_iter()
        .map(|(unit, [on_time, late, overdue, open])| {
            let answered = on_time + late;
            json!({
                "unit": unit,
                "total": on_time + late + overdue + open,
                "on_time": on_time,
                "late": late,
                "open_overdue": overdue,
                "open_in_time": open,
                "on_time_rate": (answered > 0).then(|| on_time as f64 / answered as f64),
            })
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(header: &[&str], lines: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from("\u{feff}"); // BOM: Excel opens Vietnamese text correctly
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for line in lines {
        out.push_str(
            &line
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

fn csv_response(name: &str, body: String) -> HttpResponse {
    // Only safe characters reach the header, whatever the request said.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// `GET /v1/deadlines/overdue.csv`: open overdue deadlines, for clerks' reports.
#[utoipa::path(get, path = "/v1/deadlines/overdue.csv", params(DeadlineQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 400), (status = 401), (status = 403)))]
pub async fn overdue_csv(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, q.agency.as_deref())?;
    let agency = scope.agency.clone();
    let mut query = q.into_inner();
    query.status = Some("overdue".into());
    let (rows, _) = blocking(state.clone(), move |st| {
        deadline_rows(st, &scope, &query, None)
    })
    .await?;
    let now = state.docs.clock.now();
    let today = crate::domain::calendar::Calendar::local_date(now);
    let body = csv(
        &[
            "reference",
            "title",
            "issuer",
            "agency",
            "unit",
            "kind",
            "deadline",
            "original_deadline",
            "working_days_overdue",
            "document",
        ],
        rows.iter().map(|(r, _)| {
            vec![
                r.reference.clone(),
                r.title.clone(),
                r.issuer.clone(),
                r.agency.clone(),
                r.unit.clone().unwrap_or_default(),
                r.kind.clone(),
                r.deadline.to_string(),
                r.original.to_string(),
                {
                    // Counted like `is_overdue`: from the deadline rolled to a working day.
                    let cal = &state.docs.calendar;
                    cal.working_days_between(cal.roll_forward(r.deadline), today)
                        .to_string()
                },
                r.doc.to_string(),
            ]
        }),
    );
    Ok(csv_response(&format!("qua-han-{agency}.csv"), body))
}

// ---------------------------------------------------------------- registers

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    /// `normal` (default), `secret`, or a document type with its own series.
    pub series: Option<String>,
    pub cursor: Option<u64>,
    pub limit: Option<usize>,
    pub min_position: Option<u64>,
}

/// `GET /v1/registers/{agency}/{year}/{outgoing|incoming}[.csv]`: sổ văn bản
/// đi / đến, in number order.
#[utoipa::path(get, path = "/v1/registers/{agency}/{year}/{direction}",
    params(("agency" = String, Path), ("year" = i32, Path), ("direction" = String, Path, description = "outgoing, incoming, outgoing.csv or incoming.csv"), RegisterQuery),
    responses((status = 200, description = "{entries, next_cursor} or CSV"), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, i32, String)>,
    q: web::Query<RegisterQuery>,
) -> Result<HttpResponse, Problem> {
    use crate::domain::numbering::{Direction, RegisterKey, Series};
    caught_up(&state, &req, q.min_position, "registers").await?;
    let (agency, year, direction) = path.into_inner();
    let (direction, as_csv) = match direction.as_str() {
        "outgoing" => (Direction::Outgoing, false),
        "incoming" => (Direction::Incoming, false),
        "outgoing.csv" => (Direction::Outgoing, true),
        "incoming.csv" => (Direction::Incoming, true),
        _ => return Err(Problem::not_found()),
    };
    let now = state.docs.clock.now();
    let secret = q.series.as_deref() == Some("secret");
    state
        .org
        .read(|org| access::may_read_register(org, &caller.id, &agency, secret, now))
        .map_err(refused)?;
    let series = match q.series.as_deref() {
        None | Some("normal") => Series::Normal,
        Some("secret") => Series::Secret,
        Some(t) if t.len() <= 8 && t.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Series::Type(t.to_ascii_uppercase())
        }
        Some(t) => return Err(Problem::bad_request(format!("series {t:?} is not valid"))),
    };
    let key = RegisterKey {
        agency: agency.clone(),
        direction,
        series,
        year,
    };
    let stream = key.stream_id();
    let prefix = registers::prefix(&stream);
    let t = table(&state, "registers");
    let after = q
        .cursor
        .map(|c| format!("{prefix}{}", crate::projections::padded(c)));
    let page = if as_csv { usize::MAX } else { limit(q.limit)? };
    let rows = t
        .scan(prefix.as_bytes(), after.as_deref().map(str::as_bytes), page)
        .map_err(internal)?;
    let entries: Vec<registers::Entry> = rows
        .iter()
        .map(|(k, v)| decode(&state, "registers", k, v))
        .collect::<Result<_, _>>()?;
    if as_csv {
        let outgoing = direction == Direction::Outgoing;
        let header: &[&str] = if outgoing {
            &[
                "so",
                "ngay",
                "so_ky_hieu",
                "loai",
                "trich_yeu",
                "nguoi_ky",
                "noi_nhan",
                "trang_thai",
            ]
        } else {
            &[
                "so_den",
                "ngay_den",
                "so_ky_hieu",
                "loai",
                "trich_yeu",
                "co_quan_ban_hanh",
                "nguoi_ky",
                "trang_thai",
            ]
        };
        let body = csv(
            header,
            entries.iter().map(|e| {
                let mut line = vec![
                    crate::domain::numbering::format_number(e.number),
                    e.date.format("%d/%m/%Y").to_string(),
                    e.reference.clone(),
                    e.doc_type.clone(),
                    e.title.clone(),
                ];
                if outgoing {
                    line.extend([e.signer.clone(), e.recipients.join("; "), e.status.clone()]);
                } else {
                    line.extend([e.agency.clone(), e.signer.clone(), e.status.clone()]);
                }
                line
            }),
        );
        return Ok(csv_response(&format!("{stream}.csv"), body));
    }
    let next = (entries.len() == page)
        .then(|| entries.last().map(|e| e.number))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "register": stream,
        "entries": entries,
        "next_cursor": next,
    })))
}

// ---------------------------------------------------------------- feed

/// Scope an integration's token needs for the feed.
pub const FEED_SCOPE: &str = "feed:read";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Resume after this cursor (0: from the start).
    pub after: Option<u64>,
    pub limit: Option<usize>,
    /// Long-poll: wait up to this many seconds (≤ 60) for an entry.
    pub wait: Option<u64>,
    pub min_position: Option<u64>,
}

/// `GET /v1/feed/issued`: issued, recalled and replaced documents in log
/// order, for integrations (scope `feed:read`).
#[utoipa::path(get, path = "/v1/feed/issued", params(FeedQuery),
    responses((status = 200, description = "{entries, next_cursor}"), (status = 400), (status = 401), (status = 403)))]
pub async fn issued_feed(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<FeedQuery>,
) -> Result<HttpResponse, Problem> {
    if !caller.has_scope(FEED_SCOPE) {
        return Err(Problem::forbidden(format!(
            "the feed is for integration clients registered with scope {FEED_SCOPE}"
        )));
    }
    caught_up(&state, &req, q.min_position, "feed").await?;
    let limit = limit(q.limit)?;
    let wait = q.wait.unwrap_or(0);
    if wait > 60 {
        return Err(Problem::bad_request("wait is at most 60 seconds"));
    }
    let after = q.after.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let t = table(&state, "feed");
    loop {
        let seen = state.projections.position("feed");
        let start = feed::key(after);
        let rows = t
            .scan(b"f/", Some(start.as_bytes()), limit)
            .map_err(internal)?;
        let entries: Vec<feed::FeedEntry> = rows
            .iter()
            .map(|(k, v)| decode(&state, "feed", k, v))
            .collect::<Result<_, _>>()?;
        let now = tokio::time::Instant::now();
        if !entries.is_empty() || now >= deadline {
            let next = entries.last().map_or(after, |e| e.cursor);
            return Ok(HttpResponse::Ok().json(json!({
                "entries": entries,
                "next_cursor": next,
            })));
        }
        // Long-poll: wake when the feed projection moves past what we saw.
        state
            .projections
            .wait("feed", seen + 1, deadline - now)
            .await;
    }
}

/// `GET /v1/documents/{id}/verification`: the evidence recorded when the
/// signature was accepted and the seal applied, from the signatures view.
#[utoipa::path(get, path = "/v1/documents/{id}/verification", params(("id" = uuid::Uuid, Path), ("min_position" = Option<u64>, Query)),
    responses((status = 200, description = "Signature report and authority verdict"), (status = 401), (status = 404), (status = 503)))]
pub async fn verification(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<MinPosition>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "signatures").await?;
    let doc = super::loading::load_readable(&state, &caller, &id)?;
    let key = signatures::key(doc.id);
    let row = table(&state, "signatures")
        .get(key.as_bytes())
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found().with_detail("the document is not signed"))?;
    let evidence: signatures::Evidence = decode(&state, "signatures", key.as_bytes(), &row)?;
    let later = recorded_later(&state, evidence.accepted_at)?;
    let mut body = serde_json::to_value(&evidence).expect("evidence serialises");
    body["recorded_later"] = json!(later);
    Ok(HttpResponse::Ok().json(body))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinPosition {
    pub min_position: Option<u64>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/inbox", web::get().to(my_inbox))
        .route("/v1/units/{unit}/inbox", web::get().to(unit_inbox))
        .route("/v1/inbox/{doc}/read", web::post().to(mark_read))
        .route("/v1/deadlines", web::get().to(list_deadlines))
        .route("/v1/deadlines/stats", web::get().to(deadline_stats))
        .route("/v1/deadlines/overdue.csv", web::get().to(overdue_csv))
        .route(
            "/v1/registers/{agency}/{year}/{direction}",
            web::get().to(register),
        )
        .route("/v1/feed/issued", web::get().to(issued_feed))
        .route(
            "/v1/documents/{id}/verification",
            web::get().to(verification),
        );
}
