//! The request bodies of the document commands, as clients send them.
//!
//! Must never: accept an unknown field (`deny_unknown_fields`).

use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::document::{self, DeadlineScope, Draft, OpinionKind, Recipient, RoutePurpose};
use crate::domain::signing::ContentRef;

/// `POST /v1/documents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// Issuing agency; default: the author's agency.
    #[serde(default)]
    pub agency: Option<String>,
    /// Default: the author's unit.
    #[serde(default)]
    pub drafting_unit: Option<String>,
    pub doc_type: String,
    pub title: String,
    pub content: Vec<ContentRef>,
    #[serde(default)]
    pub urgency: document::Urgency,
    #[serde(default)]
    pub confidentiality: document::Confidentiality,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
}

impl DraftRequest {
    pub(super) fn draft(&self) -> Draft {
        draft_of(
            &self.doc_type,
            &self.title,
            &self.content,
            self.urgency,
            self.confidentiality,
            &self.recipients,
        )
    }
}

/// The domain's draft from a request's fields (type codes are upper-case).
pub(super) fn draft_of(
    doc_type: &str,
    title: &str,
    content: &[ContentRef],
    urgency: document::Urgency,
    confidentiality: document::Confidentiality,
    recipients: &[Recipient],
) -> Draft {
    Draft {
        doc_type: doc_type.to_ascii_uppercase(),
        title: title.to_owned(),
        content: content.to_vec(),
        urgency,
        confidentiality,
        recipients: recipients.to_vec(),
    }
}

/// `POST …/revisions`: the whole editable draft, plus a note.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionRequest {
    pub doc_type: String,
    pub title: String,
    pub content: Vec<ContentRef>,
    #[serde(default)]
    pub urgency: document::Urgency,
    #[serde(default)]
    pub confidentiality: document::Confidentiality,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub to: String,
    pub purpose: RoutePurpose,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

/// `POST …/opinions`: ask (`from` + `question`) or answer (`opinion` + `comment`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionRequest {
    #[serde(default)]
    pub from: Option<Vec<String>>,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub opinion: Option<OpinionKind>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// Compact JWS over the canonical signing payload.
    pub jws: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplacementRequest {
    pub replacement: Uuid,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    #[serde(default)]
    pub agency: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRequest {
    #[serde(default)]
    pub agency: Option<String>,
    pub lead: String,
    #[serde(default)]
    pub coordinating: Vec<String>,
    #[serde(default)]
    pub fyi: Vec<String>,
    #[serde(default)]
    pub handler: Option<String>,
    pub instruction: String,
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequest {
    /// The recipient agency whose deadline moves.
    #[serde(default)]
    pub agency: Option<String>,
    pub scope: DeadlineScope,
    pub new: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    /// The issued reply document.
    pub reply: Uuid,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
}

/// `POST …/refusals`: an addressed agency refuses a document another
/// system issued (status 02 goes back with the reason).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalRequest {
    #[serde(default)]
    pub agency: Option<String>,
    /// Why, sent to the issuer (at most 1000 characters).
    pub reason: String,
}

/// `POST …/recall-answers`: an addressed agency answers the issuing
/// system's recall request: `agree` (15, recalled here) or not (16, with
/// the reason).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallAnswerRequest {
    #[serde(default)]
    pub agency: Option<String>,
    pub agree: bool,
    #[serde(default)]
    pub reason: String,
}
