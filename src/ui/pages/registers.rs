//! *Sổ văn bản* (`GET /ui/registers`): an agency's outgoing or incoming
//! register of a year, one page at a time, and the whole register as CSV.
//!
//! Must never: read a register other than through
//! `api::queries::register_page`, which applies `domain::access`.

use actix_web::{web, HttpResponse};
use chrono::Datelike;
use maud::html;
use serde::Deserialize;

use crate::api::queries::{self, register_page, RegisterEnd, RegisterQuery};
use crate::http::AppState;
use crate::ui::forms::{agency_field, agency_for, agency_name, given, register_status};
use crate::ui::session::Viewer;
use crate::ui::{date, encode, html_response, layout, Nav, UiError, Who};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/registers", web::get().to(registers)).route(
        "/registers/{agency}/{year}/{file}",
        web::get().to(register_csv),
    );
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
