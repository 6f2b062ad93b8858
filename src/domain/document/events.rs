//! The document events: the stored, versioned surface (`document.<kind>.v1`)
//! and the register's `number_allocated`.
//!
//! Must never: change a field of an existing version; a change is a new
//! `.v2` beside it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($ty:ident) = $name:literal; )*) => {
        /// An event of a document stream. Serialised with a `type` tag
        /// (`drafted`, …); stored as `document.<type>.v1`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum DocumentEvent { $( $(#[$doc])* $variant($ty), )* }

        impl DocumentEvent {
            /// The versioned event type stored in the log.
            pub fn event_type(&self) -> &'static str {
                match self { $( DocumentEvent::$variant(_) => concat!("document.", $name, ".v1"), )* }
            }

            /// Every event type with the JSON Schema of its payload (`schemas/events/`).
            pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
                vec![ $( (concat!("document.", $name, ".v1"), json_schema::<$ty>($name)), )* ]
            }

            /// Who caused the event and when (every event carries both).
            pub fn actor_and_time(&self) -> (&str, DateTime<Utc>) {
                match self { $( DocumentEvent::$variant(e) => (e.by.as_str(), e.at), )* }
            }
        }
    };
}

events! {
    Drafted(Drafted) = "drafted";
    Revised(Revised) = "revised";
    Routed(Routed) = "routed";
    Returned(Returned) = "returned";
    OpinionRequested(OpinionRequested) = "opinion_requested";
    OpinionGiven(OpinionGiven) = "opinion_given";
    Signed(Signed) = "signed";
    Issued(Issued) = "issued";
    Recalled(Recalled) = "recalled";
    Replaced(Replaced) = "replaced";
    Received(Received) = "received";
    Assigned(Assigned) = "assigned";
    DeadlineExtended(DeadlineExtended) = "deadline_extended";
    Replied(Replied) = "replied";
    ReplyLinked(ReplyLinked) = "reply_linked";
    Completed(Completed) = "completed";
    InterchangeStatus(InterchangeStatus) = "interchange_status";
    Arrived(Arrived) = "arrived";
    Refused(Refused) = "refused";
    RecallRequested(RecallRequested) = "recall_requested";
    RecallAnswered(RecallAnswered) = "recall_answered";
}

/// A standalone JSON Schema (2020-12) of `T`, with nested types under
/// `$defs`; `tag` is the payload's `type` member.
pub fn json_schema<T: utoipa::ToSchema>(tag: &str) -> serde_json::Value {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    let mut defs = serde_json::Map::new();
    for (name, schema) in nested {
        defs.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    let mut root = serde_json::to_value(T::schema()).unwrap_or_default();
    if let Some(obj) = root.as_object_mut() {
        obj.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        obj.insert("title".into(), T::name().into_owned().into());
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.insert("type".into(), serde_json::json!({ "const": tag }));
        }
        if let Some(req) = obj.get_mut("required").and_then(|r| r.as_array_mut()) {
            req.insert(0, "type".into());
        }
        if !defs.is_empty() {
            obj.insert("$defs".into(), defs.into());
        }
    }
    let text = root
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).unwrap_or_default()
}

/// A new draft (the first event of every document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Drafted {
    pub doc: Uuid,
    /// The issuing agency.
    pub agency: String,
    pub drafting_unit: String,
    /// The author (chuyên viên soạn thảo).
    pub by: String,
    pub at: DateTime<Utc>,
    pub draft: Draft,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revised {
    pub by: String,
    pub at: DateTime<Utc>,
    pub draft: Draft,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Routed {
    pub by: String,
    pub at: DateTime<Utc>,
    pub to: String,
    pub purpose: RoutePurpose,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Sent back to the author (trả lại), reason required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Returned {
    pub by: String,
    pub at: DateTime<Utc>,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpinionRequested {
    pub by: String,
    pub at: DateTime<Utc>,
    pub from: Vec<String>,
    pub question: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpinionGiven {
    pub by: String,
    pub at: DateTime<Utc>,
    pub opinion: OpinionKind,
    pub comment: String,
}

/// The competent person's signature, accepted with its evidence. `at` is
/// the instant the server accepted it, which the signature is judged at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signed {
    pub by: String,
    pub at: DateTime<Utc>,
    /// Compact JWS (EdDSA, x5c) over the canonical payload.
    pub jws: String,
    #[schema(value_type = Object)]
    pub payload: SigningPayload,
    /// SHA-256 fingerprint of the signing certificate.
    pub certificate: String,
    /// The verification report (ETSI EN 319 102-1 words) at `at`.
    #[schema(value_type = Object)]
    pub report: Report,
    /// The authority verdict at `at`.
    #[schema(value_type = Object)]
    pub authority: AuthorityVerdict,
}

/// Numbered, sealed and sent (ban hành).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Issued {
    /// The clerk.
    pub by: String,
    pub at: DateTime<Utc>,
    pub number: u64,
    pub symbol: String,
    pub issued_on: NaiveDate,
    /// The register stream the number came from.
    pub register: String,
    pub recipients: Vec<IssuedRecipient>,
    /// The agency seal: compact JWS over `seal_payload`.
    pub seal: String,
    #[schema(value_type = Object)]
    pub seal_payload: SealPayload,
    /// Version of the `org` stream whose events the seal attests.
    pub org_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recalled {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replaced {
    pub by: String,
    pub at: DateTime<Utc>,
    /// The issued document that replaces this one.
    pub replacement: Uuid,
    pub replacement_reference: String,
    pub reason: String,
}

/// Registered in a recipient agency's incoming register (vào sổ đến).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Received {
    pub agency: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub incoming_number: u64,
    pub register: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assigned {
    pub agency: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// Chủ trì.
    pub lead: String,
    /// Phối hợp.
    pub coordinating: Vec<String>,
    /// Để biết.
    pub fyi: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub instruction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadlineExtended {
    pub agency: String,
    pub scope: DeadlineScope,
    pub by: String,
    pub at: DateTime<Utc>,
    pub old: NaiveDate,
    pub new: NaiveDate,
    pub reason: String,
}

/// A recipient agency's reply, linked to the reply document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replied {
    pub agency: String,
    pub unit: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reply: Uuid,
    /// The reply's number and symbol, e.g. `12/BC-SNV`.
    pub reply_reference: String,
    /// The reply deadline in force when the reply came, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_due: Option<NaiveDate>,
    /// Whether the reply came by the end of that day (working-day rules).
    pub on_time: bool,
}

/// On the reply document: which document it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplyLinked {
    pub by: String,
    pub at: DateTime<Utc>,
    pub in_reply_to: Uuid,
    pub in_reply_to_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Completed {
    pub agency: String,
    pub unit: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// Coordinating and FYI units completed with the lead.
    pub cascaded: Vec<String>,
}

/// The event on a register stream: a number taken, never given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NumberAllocated {
    pub number: u64,
    pub doc: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Stored type of [`NumberAllocated`].
pub const NUMBER_ALLOCATED: &str = "register.number_allocated.v1";

/// A status message from another system about this document at one of its
/// external recipients: 01 arrived, 02 returned, 03 received (registered),
/// 04 assigned, 05 in progress, 06 completed; 13, 15, 16 about a recall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InterchangeStatus {
    /// The external recipient, by this system's code for it.
    pub agency: String,
    /// The two-digit status code.
    pub code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When the recipient's system says it happened.
    pub reported_at: DateTime<Utc>,
    /// `interchange:{peer}`.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Another system's issued document, arrived as an edXML package whose
/// evidence verified here: the first event of its stream (whose id is the
/// arrival's). This system's addressed agencies handle it as any issued
/// document (receive, assign, reply, complete), or refuse it (status 02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Arrived {
    pub doc: Uuid,
    /// The issuing agency, by this system's code for it (an external agency).
    pub agency: String,
    /// `interchange:{peer}`.
    pub by: String,
    pub at: DateTime<Utc>,
    pub from: ArrivedFrom,
    /// This system's addressed agencies, with the reply deadline the
    /// package sets (its DueDate).
    pub recipients: Vec<IssuedRecipient>,
    pub urgency: Urgency,
    /// The files, as sealed.
    pub content: Vec<ContentRef>,
    /// The issuing agency's seal: compact JWS over `seal_payload`, which
    /// gives the number, symbol, date, type and title.
    pub seal: String,
    #[schema(value_type = Object)]
    pub seal_payload: SealPayload,
}

/// Where an arrived document came from, as the package says and its
/// evidence proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArrivedFrom {
    /// The peer system that sent it.
    pub peer: String,
    /// The issuing agency's identifier (Decision 20/2020/QĐ-TTg).
    pub organ_id: String,
    /// The sender's id of the document (edXML DocumentId).
    pub document_id: String,
    /// SHA-256 of the evidence bundle it came with (a stored file).
    pub evidence: String,
    /// The signer as the sealed evidence names them (before D3: as the
    /// package's header did).
    pub signer_name: String,
    pub signer_position: String,
    /// `TM.`, `KT.`, … (Trực tiếp when signing in one's own name).
    pub competence: String,
    /// Where the package's header disagreed with its sealed evidence
    /// ("field: why"); the document holds what was sealed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsealed: Vec<String>,
}

/// An addressed agency's clerk refused an arrived document (trả lại,
/// status 02 Từ chối tiếp nhận), with the reason sent to its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refused {
    pub agency: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// The issuing system asked for an arrived document back (status 13, Yêu
/// cầu lấy lại): it waits for an addressed agency's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecallRequested {
    /// `interchange:{peer}`.
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the issuing system says it asked.
    pub reported_at: DateTime<Utc>,
}

/// An addressed agency's answer to a recall request: agreed (status 15,
/// the document is recalled here) or refused (16, with the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecallAnswered {
    pub agency: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub agreed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}
