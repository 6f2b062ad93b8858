//! Reply deadlines: the list, statistics per unit and the overdue CSV.
//!
//! Must never: compute a status other than through `Row::status`, or show
//! rows outside the caller's `DeadlineScope`.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::domain::access::{self, DeadlineScope};
use crate::projections::deadlines::{self, Row, Status};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadlineQuery {
    /// The answering agency (default: the caller's, unless `issuer` is
    /// given alone).
    pub agency: Option<String>,
    /// Only rows this agency issued. Given without `agency`: the reply
    /// rows it set for every answering agency (its follow-up), for its
    /// officials.
    pub issuer: Option<String>,
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
    /// Statistics: counted per `unit` (default with `agency`), per answering
    /// `agency` (default with `issuer` alone) or per deadline `month`.
    pub by: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub min_position: Option<u64>,
}

/// Which deadline rows a caller may see as asked (`domain::access`): an
/// answering agency's, or with `issuer` alone the replies that agency is owed.
pub(crate) fn deadline_scope(
    state: &AppState,
    caller: &Caller,
    q: &DeadlineQuery,
) -> Result<DeadlineScope, Problem> {
    let now = state.docs.clock.now();
    state
        .org
        .read(|org| match (q.agency.as_deref(), q.issuer.as_deref()) {
            (None, Some(issuer)) => {
                access::issued_deadline_scope(org, &caller.id, Some(issuer), now)
            }
            (agency, _) => access::deadline_scope(org, &caller.id, agency, now),
        })
        .map_err(refused)
}

/// The agency a scope is named by in answers: the answering agency, or the
/// issuer followed up.
pub(crate) fn scope_name(scope: &DeadlineScope) -> String {
    scope
        .agency
        .clone()
        .or_else(|| scope.issuers.as_ref().and_then(|i| i.first().cloned()))
        .unwrap_or_default()
}

/// Most rows one list request reads; the page ends early (with a cursor)
/// when a filter is this selective.
const SCAN_BUDGET: usize = 20_000;

/// Rows with their status, and the cursor of the next page.
pub(crate) type Page = (Vec<(Row, Status)>, Option<String>);

/// Rows of `agency` the caller may see, filtered, one page (all when `page` is None).
pub(crate) fn deadline_rows(
    state: &AppState,
    scope: &DeadlineScope,
    q: &DeadlineQuery,
    page: Option<usize>,
) -> Result<Page, Problem> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "status {s:?} is not one of pending, due_soon, overdue, replied_on_time, replied_late"
            ))
        })?),
    };
    let t = table(state, "deadlines");
    // An issuer's follow-up reads every agency's rows (`d/`): its replies.
    let prefix = scope
        .agency
        .as_deref()
        .map_or_else(|| "d/".to_owned(), deadlines::prefix);
    let replies_only = scope.agency.is_none();
    let now = state.docs.clock.now();
    let calendar = &state.docs.calendar;
    let mut after = q.cursor.clone().map(|c| format!("{prefix}{c}"));
    let mut out = Vec::new();
    let mut scanned = 0;
    // A page reads about as many rows as it answers, then more (doubling)
    // while filters skip rows: not a thousand rows for a page of fifty.
    let mut chunk = page.map_or(1000, |n| (n + 1).clamp(16, 1000));
    loop {
        if page.is_some() && scanned >= SCAN_BUDGET {
            // A selective filter over many rows: hand back what we have.
            let cursor = after.as_deref().map(|a| a[prefix.len()..].to_owned());
            return Ok((out, cursor));
        }
        let rows = t
            .scan(
                prefix.as_bytes(),
                after.as_deref().map(str::as_bytes),
                chunk,
            )
            .map_err(internal)?;
        chunk = (chunk * 2).min(1000);
        let Some((last, _)) = rows.last() else {
            return Ok((out, None));
        };
        scanned += rows.len();
        after = Some(String::from_utf8_lossy(last).into_owned());
        for (k, v) in &rows {
            let row: Row = decode(state, "deadlines", k, v)?;
            if !scope.admits(&row.agency, &row.issuer, row.confidential)
                || (replies_only && row.unit.is_some())
                || q.issuer.as_ref().is_some_and(|i| *i != row.issuer)
            {
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

/// A row as answered: the projection's row with its status now and whether
/// it is late against the original deadline (serialised straight from the
/// row, without a `Value` in between).
#[derive(serde::Serialize)]
struct RowOut<'a> {
    #[serde(flatten)]
    row: &'a Row,
    status: &'static str,
    late_against_original: bool,
}

fn row_json<'a>(row: &'a Row, status: Status, state: &AppState) -> RowOut<'a> {
    let now = state.docs.clock.now();
    RowOut {
        row,
        status: status.as_str(),
        late_against_original: row.late_against_original(&state.docs.calendar, now),
    }
}

/// `GET /v1/deadlines`: reply and handling deadlines of an agency.
#[utoipa::path(tag = "queries", params(DeadlineQuery),
    responses((status = 200, description = "{rows, next_cursor}"), (status = 400), (status = 401), (status = 403), (status = 503)))]
#[get("/v1/deadlines")]
pub(crate) async fn list_deadlines(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, &q)?;
    let agency = scope_name(&scope);
    let (rows, next) = deadline_rows(&state, &scope, &q, Some(limit(q.limit)?))?;
    #[derive(serde::Serialize)]
    struct Page<'a> {
        agency: String,
        rows: Vec<RowOut<'a>>,
        next_cursor: Option<String>,
    }
    Ok(HttpResponse::Ok().json(Page {
        agency,
        rows: rows.iter().map(|(r, s)| row_json(r, *s, &state)).collect(),
        next_cursor: next,
    }))
}

/// `GET /v1/deadlines/stats`: per unit, answering agency or month, on time vs late (on the deadline in force).
#[utoipa::path(tag = "queries", params(DeadlineQuery),
    responses((status = 200, description = "{agency, units: [{unit, total, on_time, late, open_overdue, open_in_time, on_time_rate}]}; with by=agency `agencies: [{agency, …}]`, with by=month `months: [{month, …}]`"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/deadlines/stats")]
pub(crate) async fn deadline_stats(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, &q)?;
    let agency = scope_name(&scope);
    let by = Grouping::parse(q.by.as_deref(), &scope)?;
    let q = q.into_inner();
    let (rows, _) = blocking(state.clone(), move |st| deadline_rows(st, &scope, &q, None)).await?;
    let mut body = json!({ "agency": agency });
    body[by.list()] = json!(stats(&rows, by));
    Ok(HttpResponse::Ok().json(body))
}

/// What statistics are counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// The assigned unit (`-` = the agency's replies).
    Unit,
    /// The answering agency.
    Agency,
    /// The deadline's month, `YYYY-MM`.
    Month,
}

impl Grouping {
    /// From `by`; the default is per unit, or per agency for an issuer's follow-up.
    pub fn parse(by: Option<&str>, scope: &DeadlineScope) -> Result<Self, Problem> {
        match by {
            None if scope.agency.is_none() => Ok(Grouping::Agency),
            None | Some("unit") => Ok(Grouping::Unit),
            Some("agency") => Ok(Grouping::Agency),
            Some("month") => Ok(Grouping::Month),
            Some(other) => Err(Problem::bad_request(format!(
                "by {other:?} is not one of unit, agency, month"
            ))),
        }
    }

    /// The field naming a group.
    pub fn field(self) -> &'static str {
        match self {
            Grouping::Unit => "unit",
            Grouping::Agency => "agency",
            Grouping::Month => "month",
        }
    }

    /// The answer's list of groups.
    pub fn list(self) -> &'static str {
        match self {
            Grouping::Unit => "units",
            Grouping::Agency => "agencies",
            Grouping::Month => "months",
        }
    }

    fn key(self, row: &Row) -> String {
        match self {
            Grouping::Unit => row.unit.clone().unwrap_or_else(|| "-".into()),
            Grouping::Agency => row.agency.clone(),
            Grouping::Month => row.deadline.format("%Y-%m").to_string(),
        }
    }
}

/// Counts per group, in the group's order.
pub fn stats(rows: &[(Row, Status)], by: Grouping) -> Vec<Value> {
    let mut per: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (row, status) in rows {
        let c = per.entry(by.key(row)).or_default();
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
                by.field(): unit,
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

/// `GET /v1/deadlines/overdue.csv`: open overdue deadlines, for clerks' reports.
#[utoipa::path(tag = "queries", params(DeadlineQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 400), (status = 401), (status = 403)))]
#[get("/v1/deadlines/overdue.csv")]
pub(crate) async fn overdue_csv(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    q: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, Problem> {
    caught_up(&state, &req, q.min_position, "deadlines").await?;
    let scope = deadline_scope(&state, &caller, &q)?;
    let agency = scope_name(&scope);
    let mut query = q.into_inner();
    query.status = Some("overdue".into());
    let (rows, _) = blocking(state.clone(), move |st| {
        deadline_rows(st, &scope, &query, None)
    })
    .await?;
    Ok(overdue_csv_response(&state, &agency, &rows))
}

/// The overdue report of `agency` from its overdue rows.
pub(crate) fn overdue_csv_response(
    state: &AppState,
    agency: &str,
    rows: &[(Row, Status)],
) -> HttpResponse {
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
    csv_response(&format!("qua-han-{agency}.csv"), body)
}
