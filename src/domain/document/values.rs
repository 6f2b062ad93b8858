//! What a draft is made of: urgency, confidentiality, the kinds of routing,
//! opinions and deadlines, recipients, and the draft itself.
//!
//! Must never: hold rules; checks live in `outgoing.rs`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::*;

/// Mức độ khẩn (Decree 30/2020 Art. 8.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    #[default]
    Normal,
    Khan,
    ThuongKhan,
    HoaToc,
}

/// Độ mật (Decree 30/2020 Art. 8.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidentiality {
    #[default]
    Normal,
    Mat,
    ToiMat,
    TuyetMat,
}

/// Why a draft is routed to an official.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutePurpose {
    Review,
    Approval,
    Signing,
}

/// An opinion on a draft (xin ý kiến / cho ý kiến).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpinionKind {
    Agree,
    Disagree,
    Other,
}

/// Which deadline an extension moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineScope {
    /// The issuer's reply deadline for a recipient agency.
    Reply,
    /// The recipient agency's handling deadline set at assignment.
    Handling,
}

/// A recipient agency as drafted, with an optional reply deadline: a date,
/// or a number of working days counted from the day after issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub agency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_due: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_within_working_days: Option<u32>,
}

/// A recipient agency as issued: the reply deadline resolved to a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedRecipient {
    pub agency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_due: Option<NaiveDate>,
}

/// The editable part of a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Decree 30 type code (`BC`, `KH`, `QD`, `CV`, …).
    pub doc_type: String,
    /// Trích yếu.
    pub title: String,
    /// Content blobs by SHA-256 (upload with `POST /v1/blobs` first).
    pub content: Vec<ContentRef>,
    #[serde(default)]
    pub urgency: Urgency,
    #[serde(default)]
    pub confidentiality: Confidentiality,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
}
