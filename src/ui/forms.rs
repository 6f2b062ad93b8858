//! What the pages' forms share: which agency a page is about and the
//! choice of it, form values and dates in Việt Nam's format (dd/mm/yyyy),
//! and the Vietnamese labels of statuses, boxes and reasons.
//!
//! Must never: let a form pick an agency the viewer holds no position in
//! (`agency_for` falls back to their own), or answer a bad value with
//! anything but a 400 page saying which field.

use chrono::NaiveDate;
use maud::{html, Markup};

use super::session::Viewer;
use super::{date, UiError};
use crate::http::AppState;
use crate::projections::deadlines::Status;

/// The agencies the viewer holds a position in now.
pub(super) fn agencies_of(state: &AppState, viewer: &Viewer) -> Vec<String> {
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
pub(super) fn agency_for(
    state: &AppState,
    viewer: &Viewer,
    asked: Option<&str>,
) -> Result<String, UiError> {
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
pub(super) fn agency_field(state: &AppState, viewer: &Viewer, agency: &str) -> Markup {
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

pub(super) fn agency_name(state: &AppState, code: &str) -> String {
    state
        .org
        .read(|org| org.agencies.get(code).map(|a| a.name.clone()))
        .unwrap_or_else(|| code.to_owned())
}

/// A non-empty form value.
pub(super) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn parse_date(v: &Option<String>, what: &str) -> Result<Option<NaiveDate>, UiError> {
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
pub(super) fn date_input(name: &str, value: Option<NaiveDate>) -> Markup {
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

/// The Vietnamese name of an inbox box.
pub(super) fn box_name(b: &str) -> &'static str {
    match b {
        "sign" => "Chờ ký",
        "review" => "Xem xét",
        "handle" => "Xử lý",
        "info" => "Để biết",
        _ => "Khác",
    }
}

/// Why a document is in a box, in Vietnamese.
pub(super) fn reason_name(r: &str) -> &'static str {
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

/// The Vietnamese name of a register entry's status.
pub(super) fn register_status(s: &str) -> &str {
    match s {
        "issued" => "Đã ban hành",
        "recalled" => "Đã thu hồi",
        "replaced" => "Đã được thay thế",
        other => other,
    }
}
