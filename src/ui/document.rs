//! One document as the viewer may see it: its state, its timeline, its
//! signature with the verification report recorded when it was accepted
//! (who signed, in what capacity, valid or not and why), its files and
//! the offline verification bundle.
//!
//! Must never: show more than `domain::access::view` leaves, or a trail
//! to anyone `service::load::trail` refuses.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::session::Viewer;
use super::{date, html_response, layout, time, Nav, UiError, Who};
use crate::api::queries::verification_of;
use crate::domain::access::view;
use crate::domain::document::{DocumentEvent, Status};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::service::evidence::{bundle_for, file_of};
use crate::service::load::{readable, trail};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/documents/{id}", web::get().to(page))
        .route("/documents/{id}/bundle", web::get().to(bundle))
        .route("/documents/{id}/content/{sha256}", web::get().to(content));
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Draft => "Dự thảo",
        Status::InReview => "Đang xem xét",
        Status::AwaitingSignature => "Chờ ký",
        Status::Signed => "Đã ký",
        Status::Issued => "Đã ban hành",
        Status::Recalled => "Đã thu hồi",
        Status::Replaced => "Đã được thay thế",
    }
}

/// What an event of a document is called on its timeline. A match on the
/// event itself, without a default: a new event does not compile until it
/// has its name here.
fn event_label(e: &DocumentEvent) -> &'static str {
    match e {
        DocumentEvent::Drafted(_) => "Soạn dự thảo",
        DocumentEvent::Revised(_) => "Sửa dự thảo",
        DocumentEvent::Routed(_) => "Trình",
        DocumentEvent::Returned(_) => "Trả lại",
        DocumentEvent::OpinionRequested(_) => "Xin ý kiến",
        DocumentEvent::OpinionGiven(_) => "Cho ý kiến",
        DocumentEvent::Signed(_) => "Ký số",
        DocumentEvent::Issued(_) => "Ban hành, đóng dấu số",
        DocumentEvent::Recalled(_) => "Thu hồi",
        DocumentEvent::Replaced(_) => "Thay thế",
        DocumentEvent::Received(_) => "Tiếp nhận (vào sổ đến)",
        DocumentEvent::Assigned(_) => "Phân công xử lý",
        DocumentEvent::DeadlineExtended(_) => "Gia hạn",
        DocumentEvent::Replied(_) => "Trả lời",
        DocumentEvent::ReplyLinked(_) => "Gắn văn bản trả lời",
        DocumentEvent::Completed(_) => "Hoàn thành xử lý",
        DocumentEvent::Arrived(_) => "Đến từ hệ thống khác (liên thông)",
        DocumentEvent::Refused(_) => "Từ chối tiếp nhận",
        DocumentEvent::RecallRequested(_) => "Nơi gửi yêu cầu lấy lại",
        DocumentEvent::RecallAnswered(_) => "Trả lời yêu cầu lấy lại",
        DocumentEvent::InterchangeStatus(_) => "Trạng thái từ nơi nhận (liên thông)",
    }
}

/// The timeline's name of a trail entry: its event's label; an entry whose
/// payload does not decode as a document event (the log would be damaged)
/// shows its stored type as it is, and is logged.
fn entry_label(entry: &Value) -> String {
    match DocumentEvent::deserialize(&entry["payload"]) {
        Ok(e) => event_label(&e).to_owned(),
        Err(error) => {
            let kind = entry["type"].as_str().unwrap_or_default();
            tracing::warn!(kind, %error, "a document event did not decode for the timeline");
            kind.to_owned()
        }
    }
}

/// What a signing form means (Decree 30/2020, Article 13).
fn form_name(form: &str) -> &'static str {
    match form {
        "TM." => "thay mặt tập thể",
        "KT." => "ký thay người đứng đầu",
        "TL." => "thừa lệnh",
        "TUQ." => "thừa ủy quyền",
        "Q." => "quyền người đứng đầu",
        _ => "",
    }
}

fn official_name(state: &AppState, id: &str) -> String {
    state
        .org
        .read(|org| {
            org.appointments
                .iter()
                .find(|a| a.official == id)
                .map(|a| a.name.clone())
        })
        .unwrap_or_else(|| id.to_owned())
}

/// `GET /ui/documents/{id}`.
async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let doc = readable(&state, &viewer.caller.id, &id).map_err(Problem::from)?;
    let now = state.docs.clock.now();
    let seen = state
        .org
        .read(|org| view(&doc, org, &viewer.caller.id, now));
    // Those who see the drafting get the whole trail; recipients see the
    // issue and their own agency's handling from the view.
    let events: Option<Vec<Value>> = trail(&state, &viewer.caller.id, &doc).ok();
    // Signed but not yet in the signatures view (it lags by moments): the
    // page says so rather than failing.
    let evidence = doc
        .signature
        .as_ref()
        .map(|_| verification_of(&state, &doc).ok());
    let who = Who::of(&state, &viewer);
    let title = seen.issue.as_ref().map_or_else(
        || seen.draft.title.clone(),
        |i| format!("{} – {}", i.reference, seen.draft.title),
    );
    let body = html! {
        p { a href="/ui/deadlines" { "← Hạn trả lời" } }
        h1 { (title) }
        dl class="facts" {
            dt { "Tình trạng" } dd data-status=(seen.status.as_str()) { (status_name(seen.status)) }
            dt { "Loại văn bản" } dd { (seen.draft.doc_type) }
            dt { "Cơ quan ban hành" } dd { (seen.agency) " – đơn vị soạn " (seen.drafting_unit) }
            @if let Some(issue) = &seen.issue {
                dt { "Số, ký hiệu" } dd { (issue.number_line) }
                dt { "Ngày ban hành" } dd { (date(issue.issued_on)) }
                dt { "Nơi nhận" } dd {
                    @for (i, r) in issue.recipients.iter().enumerate() {
                        @if i > 0 { ", " }
                        (r.agency)
                        @if let Some(due) = r.reply_due { " (hạn trả lời " (date(due)) ")" }
                    }
                }
            }
            @if seen.draft.confidentiality != crate::domain::document::Confidentiality::Normal {
                dt { "Độ mật" } dd { strong { "Mật" } }
            }
        }
        (signature(&state, evidence.as_ref().map(Option::as_ref), seen.origin.as_ref()))
        section aria-labelledby="files-h" {
            h2 id="files-h" { "Tệp đính kèm" }
            @if seen.draft.content.is_empty() {
                p { "Không có tệp." }
            } @else {
                ul {
                    @for c in &seen.draft.content {
                        li { a href={ "/ui/documents/" (doc.id) "/content/" (c.sha256) } { (c.name) } }
                    }
                }
            }
            @if seen.issue.is_some() {
                p { a class="button" href={ "/ui/documents/" (doc.id) "/bundle" } download { "Tải gói xác minh (bundle)" } }
                p class="hint" { "Kiểm tra ngoại tuyến: " code { "vanthu verify bundle.json --trust root.pem" } }
            }
        }
        section aria-labelledby="receipts-h" {
            h2 id="receipts-h" { "Tiếp nhận và trả lời" }
            @if seen.receipts.is_empty() {
                p { "Chưa có nơi nhận nào tiếp nhận." }
            } @else {
                ul {
                    @for (agency, r) in &seen.receipts {
                        li {
                            strong { (agency) } ": vào sổ đến số " (r.incoming_number) " lúc " (time(r.received_at))
                            @if let Some(a) = &r.assignment { "; giao " (a.lead) " chủ trì" }
                            @for reply in &r.replies {
                                "; trả lời bằng " a href={ "/ui/documents/" (reply.reply) } { (reply.reply_reference) }
                                " lúc " (time(reply.at)) " – " (if reply.on_time { "đúng hạn" } else { "muộn" })
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="timeline-h" {
            h2 id="timeline-h" { "Diễn biến" }
            @if let Some(events) = &events {
                ol class="timeline" {
                    @for e in events {
                        li {
                            time datetime=(e["recorded_at"].as_str().unwrap_or_default()) {
                                (e["recorded_at"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| time(t.into())).unwrap_or_default())
                            }
                            " – " (entry_label(e))
                            @if let Some(actor) = e["actor"].as_str() { " – " (official_name(&state, actor)) }
                        }
                    }
                }
            } @else {
                p { "Đơn vị nhận chỉ thấy việc ban hành và việc xử lý của đơn vị mình (ở trên)." }
            }
        }
    };
    Ok(html_response(layout(Some(&who), &title, Nav::None, body)))
}

/// The signature section: `None` unsigned, `Some(None)` signed but its
/// report not readable yet.
fn signature(
    state: &AppState,
    evidence: Option<Option<&Value>>,
    origin: Option<&crate::domain::document::Origin>,
) -> Markup {
    html! {
        section aria-labelledby="sig-h" {
            h2 id="sig-h" { "Chữ ký số" }
            @if let Some(None) = evidence {
                p { "Văn bản đã được ký; báo cáo kiểm tra chữ ký đang được cập nhật, hãy tải lại trang sau giây lát." }
            }
            @if let Some(Some(e)) = evidence {
                @let passed = e["report"]["indication"] == "TOTAL_PASSED" && e["authority"]["passed"] == true;
                @let form = e["authority"]["form"].as_str().unwrap_or_default();
                p class={ "verdict " (if passed { "good" } else { "bad" }) } id="verdict" data-valid=(passed) {
                    @if passed { "Chữ ký hợp lệ" } @else { "Chữ ký không hợp lệ" }
                }
                dl class="facts" {
                    dt { "Người ký" } dd { (official_name(state, e["signer"].as_str().unwrap_or_default())) }
                    dt { "Hình thức ký" } dd data-form=(form) {
                        @if form.is_empty() { "Ký trực tiếp" } @else { (form) " (" (form_name(form)) ")" }
                        @if let Some(head) = e["authority"]["on_behalf_of"].as_str() { " (thay " (official_name(state, head)) ")" }
                    }
                    dt { "Thẩm quyền" } dd { (e["authority"]["reason"].as_str().unwrap_or_default()) }
                    dt { "Kiểm tra chữ ký" } dd { (e["report"]["indication"].as_str().unwrap_or_default())
                        @if let Some(sub) = e["report"]["sub_indication"].as_str() { " / " (sub) } }
                    dt { "Thời điểm ký" } dd { (e["accepted_at"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| time(t.into())).unwrap_or_default()) }
                    @if let Some(seal) = e.get("seal").filter(|s| !s.is_null()) {
                        dt { "Dấu của cơ quan" } dd { "Đóng dấu khi ban hành số "
                            (crate::domain::numbering::reference(seal["number"].as_u64().unwrap_or_default(), seal["symbol"].as_str().unwrap_or_default())) }
                    }
                }
                details {
                    summary { "Các bước kiểm tra" }
                    ul class="checks" {
                        @for c in e["report"]["checks"].as_array().into_iter().flatten() {
                            li { strong { (c["name"].as_str().unwrap_or_default()) } ": " (c["outcome"].as_str().unwrap_or_default()) " – " (c["detail"].as_str().unwrap_or_default()) }
                        }
                    }
                }
                @if e["recorded_later"].as_array().is_some_and(|l| !l.is_empty()) {
                    p class="hint" { "Có thay đổi tổ chức được ghi sau khi ký nhưng có hiệu lực trước đó; kết luận lúc ký vẫn giữ nguyên." }
                }
            }
            @if let (None, Some(o)) = (&evidence, origin) {
                p class="verdict good" { "Văn bản đến qua liên thông: chữ ký số và dấu đã được kiểm tra khi tiếp nhận" }
                dl class="facts" {
                    dt { "Người ký" } dd { (o.from.signer_name) }
                    dt { "Chức vụ" } dd { (o.from.signer_position) }
                    dt { "Hình thức ký" } dd { (o.from.competence) }
                    dt { "Mã định danh nơi gửi" } dd { (o.from.organ_id) }
                    @for d in &o.from.unsealed {
                        dt { "Gói tin ghi khác bằng chứng đã ký" } dd { (d) }
                    }
                    @for (agency, r) in &o.refused {
                        dt { "Từ chối tiếp nhận (" (agency) ")" } dd { (r.reason) }
                    }
                    @if let Some(r) = &o.recall_requested {
                        dt { "Nơi gửi yêu cầu lấy lại" } dd { (r.reason) }
                    }
                    @if let Some(a) = &o.recall_answer {
                        dt { "Trả lời" } dd { @if a.agreed { "Đồng ý lấy lại" } @else { "Từ chối lấy lại: " (a.reason) } }
                    }
                }
            }
            @if evidence.is_none() && origin.is_none() {
                p { "Văn bản chưa được ký." }
            }
        }
    }
}

/// `GET /ui/documents/{id}/bundle`: the offline bundle as a download.
async fn bundle(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let bundle = bundle_for(&state, &viewer.caller.id, &id)
        .await
        .map_err(Problem::from)?;
    let name: String = id
        .chars()
        .filter(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"bundle-{name}.json\""),
        ))
        .json(bundle))
}

/// `GET /ui/documents/{id}/content/{sha256}`: one of its files.
async fn content(
    state: web::Data<AppState>,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let (id, sha256) = path.into_inner();
    let bytes = file_of(&state, &viewer.caller.id, &id, &sha256)
        .await
        .map_err(Problem::from)?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("ETag", format!("\"{sha256}\"")))
        .body(bytes))
}
