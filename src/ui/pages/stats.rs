//! *Thống kê* (`GET /ui/stats`): on-time reply rates per answering agency,
//! per month and per own unit, for a period, as bars and as tables.
//!
//! Must never: compute rates of its own (they are `api::queries::stats`'s,
//! as the API gives them) or read rows other than through `api::queries`.

use actix_web::{web, HttpResponse};
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use serde::Deserialize;

use super::{a_query, rows_of};
use crate::api::queries::{self, Grouping};
use crate::http::AppState;
use crate::projections::deadlines::{Row, Status};
use crate::ui::chart::{self, Bar};
use crate::ui::forms::{agency_field, agency_for, date_input, given, parse_date};
use crate::ui::session::Viewer;
use crate::ui::{date, encode, html_response, layout, percent, Nav, UiError, Who};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(stats));
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
