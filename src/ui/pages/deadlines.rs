//! *Hạn trả lời* (`GET /ui/deadlines`): the replies an agency is owed and
//! the deadlines it must meet, filtered, sorted and paged, live; and the
//! overdue report as CSV.
//!
//! Must never: read a deadline other than through `api::queries`
//! (`deadline_scope`, `deadline_rows`), which apply `domain::access`.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::{a_query, rows_of};
use crate::api::queries::{self, caught_up, deadline_rows, deadline_scope};
use crate::http::AppState;
use crate::projections::deadlines::{Row, Status};
use crate::ui::forms::{agency_field, agency_for, date_input, given, parse_date, status_name};
use crate::ui::session::Viewer;
use crate::ui::{date, encode, html_response, layout, time, Nav, UiError, Who};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/deadlines", web::get().to(deadlines))
        .route("/deadlines/overdue.csv", web::get().to(overdue_csv));
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

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
