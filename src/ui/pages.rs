//! The pages officials work from: home, *Hạn trả lời* (deadlines, with the
//! overdue CSV), *Thống kê* (on-time rates per agency, unit and month),
//! *Hộp văn bản* (the official's boxes with read marks) and *Sổ văn bản*
//! (registers, paged, with CSV).
//!
//! Must never: read a view other than through `api::queries`' functions,
//! which apply `domain::access`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::chart::{self, Bar};
use super::session::{check_form, Viewer};
use super::{date, encode, html_response, layout, percent, see_other, time, Nav, UiError, Who};
use crate::api::queries::{
    self, caught_up, deadline_rows, deadline_scope, own_inbox, register_page, DeadlineQuery,
    Grouping, InboxQuery, RegisterEnd, RegisterQuery,
};
use crate::http::AppState;
use crate::projections::deadlines::{Row, Status};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/deadlines", web::get().to(deadlines))
        .route("/deadlines/overdue.csv", web::get().to(overdue_csv))
        .route("/stats", web::get().to(stats))
        .route("/inbox", web::get().to(inbox))
        .route("/inbox/{doc}/read", web::post().to(mark_read))
        .route("/registers", web::get().to(registers))
        .route(
            "/registers/{agency}/{year}/{file}",
            web::get().to(register_csv),
        );
}

/// The agencies the viewer holds a position in now.
fn agencies_of(state: &AppState, viewer: &Viewer) -> Vec<String> {
    let now = state.docs.clock.now();
    let mut mine: Vec<String> = state.org.read(|org| {
        org.positions_at(&viewer.caller.id, now)
            .iter()
            .map(|a| a.agency.clone())
            .collect()
    });
    mine.sort();
    mine.dedup();
    mine
}

/// The agency a page is about: the one asked for if the viewer belongs to
/// it, else their first.
fn agency_for(state: &AppState, viewer: &Viewer, asked: Option<&str>) -> Result<String, UiError> {
    let mine = agencies_of(state, viewer);
    match asked.filter(|a| !a.is_empty()) {
        Some(a) if mine.iter().any(|m| m == a) => Ok(a.to_owned()),
        Some(_) | None => mine.into_iter().next().ok_or_else(|| {
            UiError::page(
                403,
                "Không có quyền",
                "Tài khoản không giữ chức vụ nào trong tổ chức.",
            )
        }),
    }
}

/// The agency a filter form is about: a choice when the viewer holds
/// positions in several.
fn agency_field(state: &AppState, viewer: &Viewer, agency: &str) -> Markup {
    let mine = agencies_of(state, viewer);
    html! {
        @if mine.len() > 1 {
            label { "Cơ quan"
                select name="agency" {
                    @for a in &mine { option value=(a) selected[a == agency] { (agency_name(state, a)) } }
                }
            }
        } @else {
            input type="hidden" name="agency" value=(agency);
        }
    }
}

fn agency_name(state: &AppState, code: &str) -> String {
    state
        .org
        .read(|org| org.agencies.get(code).map(|a| a.name.clone()))
        .unwrap_or_else(|| code.to_owned())
}

/// A non-empty form value.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_date(v: &Option<String>, what: &str) -> Result<Option<NaiveDate>, UiError> {
    given(v)
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
                .map_err(|_| {
                    UiError::page(
                        400,
                        "Yêu cầu không hợp lệ",
                        &format!("{what} \u{201c}{s}\u{201d} không phải ngày (dd/mm/yyyy)."),
                    )
                })
        })
        .transpose()
}

/// A date field in Việt Nam's format, whatever the browser's locale (a
/// native date input shows the browser's).
fn date_input(name: &str, value: Option<NaiveDate>) -> Markup {
    html! {
        input type="text" name=(name) inputmode="numeric" placeholder="dd/mm/yyyy"
            pattern="[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}" autocomplete="off"
            value=(value.map(date).unwrap_or_default());
    }
}

/// The Vietnamese name of a deadline status.
pub(super) fn status_name(s: Status) -> &'static str {
    match s {
        Status::Overdue => "Quá hạn",
        Status::DueSoon => "Sắp đến hạn",
        Status::Pending => "Trong hạn",
        Status::RepliedOnTime => "Đã trả lời đúng hạn",
        Status::RepliedLate => "Đã trả lời muộn",
    }
}

fn a_query(agency: Option<String>, issuer: Option<String>) -> DeadlineQuery {
    DeadlineQuery {
        agency,
        issuer,
        unit: None,
        status: None,
        due_before: None,
        from: None,
        to: None,
        by: None,
        cursor: None,
        limit: None,
        min_position: None,
    }
}

/// Rows of the issuer's follow-up (`issued`) or of the agency's own
/// deadlines, as `queries::deadline_rows` gives them to this viewer (read
/// off the HTTP workers: every row of the view may be read).
async fn rows_of(
    state: &web::Data<AppState>,
    viewer: &Viewer,
    agency: &str,
    issued: bool,
    q: &DeadlineQuery,
) -> Result<Vec<(Row, Status)>, UiError> {
    let mut query = if issued {
        a_query(None, Some(agency.to_owned()))
    } else {
        a_query(Some(agency.to_owned()), None)
    };
    query.status = q.status.clone();
    query.due_before = q.due_before;
    query.from = q.from;
    query.to = q.to;
    let scope = deadline_scope(state, &viewer.caller, &query)?;
    let (rows, _) = queries::blocking(state.clone(), move |st| {
        deadline_rows(st, &scope, &query, None)
    })
    .await?;
    Ok(rows)
}

/// `GET /ui/`: what needs attention.
async fn home(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, UiError> {
    let who = Who::of(&state, &viewer);
    let agency = agency_for(&state, &viewer, None)?;
    let all = a_query(None, None);
    let issued = rows_of(&state, &viewer, &agency, true, &all).await?;
    let own = rows_of(&state, &viewer, &agency, false, &all).await?;
    let count = |rows: &[(Row, Status)], s: Status| rows.iter().filter(|(_, x)| *x == s).count();
    let q = InboxQuery {
        box_: None,
        state: None,
        cursor: None,
        limit: Some(100),
        min_position: None,
        agency: None,
    };
    let items = own_inbox(&state, &viewer.caller, &q)?;
    let items = items["items"].as_array().cloned().unwrap_or_default();
    let unread = items.iter().filter(|i| i["read"] != true).count();
    let body = html! {
        h1 { "Chào " (who.name) }
        p class="lead" { (agency_name(&state, &agency)) }
        div class="cards" {
            a class="card bad" href="/ui/deadlines?status=overdue" {
                strong { (count(&issued, Status::Overdue)) }
                span { "văn bản đơn vị khác trả lời quá hạn" }
            }
            a class="card warn" href="/ui/deadlines?status=due_soon" {
                strong { (count(&issued, Status::DueSoon) + count(&own, Status::DueSoon)) }
                span { "văn bản sắp đến hạn" }
            }
            a class="card bad" href="/ui/deadlines?status=overdue#own" {
                strong { (count(&own, Status::Overdue)) }
                span { "văn bản đơn vị mình đang quá hạn" }
            }
            a class="card" href="/ui/inbox" {
                strong { (items.len()) @if items.len() == 100 { "+" } }
                span { "văn bản đang chờ (" (unread) " chưa đọc)" }
            }
        }
        ul class="links" {
            li { a href="/ui/deadlines" { "Hạn trả lời" } " – văn bản chờ trả lời và hạn xử lý" }
            li { a href="/ui/stats" { "Thống kê" } " – tỉ lệ trả lời đúng hạn theo đơn vị, theo tháng" }
            li { a href="/ui/inbox" { "Hộp văn bản" } " – văn bản chờ ký, xem xét, xử lý, để biết" }
            li { a href="/ui/registers" { "Sổ văn bản" } " – sổ văn bản đi, đến" }
        }
    };
    Ok(html_response(layout(
        Some(&who),
        "Trang chủ",
        Nav::Home,
        body,
    )))
}

#[derive(Debug, Deserialize)]
struct DeadlineForm {
    agency: Option<String>,
    unit: Option<String>,
    status: Option<String>,
    due_before: Option<String>,
    sort: Option<String>,
    /// Pages (from 1) of the follow-up and of the agency's own rows.
    issued_page: Option<usize>,
    own_page: Option<usize>,
    fragment: Option<String>,
    min_position: Option<u64>,
}

/// Rows per table and page.
const PAGE_ROWS: usize = 100;

const STATUSES: [Status; 5] = [
    Status::Overdue,
    Status::DueSoon,
    Status::Pending,
    Status::RepliedOnTime,
    Status::RepliedLate,
];

/// `GET /ui/deadlines`: the replies the agency is owed and the deadlines
/// it must meet, filtered and sorted.
async fn deadlines(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    f: web::Query<DeadlineForm>,
) -> Result<HttpResponse, UiError> {
    caught_up(&state, &req, f.min_position, "deadlines").await?;
    let position = state.projections.position("deadlines");
    let agency = agency_for(&state, &viewer, given(&f.agency))?;
    let status = given(&f.status)
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                UiError::page(
                    400,
                    "Yêu cầu không hợp lệ",
                    &format!("Trạng thái \u{201c}{s}\u{201d} không có."),
                )
            })
        })
        .transpose()?;
    let mut q = a_query(None, None);
    q.status = status.map(|s| s.as_str().to_owned());
    q.due_before = parse_date(&f.due_before, "Hạn trước ngày")?;
    let unit = given(&f.unit).map(str::to_owned);
    // Most urgent first: overdue, due soon, in time, then the answered.
    let sort = given(&f.sort).unwrap_or("status").to_owned();
    let section = |mut rows: Vec<(Row, Status)>, issued: bool| {
        // The unit filter: the answering agency in the follow-up, the
        // assigned unit (or "-", the agency's replies) in its own rows.
        if let Some(u) = &unit {
            rows.retain(|(r, _)| {
                if issued {
                    r.agency == *u
                } else {
                    r.unit.as_deref().unwrap_or("-") == u
                }
            });
        }
        sort_rows(&mut rows, &sort, issued);
        rows
    };
    let issued = section(rows_of(&state, &viewer, &agency, true, &q).await?, true);
    let own = section(rows_of(&state, &viewer, &agency, false, &q).await?, false);
    let table = html! {
        section aria-labelledby="issued-title" {
            h2 id="issued-title" { "Văn bản " (agency) " ban hành, chờ đơn vị khác trả lời" }
            p class="summary" { (summary(&issued)) }
            (rows_table("issued", &issued, true, &sort, &f, f.issued_page))
        }
        section aria-labelledby="own-title" id="own" {
            h2 id="own-title" { "Văn bản " (agency) " phải trả lời hoặc xử lý" }
            p class="summary" { (summary(&own)) }
            (rows_table("own", &own, false, &sort, &f, f.own_page))
        }
    };
    if f.fragment.is_some() {
        return Ok(html_response(table));
    }
    let who = Who::of(&state, &viewer);
    let mut units: Vec<String> = issued.iter().map(|(r, _)| r.agency.clone()).collect();
    units.extend(
        own.iter()
            .map(|(r, _)| r.unit.clone().unwrap_or_else(|| "-".into())),
    );
    units.extend(unit.clone());
    units.sort();
    units.dedup();
    let csv_issued = format!("/ui/deadlines/overdue.csv?issuer={}", encode(&agency));
    let csv_own = format!("/ui/deadlines/overdue.csv?agency={}", encode(&agency));
    let body = html! {
        h1 { "Hạn trả lời" }
        form class="filters" method="get" action="/ui/deadlines" {
            (agency_field(&state, &viewer, &agency))
            label { "Đơn vị"
                select name="unit" {
                    option value="" { "Tất cả" }
                    @for u in &units {
                        option value=(u) selected[unit.as_deref() == Some(u.as_str())] {
                            @if u == "-" { "(cả cơ quan)" } @else { (u) }
                        }
                    }
                }
            }
            label { "Trạng thái"
                select name="status" {
                    option value="" { "Tất cả" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[status == Some(s)] { (status_name(s)) }
                    }
                }
            }
            label { "Hạn trước ngày (dd/mm/yyyy)"
                (date_input("due_before", q.due_before))
            }
            input type="hidden" name="sort" value=(sort);
            button type="submit" { "Lọc" }
            a href="/ui/deadlines" { "Bỏ lọc" }
        }
        p class="downloads" {
            a href=(csv_issued) download { "Tải danh sách đơn vị khác quá hạn (CSV)" }
            " · "
            a href=(csv_own) download { "Tải danh sách " (agency) " quá hạn (CSV)" }
        }
        div id="live" data-live="deadlines" data-position=(position) aria-live="polite" { (table) }
    };
    Ok(html_response(layout(
        Some(&who),
        "Hạn trả lời",
        Nav::Deadlines,
        body,
    )))
}

fn sort_rows(rows: &mut [(Row, Status)], sort: &str, issued: bool) {
    let rank = |s: &Status| STATUSES.iter().position(|x| x == s).unwrap_or(0);
    let who = |r: &Row| {
        if issued {
            r.agency.clone()
        } else {
            r.unit.clone().unwrap_or_default()
        }
    };
    match sort {
        "-due" => rows.sort_by_key(|r| std::cmp::Reverse(r.0.deadline)),
        "unit" => rows.sort_by(|a, b| {
            who(&a.0)
                .cmp(&who(&b.0))
                .then(a.0.deadline.cmp(&b.0.deadline))
        }),
        "status" => rows.sort_by(|a, b| {
            rank(&a.1)
                .cmp(&rank(&b.1))
                .then(a.0.deadline.cmp(&b.0.deadline))
        }),
        _ => rows.sort_by_key(|r| r.0.deadline),
    }
}

fn summary(rows: &[(Row, Status)]) -> String {
    if rows.is_empty() {
        return "Không có văn bản nào.".into();
    }
    let parts: Vec<String> = STATUSES
        .iter()
        .filter_map(|s| {
            let n = rows.iter().filter(|(_, x)| x == s).count();
            (n > 0).then(|| format!("{n} {}", status_name(*s).to_lowercase()))
        })
        .collect();
    format!("{} văn bản: {}.", rows.len(), parts.join(", "))
}

/// The deadlines page with the form's filters, sorted by `sort`, and `more`.
fn deadlines_href(f: &DeadlineForm, sort: &str, more: &str) -> String {
    let mut href = String::from("/ui/deadlines?");
    for (k, v) in [
        ("agency", &f.agency),
        ("unit", &f.unit),
        ("status", &f.status),
        ("due_before", &f.due_before),
    ] {
        if let Some(v) = given(v) {
            href.push_str(&format!("{k}={}&", encode(v)));
        }
    }
    href.push_str(&format!("sort={}{more}", encode(sort)));
    href
}

/// A sortable column header: a link that sorts by it.
fn sort_link(label: &str, key: &str, current: &str, f: &DeadlineForm) -> Markup {
    let next = if current == key && key == "due" {
        "-due"
    } else {
        key
    };
    let href = deadlines_href(f, next, "");
    let sorted = match (current, key) {
        ("due", "due") | ("unit", "unit") | ("status", "status") => Some("ascending"),
        ("-due", "due") => Some("descending"),
        _ => None,
    };
    html! {
        th scope="col" aria-sort=[sorted] { a href=(href) { (label) } }
    }
}

fn rows_table(
    id: &str,
    all: &[(Row, Status)],
    issued: bool,
    sort: &str,
    f: &DeadlineForm,
    page: Option<usize>,
) -> Markup {
    let pages = all.len().div_ceil(PAGE_ROWS).max(1);
    let page = page.unwrap_or(1).clamp(1, pages);
    let rows = &all[(page - 1) * PAGE_ROWS..(page * PAGE_ROWS).min(all.len())];
    // The other table keeps its page.
    let (param, other) = if issued {
        ("issued_page", f.own_page.map(|p| format!("&own_page={p}")))
    } else {
        (
            "own_page",
            f.issued_page.map(|p| format!("&issued_page={p}")),
        )
    };
    let to = |p: usize| {
        deadlines_href(
            f,
            sort,
            &format!("&{param}={p}{}", other.clone().unwrap_or_default()),
        )
    };
    html! {
        @if !rows.is_empty() {
            div class="scroll" {
                table class="rows" id={ (id) "-rows" } {
                    thead { tr {
                        th scope="col" { "Số, ký hiệu" }
                        th scope="col" { "Trích yếu" }
                        (sort_link(if issued { "Đơn vị trả lời" } else { "Đơn vị" }, "unit", sort, f))
                        th scope="col" { "Loại" }
                        (sort_link("Hạn", "due", sort, f))
                        (sort_link("Trạng thái", "status", sort, f))
                        th scope="col" { "Ngày trả lời" }
                    } }
                    tbody {
                        @for (r, s) in rows {
                            tr data-status=(s.as_str()) data-agency=(r.agency) data-doc=(r.doc) {
                                td data-label="Số, ký hiệu" { a href={ "/ui/documents/" (r.doc) } { (r.reference) } }
                                td data-label="Trích yếu" { (r.title) }
                                td data-label=(if issued { "Đơn vị trả lời" } else { "Đơn vị" }) {
                                    @if issued { (r.agency) }
                                    @else { (r.unit.as_deref().unwrap_or("(cả cơ quan)")) }
                                }
                                td data-label="Loại" { @if r.kind == "reply" { "Trả lời" } @else { "Xử lý" } }
                                td data-label="Hạn" {
                                    (date(r.deadline))
                                    @if r.original != r.deadline {
                                        br; small { "gia hạn, hạn đầu " (date(r.original)) }
                                    }
                                }
                                td data-label="Trạng thái" { span class={ "status " (s.as_str()) } { (status_name(*s)) } }
                                td data-label="Ngày trả lời" { @if let Some(at) = r.done_at { (time(at)) } }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav class="pager" aria-label={ "Trang của bảng " (if issued { "chờ đơn vị khác trả lời" } else { "phải trả lời" }) } {
                    @if page > 1 { a href=(to(page - 1)) rel="prev" { "← Trang trước" } " " }
                    span { "Trang " (page) "/" (pages) }
                    @if page < pages { " " a href=(to(page + 1)) rel="next" { "Trang sau →" } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct CsvForm {
    agency: Option<String>,
    issuer: Option<String>,
}

/// `GET /ui/deadlines/overdue.csv`: the API's overdue report, for the page.
async fn overdue_csv(
    state: web::Data<AppState>,
    viewer: Viewer,
    f: web::Query<CsvForm>,
) -> Result<HttpResponse, UiError> {
    let mut q = a_query(
        given(&f.agency).map(str::to_owned),
        given(&f.issuer).map(str::to_owned),
    );
    q.status = Some("overdue".into());
    let scope = deadline_scope(&state, &viewer.caller, &q)?;
    let name = queries::scope_name(&scope);
    let (rows, _) =
        queries::blocking(state.clone(), move |st| deadline_rows(st, &scope, &q, None)).await?;
    Ok(queries::overdue_csv_response(&state, &name, &rows))
}

#[derive(Debug, Deserialize)]
struct StatsForm {
    agency: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /ui/stats`: on-time rates per answering agency, per month and per
/// own unit, for a period.
async fn stats(
    state: web::Data<AppState>,
    viewer: Viewer,
    f: web::Query<StatsForm>,
) -> Result<HttpResponse, UiError> {
    let who = Who::of(&state, &viewer);
    let agency = agency_for(&state, &viewer, given(&f.agency))?;
    let mut q = a_query(None, None);
    q.from = parse_date(&f.from, "Từ ngày")?;
    q.to = parse_date(&f.to, "Đến ngày")?;
    if let (Some(a), Some(b)) = (q.from, q.to) {
        if a > b {
            return Err(UiError::page(
                400,
                "Yêu cầu không hợp lệ",
                "Từ ngày phải trước đến ngày.",
            ));
        }
    }
    let issued = rows_of(&state, &viewer, &agency, true, &q).await?;
    let own = rows_of(&state, &viewer, &agency, false, &q).await?;
    let groups = |rows: &[(Row, Status)], by: Grouping| -> Vec<Bar> {
        queries::stats(rows, by)
            .iter()
            .map(|g| Bar::from_stats(g, by.field()))
            .collect()
    };
    let by_agency = groups(&issued, Grouping::Agency);
    let by_month = groups(&issued, Grouping::Month);
    let by_unit = groups(&own, Grouping::Unit);
    let today = crate::domain::calendar::Calendar::local_date(state.docs.clock.now());
    let year = today.year();
    let period = |from: NaiveDate, to: NaiveDate| {
        format!(
            "/ui/stats?agency={}&from={}&to={}",
            encode(&agency),
            date(from),
            date(to)
        )
    };
    let month_start = today.with_day(1).unwrap_or(today);
    let quarter_start =
        NaiveDate::from_ymd_opt(year, (today.month0() / 3) * 3 + 1, 1).unwrap_or(today);
    let body = html! {
        h1 { "Thống kê trả lời đúng hạn" }
        form class="filters" method="get" action="/ui/stats" {
            (agency_field(&state, &viewer, &agency))
            label { "Từ ngày (dd/mm/yyyy)" (date_input("from", q.from)) }
            label { "Đến ngày (dd/mm/yyyy)" (date_input("to", q.to)) }
            button type="submit" { "Xem" }
        }
        p class="periods" {
            "Kỳ: "
            a href=(period(month_start, today)) { "Tháng này" } " · "
            a href=(period(quarter_start, today)) { "Quý này" } " · "
            a href=(period(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(today), NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(today))) { "Năm " (year) } " · "
            a href={ "/ui/stats?agency=" (encode(&agency)) } { "Toàn bộ" }
        }
        p class="lead" {
            "Hạn trong kỳ: "
            @match (q.from, q.to) {
                (None, None) => { "toàn bộ thời gian" }
                (from, to) => {
                    (from.map(date).unwrap_or_else(|| "…".into())) " – " (to.map(date).unwrap_or_else(|| "…".into()))
                }
            }
        }
        (stats_section("by-agency", &format!("Đơn vị trả lời văn bản {agency} ban hành"), "Đơn vị", &by_agency))
        (stats_section("by-month", "Theo tháng (hạn trả lời)", "Tháng", &by_month))
        (stats_section("by-unit", &format!("Đơn vị thuộc {agency} (hạn trả lời, xử lý)"), "Đơn vị", &by_unit))
    };
    Ok(html_response(layout(
        Some(&who),
        "Thống kê",
        Nav::Stats,
        body,
    )))
}

fn stats_section(id: &str, title: &str, column: &str, bars: &[Bar]) -> Markup {
    html! {
        section class="stats" aria-labelledby={ (id) "-h" } {
            h2 id={ (id) "-h" } { (title) }
            @if bars.is_empty() {
                p { "Không có hạn nào trong kỳ." }
            } @else {
                div class="pair" {
                    figure {
                        (chart::bars(&format!("{id}-chart"), &format!("Tỉ lệ trả lời đúng hạn – {title}"), bars))
                        figcaption { "Tỉ lệ đúng hạn trên số đã trả lời (xanh: từ 80 %)" }
                    }
                    div class="scroll" { table class="numbers" id={ (id) "-table" } {
                        caption { "Số liệu: " (title) }
                        thead { tr {
                            th scope="col" { (column) }
                            th scope="col" { "Tổng" }
                            th scope="col" { "Đúng hạn" }
                            th scope="col" { "Muộn" }
                            th scope="col" { "Quá hạn chưa trả lời" }
                            th scope="col" { "Tỉ lệ đúng hạn" }
                        } }
                        tbody {
                            @for b in bars {
                                tr {
                                    th scope="row" { (b.label) }
                                    td { (b.total) }
                                    td { (b.on_time) }
                                    td { (b.late) }
                                    td { (b.open_overdue) }
                                    td { (b.rate.map_or_else(|| "—".to_owned(), percent)) }
                                }
                            }
                        }
                    } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct InboxForm {
    #[serde(rename = "box")]
    box_: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
    fragment: Option<String>,
    min_position: Option<u64>,
}

fn box_name(b: &str) -> &'static str {
    match b {
        "sign" => "Chờ ký",
        "review" => "Xem xét",
        "handle" => "Xử lý",
        "info" => "Để biết",
        _ => "Khác",
    }
}

fn reason_name(r: &str) -> &'static str {
    match r {
        "signing" => "trình ký",
        "review" => "xem xét",
        "approval" => "phê duyệt",
        "opinion" => "xin ý kiến",
        "receive" => "tiếp nhận văn bản đến",
        "assign" => "phân công xử lý",
        "lead" => "chủ trì",
        "coordinating" => "phối hợp",
        "handler" => "xử lý",
        "fyi" => "để biết",
        "recall" => "nơi gửi yêu cầu lấy lại",
        _ => "khác",
    }
}

/// `GET /ui/inbox`: the viewer's boxes.
async fn inbox(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    f: web::Query<InboxForm>,
) -> Result<HttpResponse, UiError> {
    caught_up(&state, &req, f.min_position, "inbox").await?;
    let position = state.projections.position("inbox");
    let box_ = given(&f.box_).map(str::to_owned);
    let wanted = given(&f.state).unwrap_or("pending").to_owned();
    let q = InboxQuery {
        box_: box_.clone(),
        state: Some(wanted.clone()),
        cursor: given(&f.cursor).map(str::to_owned),
        limit: Some(50),
        min_position: None,
        agency: None,
    };
    let page = own_inbox(&state, &viewer.caller, &q)?;
    let items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    let next = page["next_cursor"].as_str().map(str::to_owned);
    let link = |b: Option<&str>, s: &str| {
        let mut href = format!("/ui/inbox?state={s}");
        if let Some(b) = b {
            href.push_str(&format!("&box={b}"));
        }
        href
    };
    let list = html! {
        @if items.is_empty() {
            p { "Không có văn bản nào." }
        } @else {
            ul class="items" {
                @for item in &items {
                    @let read = item["read"] == true;
                    @let doc = item["doc"].as_str().unwrap_or_default();
                    li class=(if read { "item read" } else { "item unread" }) data-doc=(doc) {
                        div {
                            @if !read { span class="badge" { "Chưa đọc" } " " }
                            a href={ "/ui/documents/" (doc) } {
                                (item["reference"].as_str().unwrap_or("(chưa có số)")) " – " (item["title"].as_str().unwrap_or_default())
                            }
                        }
                        div class="meta" {
                            (box_name(item["box"].as_str().unwrap_or_default())) " · "
                            (reason_name(item["reason"].as_str().unwrap_or_default())) " · "
                            (item["agency"].as_str().unwrap_or_default()) " · từ "
                            (item["since"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| time(t.into())).unwrap_or_default())
                        }
                        @if !read {
                            form method="post" action={ "/ui/inbox/" (doc) "/read" } {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" class="small" { "Đánh dấu đã đọc" }
                            }
                        }
                    }
                }
            }
            @if let Some(c) = &next {
                p { a href={ (link(box_.as_deref(), &wanted)) "&cursor=" (encode(c)) } { "Trang sau →" } }
            }
        }
    };
    if f.fragment.is_some() {
        return Ok(html_response(list));
    }
    let who = Who::of(&state, &viewer);
    let body = html! {
        h1 { "Hộp văn bản" }
        nav class="tabs" aria-label="Hộp" {
            @for (b, label) in [(None, "Tất cả"), (Some("sign"), "Chờ ký"), (Some("review"), "Xem xét"), (Some("handle"), "Xử lý"), (Some("info"), "Để biết")] {
                @if box_.as_deref() == b {
                    a href=(link(b, &wanted)) aria-current="page" { (label) }
                } @else {
                    a href=(link(b, &wanted)) { (label) }
                }
            }
        }
        p class="states" {
            @if wanted == "pending" {
                strong { "Đang chờ" } " · " a href=(link(box_.as_deref(), "done")) { "Đã xong" }
            } @else {
                a href=(link(box_.as_deref(), "pending")) { "Đang chờ" } " · " strong { "Đã xong" }
            }
        }
        div id="live" data-live="inbox" data-position=(position) aria-live="polite" { (list) }
    };
    Ok(html_response(layout(
        Some(&who),
        "Hộp văn bản",
        Nav::Inbox,
        body,
    )))
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /ui/inbox/{doc}/read`: marks a document read, back to the inbox.
async fn mark_read(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    doc: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    check_form(&req, &viewer.csrf, &form.csrf)?;
    let (_, position) = queries::mark_read_for(&state, &viewer.caller, &doc).await?;
    Ok(see_other(&match position {
        Some(p) => format!("/ui/inbox?min_position={p}"),
        None => "/ui/inbox".to_owned(),
    }))
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    agency: Option<String>,
    year: Option<String>,
    direction: Option<String>,
    cursor: Option<u64>,
}

/// `GET /ui/registers`: a register of a year, one page at a time.
async fn registers(
    state: web::Data<AppState>,
    viewer: Viewer,
    f: web::Query<RegisterForm>,
) -> Result<HttpResponse, UiError> {
    let who = Who::of(&state, &viewer);
    let agency = agency_for(&state, &viewer, given(&f.agency))?;
    let today = crate::domain::calendar::Calendar::local_date(state.docs.clock.now());
    let year: i32 = match given(&f.year) {
        None => today.year(),
        Some(y) => y
            .parse()
            .ok()
            .filter(|y| (1945..=9999).contains(y))
            .ok_or_else(|| UiError::page(400, "Yêu cầu không hợp lệ", "Năm không hợp lệ."))?,
    };
    let direction = match given(&f.direction) {
        None | Some("outgoing") => "outgoing",
        Some("incoming") => "incoming",
        Some(_) => {
            return Err(UiError::page(
                400,
                "Yêu cầu không hợp lệ",
                "Sổ phải là sổ đi hoặc sổ đến.",
            ))
        }
    };
    let q = RegisterQuery {
        series: None,
        cursor: f.cursor,
        limit: Some(50),
        min_position: None,
    };
    let (stream, entries, end) =
        register_page(&state, &viewer.caller, &agency, year, direction, &q)?;
    let next = match end {
        RegisterEnd::Page(n) => n,
        RegisterEnd::Csv(_) => None,
    };
    let outgoing = direction == "outgoing";
    let base = format!(
        "/ui/registers?agency={}&year={year}&direction={direction}",
        encode(&agency)
    );
    let body = html! {
        h1 { "Sổ văn bản" }
        form class="filters" method="get" action="/ui/registers" {
            (agency_field(&state, &viewer, &agency))
            label { "Năm" input type="number" name="year" min="1945" max="9999" value=(year); }
            label { "Sổ"
                select name="direction" {
                    option value="outgoing" selected[outgoing] { "Sổ văn bản đi" }
                    option value="incoming" selected[!outgoing] { "Sổ văn bản đến" }
                }
            }
            button type="submit" { "Xem" }
        }
        p class="downloads" {
            a href={ "/ui/registers/" (encode(&agency)) "/" (year) "/" (direction) ".csv" } download { "Tải cả sổ (CSV)" }
        }
        h2 { (if outgoing { "Sổ văn bản đi" } else { "Sổ văn bản đến" }) " " (year) " – " (agency_name(&state, &agency)) }
        @if entries.is_empty() {
            p { "Sổ chưa có văn bản nào." }
        } @else {
            div class="scroll" {
                table class="rows" id="register" data-register=(stream) {
                    thead { tr {
                        th scope="col" { (if outgoing { "Số" } else { "Số đến" }) }
                        th scope="col" { (if outgoing { "Ngày" } else { "Ngày đến" }) }
                        th scope="col" { "Số, ký hiệu" }
                        th scope="col" { "Loại" }
                        th scope="col" { "Trích yếu" }
                        th scope="col" { (if outgoing { "Người ký" } else { "Cơ quan ban hành" }) }
                        th scope="col" { (if outgoing { "Nơi nhận" } else { "Người ký" }) }
                        th scope="col" { "Tình trạng" }
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td data-label=(if outgoing { "Số" } else { "Số đến" }) { (crate::domain::numbering::format_number(e.number)) }
                                td data-label=(if outgoing { "Ngày" } else { "Ngày đến" }) { (date(e.date)) }
                                td data-label="Số, ký hiệu" { a href={ "/ui/documents/" (e.doc) } { (e.reference) } }
                                td data-label="Loại" { (e.doc_type) }
                                td data-label="Trích yếu" { (e.title) }
                                td data-label=(if outgoing { "Người ký" } else { "Cơ quan ban hành" }) { (if outgoing { e.signer.clone() } else { e.agency.clone() }) }
                                td data-label=(if outgoing { "Nơi nhận" } else { "Người ký" }) { (if outgoing { e.recipients.join(", ") } else { e.signer.clone() }) }
                                td data-label="Tình trạng" { (register_status(&e.status)) }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label="Trang" {
                @if f.cursor.is_some() { a href=(base) { "← Trang đầu" } " " }
                @if let Some(n) = next { a href={ (base) "&cursor=" (n) } { "Trang sau →" } }
            }
        }
    };
    Ok(html_response(layout(
        Some(&who),
        "Sổ văn bản",
        Nav::Registers,
        body,
    )))
}

/// The Vietnamese name of a register entry's status.
fn register_status(s: &str) -> &str {
    match s {
        "issued" => "Đã ban hành",
        "recalled" => "Đã thu hồi",
        "replaced" => "Đã được thay thế",
        other => other,
    }
}

/// `GET /ui/registers/{agency}/{year}/{outgoing|incoming}.csv`.
async fn register_csv(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, UiError> {
    let (agency, year, file) = path.into_inner();
    let year: i32 = year
        .parse()
        .map_err(|_| UiError::page(404, "Không tìm thấy", "Năm không hợp lệ."))?;
    if !file.ends_with(".csv") {
        return Err(UiError::page(404, "Không tìm thấy", "Chỉ có tệp CSV."));
    }
    let q = RegisterQuery {
        series: None,
        cursor: None,
        limit: None,
        min_position: None,
    };
    let (stream, entries, end) = register_page(&state, &viewer.caller, &agency, year, &file, &q)?;
    match end {
        RegisterEnd::Csv(outgoing) => Ok(queries::register_csv(&stream, outgoing, &entries)),
        RegisterEnd::Page(_) => Err(UiError::page(404, "Không tìm thấy", "Chỉ có tệp CSV.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u32) -> (Row, Status) {
        let day =
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() + chrono::Duration::days(i64::from(i));
        (
            Row {
                doc: uuid::Uuid::from_u128(u128::from(i)),
                reference: format!("{i}/CV-UBND"),
                title: "Công văn".into(),
                issuer: "UBND".into(),
                agency: "SNV".into(),
                unit: None,
                kind: "reply".into(),
                deadline: day,
                original: day,
                extensions: 0,
                confidential: false,
                done_at: None,
                interchange: None,
            },
            Status::Pending,
        )
    }

    fn form(issued_page: Option<usize>, own_page: Option<usize>) -> DeadlineForm {
        DeadlineForm {
            agency: Some("UBND".into()),
            unit: None,
            status: Some("pending".into()),
            due_before: None,
            sort: None,
            issued_page,
            own_page,
            fragment: None,
            min_position: None,
        }
    }

    #[test]
    fn a_long_list_comes_in_pages_that_keep_the_filters_and_the_other_table() {
        let rows: Vec<_> = (0..250).map(row).collect();
        // (page asked, rows shown, first reference, links)
        for (asked, shown, first, prev, next) in [
            (None, 100, "0/CV-UBND", false, true),
            (Some(2), 100, "100/CV-UBND", true, true),
            (Some(3), 50, "200/CV-UBND", true, false),
            (Some(99), 50, "200/CV-UBND", true, false),
            (Some(0), 100, "0/CV-UBND", false, true),
        ] {
            let html = rows_table("issued", &rows, true, "due", &form(asked, Some(4)), asked)
                .into_string();
            assert_eq!(html.matches("<tr data-status").count(), shown, "{asked:?}");
            assert!(html.contains(&format!(">{first}<")), "{asked:?}");
            assert_eq!(html.contains("rel=\"prev\""), prev, "{asked:?}");
            assert_eq!(html.contains("rel=\"next\""), next, "{asked:?}");
            if next {
                assert!(
                    html.contains("agency=UBND&amp;status=pending&amp;sort=due&amp;issued_page="),
                    "the filters stay: {html}"
                );
                assert!(
                    html.contains("&amp;own_page=4"),
                    "the other table's page stays"
                );
            }
        }
        let short =
            rows_table("own", &rows[..3], false, "due", &form(None, None), None).into_string();
        assert!(!short.contains("class=\"pager\""));
    }
}
