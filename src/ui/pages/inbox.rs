//! *Hộp văn bản* (`GET /ui/inbox`): the official's boxes (to sign, review,
//! handle, for information), live, and marking a document read.
//!
//! Must never: show another official's box, or mark a document read
//! without the session's CSRF token.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use crate::api::queries::{self, caught_up, own_inbox, InboxQuery};
use crate::http::AppState;
use crate::ui::forms::{box_name, given, reason_name};
use crate::ui::session::{check_form, Viewer};
use crate::ui::{encode, html_response, layout, see_other, time, Nav, UiError, Who};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inbox", web::get().to(inbox))
        .route("/inbox/{doc}/read", web::post().to(mark_read));
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
