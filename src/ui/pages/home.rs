//! The home page (`GET /ui/`): what needs the official's attention, in
//! counts that link to the lists behind them.
//!
//! Must never: count a row the viewer's lists would not show (it reads the
//! same `api::queries` functions as those pages).

use actix_web::{web, HttpResponse};
use maud::html;

use super::{a_query, rows_of};
use crate::api::queries::{own_inbox, InboxQuery};
use crate::http::AppState;
use crate::projections::deadlines::{Row, Status};
use crate::ui::forms::{agency_for, agency_name};
use crate::ui::session::Viewer;
use crate::ui::{html_response, layout, Nav, UiError, Who};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
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
