//! The document aggregate: one directive document's life as an event
//! stream, outgoing (drafted → routed → signed → issued → recalled |
//! replaced) and incoming per recipient agency (received → assigned →
//! replied → completed).
//!
//! `decide(state, command, ctx)` checks who may do what in which state and
//! returns the events to append; `evolve(state, event)` folds an event into
//! the state. Every rule of the lifecycle, authorisation included, is here;
//! the API only loads, calls and appends.
//!
//! Must never: do I/O, read the clock (the instant comes in `Ctx`), verify
//! signatures itself (the API hands in the crypto report), or allocate a
//! number other than the one the register stream's version says is next.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authority::{payload_matches, AuthorityVerdict};
use super::doctype::{self, DocType};
use super::numbering::{self, Direction, RegisterKey, Series};
use super::org::{Org, Position};
use super::signing::{jws_sha256, ContentRef, SealPayload, SigningPayload};
use crate::crypto::verify::{Indication, Report, SubIndication};

/// Prefix of document stream ids: `doc-{uuid}`.
pub const STREAM_PREFIX: &str = "doc-";

/// The stream id of document `id`.
pub fn stream_id(id: Uuid) -> String {
    format!("{STREAM_PREFIX}{id}")
}

/// How long a signing payload handed out stays signable (DESIGN §5).
pub const SIGNING_PAYLOAD_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Clock skew tolerated between the server that made a payload and now.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(1);

/// Longest free text (titles, reasons, instructions) accepted.
pub const MAX_TEXT: usize = 2000;

// ---------------------------------------------------------------- values

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

// ---------------------------------------------------------------- events

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

// ---------------------------------------------------------------- state

/// Where a document is in its outgoing life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Draft,
    InReview,
    AwaitingSignature,
    Signed,
    Issued,
    Recalled,
    Replaced,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::InReview => "in_review",
            Status::AwaitingSignature => "awaiting_signature",
            Status::Signed => "signed",
            Status::Issued => "issued",
            Status::Recalled => "recalled",
            Status::Replaced => "replaced",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Route {
    pub to: String,
    pub purpose: RoutePurpose,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Opinion {
    pub from: String,
    pub requested_by: String,
    pub question: String,
    pub requested_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opinion: Option<OpinionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reply {
    pub unit: String,
    pub reply: Uuid,
    pub reply_reference: String,
    pub at: DateTime<Utc>,
    pub on_time: bool,
}

/// One recipient agency's handling of an issued document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub incoming_number: u64,
    pub register: String,
    pub received_at: DateTime<Utc>,
    pub received_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
    /// The handling deadline in force, and the one first set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handling_due: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_handling_due: Option<NaiveDate>,
    pub replies: Vec<Reply>,
    /// Units done, with when.
    pub completed: BTreeMap<String, DateTime<Utc>>,
    /// The lead unit completed.
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub lead: String,
    pub coordinating: Vec<String>,
    pub fyi: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub instruction: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// The accepted personal signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signature {
    pub signer: String,
    pub at: DateTime<Utc>,
    pub jws: String,
    pub payload: SigningPayload,
    pub certificate: String,
    pub report: Report,
    pub authority: AuthorityVerdict,
}

/// The issue record: number, symbol, seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub number: u64,
    pub symbol: String,
    /// `05/QĐ-UBND`.
    pub reference: String,
    /// `Số: 05/QĐ-UBND`.
    pub number_line: String,
    pub issued_on: NaiveDate,
    pub at: DateTime<Utc>,
    pub by: String,
    pub register: String,
    /// Reply deadlines in force per recipient agency.
    pub recipients: Vec<IssuedRecipient>,
    /// Reply deadlines as first issued (kept when extended).
    pub original_reply_due: BTreeMap<String, NaiveDate>,
    pub seal: String,
    pub seal_payload: SealPayload,
    pub org_version: u64,
}

/// A document as its events made it. Also the API's document view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: Uuid,
    /// Stream version: the number of events folded.
    pub version: u64,
    pub status: Status,
    pub agency: String,
    pub drafting_unit: String,
    pub author: String,
    pub drafted_at: DateTime<Utc>,
    #[serde(flatten)]
    pub draft: Draft,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_return: Option<Returned>,
    pub opinions: Vec<Opinion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<Issue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<Recalled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<Replaced>,
    /// This document answers another (set when a recipient links it as its reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Uuid>,
    /// Per recipient agency, once it received the document.
    pub receipts: BTreeMap<String, Receipt>,
}

/// Folds one event into the state. `None` before the first event.
pub fn evolve(state: Option<Document>, event: &DocumentEvent) -> Option<Document> {
    let mut doc = match (state, event) {
        (None, DocumentEvent::Drafted(e)) => {
            return Some(Document {
                id: e.doc,
                version: 1,
                status: Status::Draft,
                agency: e.agency.clone(),
                drafting_unit: e.drafting_unit.clone(),
                author: e.by.clone(),
                drafted_at: e.at,
                draft: e.draft.clone(),
                route: None,
                last_return: None,
                opinions: vec![],
                signature: None,
                issue: None,
                recall: None,
                replaced_by: None,
                in_reply_to: None,
                receipts: BTreeMap::new(),
            })
        }
        (None, _) => return None,
        (Some(d), _) => d,
    };
    doc.version += 1;
    match event {
        DocumentEvent::Drafted(_) => {}
        DocumentEvent::Revised(e) => {
            doc.draft = e.draft.clone();
            doc.status = Status::Draft;
            doc.route = None;
        }
        DocumentEvent::Routed(e) => {
            doc.status = match e.purpose {
                RoutePurpose::Signing => Status::AwaitingSignature,
                _ => Status::InReview,
            };
            doc.route = Some(Route {
                to: e.to.clone(),
                purpose: e.purpose,
                by: e.by.clone(),
                at: e.at,
            });
        }
        DocumentEvent::Returned(e) => {
            doc.status = Status::Draft;
            doc.route = None;
            doc.last_return = Some(e.clone());
        }
        DocumentEvent::OpinionRequested(e) => {
            for from in &e.from {
                doc.opinions.push(Opinion {
                    from: from.clone(),
                    requested_by: e.by.clone(),
                    question: e.question.clone(),
                    requested_at: e.at,
                    opinion: None,
                    comment: None,
                    given_at: None,
                });
            }
        }
        DocumentEvent::OpinionGiven(e) => {
            if let Some(o) = doc
                .opinions
                .iter_mut()
                .find(|o| o.from == e.by && o.opinion.is_none())
            {
                o.opinion = Some(e.opinion);
                o.comment = Some(e.comment.clone());
                o.given_at = Some(e.at);
            }
        }
        DocumentEvent::Signed(e) => {
            doc.status = Status::Signed;
            doc.route = None;
            doc.signature = Some(Signature {
                signer: e.by.clone(),
                at: e.at,
                jws: e.jws.clone(),
                payload: e.payload.clone(),
                certificate: e.certificate.clone(),
                report: e.report.clone(),
                authority: e.authority.clone(),
            });
        }
        DocumentEvent::Issued(e) => {
            doc.status = Status::Issued;
            let reference = numbering::reference(e.number, &e.symbol);
            doc.issue = Some(Issue {
                number: e.number,
                symbol: e.symbol.clone(),
                number_line: numbering::number_line(e.number, &e.symbol),
                reference,
                issued_on: e.issued_on,
                at: e.at,
                by: e.by.clone(),
                register: e.register.clone(),
                recipients: e.recipients.clone(),
                original_reply_due: e
                    .recipients
                    .iter()
                    .filter_map(|r| Some((r.agency.clone(), r.reply_due?)))
                    .collect(),
                seal: e.seal.clone(),
                seal_payload: e.seal_payload.clone(),
                org_version: e.org_version,
            });
        }
        DocumentEvent::Recalled(e) => {
            doc.status = Status::Recalled;
            doc.recall = Some(e.clone());
        }
        DocumentEvent::Replaced(e) => {
            doc.status = Status::Replaced;
            doc.replaced_by = Some(e.clone());
        }
        DocumentEvent::Received(e) => {
            doc.receipts.insert(
                e.agency.clone(),
                Receipt {
                    incoming_number: e.incoming_number,
                    register: e.register.clone(),
                    received_at: e.at,
                    received_by: e.by.clone(),
                    assignment: None,
                    handling_due: None,
                    original_handling_due: None,
                    replies: vec![],
                    completed: BTreeMap::new(),
                    done: false,
                },
            );
        }
        DocumentEvent::Assigned(e) => {
            if let Some(r) = doc.receipts.get_mut(&e.agency) {
                r.assignment = Some(Assignment {
                    lead: e.lead.clone(),
                    coordinating: e.coordinating.clone(),
                    fyi: e.fyi.clone(),
                    handler: e.handler.clone(),
                    instruction: e.instruction.clone(),
                    by: e.by.clone(),
                    at: e.at,
                });
                if e.deadline.is_some() {
                    r.handling_due = e.deadline;
                    r.original_handling_due = r.original_handling_due.or(e.deadline);
                }
            }
        }
        DocumentEvent::DeadlineExtended(e) => match e.scope {
            DeadlineScope::Reply => {
                if let Some(rcp) = doc
                    .issue
                    .as_mut()
                    .and_then(|i| i.recipients.iter_mut().find(|r| r.agency == e.agency))
                {
                    rcp.reply_due = Some(e.new);
                }
            }
            DeadlineScope::Handling => {
                if let Some(r) = doc.receipts.get_mut(&e.agency) {
                    r.handling_due = Some(e.new);
                }
            }
        },
        DocumentEvent::Replied(e) => {
            if let Some(r) = doc.receipts.get_mut(&e.agency) {
                r.replies.push(Reply {
                    unit: e.unit.clone(),
                    reply: e.reply,
                    reply_reference: e.reply_reference.clone(),
                    at: e.at,
                    on_time: e.on_time,
                });
            }
        }
        DocumentEvent::ReplyLinked(e) => doc.in_reply_to = Some(e.in_reply_to),
        DocumentEvent::Completed(e) => {
            if let Some(r) = doc.receipts.get_mut(&e.agency) {
                r.completed.insert(e.unit.clone(), e.at);
                for u in &e.cascaded {
                    r.completed.entry(u.clone()).or_insert(e.at);
                }
                if r.assignment.as_ref().is_some_and(|a| a.lead == e.unit) {
                    r.done = true;
                }
            }
        }
    }
    Some(doc)
}

/// Folds a whole stream.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a DocumentEvent>) -> Option<Document> {
    events.into_iter().fold(None, evolve)
}

impl Document {
    /// The reply deadline in force for a recipient agency.
    pub fn reply_due(&self, agency: &str) -> Option<NaiveDate> {
        self.issue
            .as_ref()?
            .recipients
            .iter()
            .find(|r| r.agency == agency)?
            .reply_due
    }

    /// `05/QĐ-UBND` once issued.
    pub fn reference(&self) -> Option<&str> {
        self.issue.as_ref().map(|i| i.reference.as_str())
    }

    /// The document type from the catalogue.
    pub fn doc_type(&self) -> Option<&'static DocType> {
        doctype::by_code(&self.draft.doc_type)
    }

    /// The payload the signer must sign for this version, with the form,
    /// position and on-whose-behalf from the authority verdict.
    pub fn signing_payload(
        &self,
        signer: &str,
        verdict: &AuthorityVerdict,
        at: DateTime<Utc>,
    ) -> SigningPayload {
        SigningPayload {
            doc: self.id.to_string(),
            version: self.version,
            content: self.draft.content.clone(),
            title: self.draft.title.clone(),
            doc_type: self.draft.doc_type.clone(),
            agency: self.agency.clone(),
            signer: signer.to_owned(),
            authority: verdict.form,
            on_behalf_of: verdict.on_behalf_of.clone(),
            position: verdict.position.unwrap_or(Position::Specialist),
            at,
        }
    }
}

// ---------------------------------------------------------------- commands

/// What a caller asks of a document.
#[derive(Debug, Clone)]
pub enum Command {
    Draft {
        id: Uuid,
        agency: String,
        drafting_unit: Option<String>,
        draft: Draft,
    },
    Revise {
        draft: Draft,
        note: Option<String>,
    },
    Route {
        to: String,
        purpose: RoutePurpose,
        note: Option<String>,
    },
    Return {
        reason: String,
    },
    RequestOpinion {
        from: Vec<String>,
        question: String,
    },
    GiveOpinion {
        opinion: OpinionKind,
        comment: String,
    },
    /// A personal signature the API has verified (`report`) and judged
    /// (`authority`) at `ctx.now`.
    Sign {
        jws: String,
        payload: SigningPayload,
        certificate: String,
        report: Report,
        authority: AuthorityVerdict,
    },
    /// Issue under `number` from the plan's register, with the seal made
    /// over `plan.seal_payload(..)`.
    Issue {
        plan: IssuePlan,
        number: u64,
        seal: String,
        seal_payload: SealPayload,
        org_version: u64,
    },
    Recall {
        reason: String,
    },
    Replace {
        replacement: Box<Document>,
        reason: String,
    },
    Receive {
        agency: String,
        register: RegisterKey,
        number: u64,
    },
    Assign {
        agency: String,
        lead: String,
        coordinating: Vec<String>,
        fyi: Vec<String>,
        handler: Option<String>,
        instruction: String,
        deadline: Option<NaiveDate>,
    },
    ExtendDeadline {
        agency: String,
        scope: DeadlineScope,
        new: NaiveDate,
        reason: String,
    },
    Reply {
        agency: String,
        unit: Option<String>,
        reply: Box<Document>,
    },
    Complete {
        agency: String,
        unit: Option<String>,
    },
}

impl Command {
    /// Name used in errors (`sign`, `issue`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Draft { .. } => "draft",
            Command::Revise { .. } => "revise",
            Command::Route { .. } => "route",
            Command::Return { .. } => "return",
            Command::RequestOpinion { .. } => "request an opinion on",
            Command::GiveOpinion { .. } => "give an opinion on",
            Command::Sign { .. } => "sign",
            Command::Issue { .. } => "issue",
            Command::Recall { .. } => "recall",
            Command::Replace { .. } => "replace",
            Command::Receive { .. } => "receive",
            Command::Assign { .. } => "assign",
            Command::ExtendDeadline { .. } => "extend a deadline of",
            Command::Reply { .. } => "reply to",
            Command::Complete { .. } => "complete",
        }
    }
}

/// Working-day arithmetic the rules need (implemented by the calendar).
pub trait WorkingDays {
    /// The `n`th working day after `from` (counting starts the next day).
    fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate;
    /// Whether `at` is after the end of the (rolled-forward) deadline day.
    fn is_overdue(&self, due: NaiveDate, at: DateTime<Utc>) -> bool;
}

/// What a decision may look at besides the document.
pub struct Ctx<'a> {
    pub org: &'a Org,
    /// The authenticated official.
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    pub calendar: &'a dyn WorkingDays,
    /// Per-agency document types with their own number series.
    pub numbering: &'a numbering::Policy,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command does not fit the document's state (HTTP 409).
    #[error("cannot {command} a document that is {state}")]
    WrongState {
        command: &'static str,
        state: &'static str,
    },
    /// The caller lacks the role the command needs (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The command breaks a rule of its own (HTTP 422).
    #[error("{0}")]
    Invalid(String),
}

/// The outcome of a command: events for the document's stream, and where
/// the command touches them, a register number and the linked document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub events: Vec<DocumentEvent>,
    pub register: Option<(RegisterKey, NumberAllocated)>,
    /// Another document's event, with the version it was decided against.
    pub linked: Option<(Uuid, u64, DocumentEvent)>,
}

impl Decision {
    fn one(event: DocumentEvent) -> Self {
        Self {
            events: vec![event],
            ..Default::default()
        }
    }
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn forbidden(msg: impl Into<String>) -> DomainError {
    DomainError::Forbidden(msg.into())
}

fn text(field: &str, s: &str, required: bool) -> Result<(), DomainError> {
    if required && s.trim().is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if s.chars().count() > MAX_TEXT {
        return Err(invalid(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Roles the rules ask about, at `ctx.now`.
struct Roles<'a> {
    org: &'a Org,
    at: DateTime<Utc>,
}

impl Roles<'_> {
    fn is_leader(&self, official: &str, agency: &str) -> bool {
        self.org.leads(official, agency, self.at)
    }

    fn is_clerk(&self, official: &str, agency: &str) -> bool {
        self.org.is_clerk(official, agency, self.at)
    }

    fn in_agency(&self, official: &str, agency: &str) -> bool {
        self.org
            .positions_at(official, self.at)
            .iter()
            .any(|a| a.agency == agency)
    }

    fn units_of(&self, official: &str, agency: &str) -> Vec<String> {
        self.org
            .positions_at(official, self.at)
            .iter()
            .filter(|a| a.agency == agency)
            .filter_map(|a| a.unit.clone())
            .collect()
    }

    fn in_unit(&self, official: &str, agency: &str, unit: &str) -> bool {
        self.units_of(official, agency).iter().any(|u| u == unit)
    }

    fn unit_exists(&self, agency: &str, unit: &str) -> bool {
        self.org
            .units
            .contains_key(&(agency.to_owned(), unit.to_owned()))
    }
}

fn check_draft(draft: &Draft, agency: &str, org: &Org) -> Result<(), DomainError> {
    if doctype::by_code(&draft.doc_type).is_none() {
        return Err(invalid(format!(
            "unknown document type {:?}; use a Decree 30 code such as BC, KH, QD, CV",
            draft.doc_type
        )));
    }
    text("title", &draft.title, true)?;
    if draft.content.is_empty() {
        return Err(invalid("content needs at least one blob"));
    }
    for c in &draft.content {
        text("content name", &c.name, true)?;
        if c.sha256.len() != 64
            || !c
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(format!(
                "content {:?}: sha256 must be 64 lower-case hex digits",
                c.name
            )));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &draft.recipients {
        if !org.agencies.contains_key(&r.agency) {
            return Err(invalid(format!("no recipient agency {}", r.agency)));
        }
        if r.agency == agency {
            return Err(invalid(format!(
                "{agency} cannot be a recipient of its own document"
            )));
        }
        if !seen.insert(&r.agency) {
            return Err(invalid(format!("recipient {} is listed twice", r.agency)));
        }
        if r.reply_due.is_some() && r.reply_within_working_days.is_some() {
            return Err(invalid(format!(
                "recipient {}: give reply_due or reply_within_working_days, not both",
                r.agency
            )));
        }
        if r.reply_within_working_days
            .is_some_and(|n| n == 0 || n > 366)
        {
            return Err(invalid(format!(
                "recipient {}: reply_within_working_days must be 1..=366",
                r.agency
            )));
        }
    }
    Ok(())
}

fn wrong_state(cmd: &Command, doc: &Document) -> DomainError {
    DomainError::WrongState {
        command: cmd.name(),
        state: doc.status.as_str(),
    }
}

/// May `actor` edit and route the draft (author or drafting unit)?
fn is_drafter(roles: &Roles<'_>, doc: &Document, actor: &str) -> bool {
    actor == doc.author || roles.in_unit(actor, &doc.agency, &doc.drafting_unit)
}

fn routed_to<'d>(doc: &'d Document, actor: &str) -> Option<&'d Route> {
    doc.route.as_ref().filter(|r| r.to == actor)
}

/// What issuing the document will do: its register, symbol, date and
/// recipients with reply deadlines resolved. Checks state and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePlan {
    pub register: RegisterKey,
    pub symbol: String,
    pub issued_on: NaiveDate,
    pub recipients: Vec<IssuedRecipient>,
}

impl IssuePlan {
    /// The seal payload for `number` (what the agency key signs).
    pub fn seal_payload(
        &self,
        doc: &Document,
        number: u64,
        org_sha256: String,
    ) -> Option<SealPayload> {
        let sig = doc.signature.as_ref()?;
        Some(SealPayload {
            signed: sig.payload.clone(),
            number,
            symbol: self.symbol.clone(),
            issued_on: self.issued_on,
            signature_sha256: jws_sha256(&sig.jws),
            signed_at: sig.at,
            org_sha256,
        })
    }
}

/// Plans issuance: only a clerk of the issuing agency, only a signed document.
pub fn plan_issue(doc: &Document, ctx: &Ctx<'_>) -> Result<IssuePlan, DomainError> {
    let roles = Roles {
        org: ctx.org,
        at: ctx.now,
    };
    if !roles.is_clerk(ctx.actor, &doc.agency) {
        return Err(forbidden(format!(
            "only a clerk (văn thư) of {} issues its documents; {} is not one",
            doc.agency, ctx.actor
        )));
    }
    if doc.status != Status::Signed {
        return Err(DomainError::WrongState {
            command: "issue",
            state: doc.status.as_str(),
        });
    }
    let sig = doc
        .signature
        .as_ref()
        .ok_or_else(|| invalid("the document has no signature"))?;
    super::signing::check_sealable(&sig.report, &sig.authority).map_err(invalid)?;
    payload_matches(&sig.payload, &sig.authority).map_err(invalid)?;
    let doc_type = doc
        .doc_type()
        .ok_or_else(|| invalid("unknown document type"))?;
    let issued_on = ctx.now.with_timezone(&numbering::vietnam()).date_naive();
    let recipients = doc
        .draft
        .recipients
        .iter()
        .map(|r| IssuedRecipient {
            agency: r.agency.clone(),
            reply_due: r.reply_due.or_else(|| {
                r.reply_within_working_days
                    .map(|n| ctx.calendar.add_working_days(issued_on, n))
            }),
        })
        .collect::<Vec<IssuedRecipient>>();
    if let Some(r) = recipients
        .iter()
        .find(|r| r.reply_due.is_some_and(|d| d < issued_on))
    {
        return Err(invalid(format!(
            "the reply deadline for {} has passed; revise the draft before issuing",
            r.agency
        )));
    }
    Ok(IssuePlan {
        register: RegisterKey {
            agency: doc.agency.clone(),
            direction: Direction::Outgoing,
            series: ctx.numbering.series(
                &doc.agency,
                doc_type.code,
                doc.draft.confidentiality != Confidentiality::Normal,
            ),
            year: numbering::year_of(ctx.now),
        },
        symbol: numbering::symbol(doc_type, &doc.agency, &doc.drafting_unit),
        issued_on,
        recipients,
    })
}

/// The incoming register a recipient agency numbers this document in.
pub fn receipt_register(
    doc: &Document,
    agency: &str,
    now: DateTime<Utc>,
) -> Result<RegisterKey, DomainError> {
    // Only a recipient of the issued document has one: no register (and no
    // stream id) is ever built from an agency code the rules did not check.
    if !doc
        .issue
        .as_ref()
        .is_some_and(|i| i.recipients.iter().any(|r| r.agency == agency))
    {
        return Err(invalid(format!(
            "{agency:?} is not a recipient agency of this document"
        )));
    }
    Ok(RegisterKey {
        agency: agency.to_owned(),
        direction: Direction::Incoming,
        series: if doc.draft.confidentiality == Confidentiality::Normal {
            Series::Normal
        } else {
            Series::Secret
        },
        year: numbering::year_of(now),
    })
}

/// The agency's receipt; a command on a document it has not received is a
/// state conflict (409 `wrong-state:not_received`).
fn receipt<'d>(cmd: &Command, doc: &'d Document, agency: &str) -> Result<&'d Receipt, DomainError> {
    doc.receipts.get(agency).ok_or(DomainError::WrongState {
        command: cmd.name(),
        state: "not_received",
    })
}

/// The receipt's assignment (409 `wrong-state:unassigned` without one).
fn assignment<'d>(cmd: &Command, r: &'d Receipt) -> Result<&'d Assignment, DomainError> {
    r.assignment.as_ref().ok_or(DomainError::WrongState {
        command: cmd.name(),
        state: "unassigned",
    })
}

fn receipt_state(cmd: &Command, state: &'static str) -> DomainError {
    DomainError::WrongState {
        command: cmd.name(),
        state,
    }
}

fn incoming_state(cmd: &Command, doc: &Document) -> Result<(), DomainError> {
    if doc.status == Status::Issued {
        Ok(())
    } else {
        Err(wrong_state(cmd, doc))
    }
}

/// Decides what a command does to a document (`None` = not yet drafted).
pub fn decide(
    state: Option<&Document>,
    cmd: Command,
    ctx: &Ctx<'_>,
) -> Result<Decision, DomainError> {
    let roles = Roles {
        org: ctx.org,
        at: ctx.now,
    };
    let actor = ctx.actor.to_owned();
    let at = ctx.now;
    let doc = match (state, &cmd) {
        (None, Command::Draft { .. }) => None,
        (Some(_), Command::Draft { .. }) => {
            return Err(invalid("the document already exists"));
        }
        (None, _) => return Err(invalid("no such document")),
        (Some(d), _) => Some(d),
    };
    let Some(doc) = doc else {
        let Command::Draft {
            id,
            agency,
            drafting_unit,
            draft,
        } = cmd
        else {
            unreachable!("only Draft reaches here");
        };
        if !ctx.org.agencies.contains_key(&agency) {
            return Err(invalid(format!("no agency {agency}")));
        }
        if !roles.in_agency(&actor, &agency) {
            return Err(forbidden(format!(
                "only officials of {agency} draft its documents; {actor} holds no position there"
            )));
        }
        let units = roles.units_of(&actor, &agency);
        let drafting_unit = match drafting_unit {
            Some(u) => u,
            None => units.first().cloned().ok_or_else(|| {
                invalid(format!(
                    "{actor} belongs to no unit of {agency}; name the drafting_unit"
                ))
            })?,
        };
        if !roles.unit_exists(&agency, &drafting_unit) {
            return Err(invalid(format!("no unit {drafting_unit} in {agency}")));
        }
        if !units.contains(&drafting_unit) && !roles.is_leader(&actor, &agency) {
            return Err(forbidden(format!(
                "{actor} may draft only for their own unit, not {drafting_unit}"
            )));
        }
        check_draft(&draft, &agency, ctx.org)?;
        return Ok(Decision::one(DocumentEvent::Drafted(Drafted {
            doc: id,
            agency,
            drafting_unit,
            by: actor,
            at,
            draft,
        })));
    };

    match cmd {
        Command::Draft { .. } => unreachable!("handled above"),
        Command::Revise {
            ref draft,
            ref note,
        } => {
            if doc.status != Status::Draft {
                return Err(wrong_state(&cmd, doc));
            }
            if !is_drafter(&roles, doc, &actor) {
                return Err(forbidden(format!(
                    "only the author or the drafting unit {}/{} edits a draft",
                    doc.agency, doc.drafting_unit
                )));
            }
            check_draft(draft, &doc.agency, ctx.org)?;
            if let Some(n) = note {
                text("note", n, false)?;
            }
            Ok(Decision::one(DocumentEvent::Revised(Revised {
                by: actor,
                at,
                draft: draft.clone(),
                note: note.clone(),
            })))
        }
        Command::Route {
            ref to,
            purpose,
            ref note,
        } => {
            let allowed = match doc.status {
                Status::Draft => is_drafter(&roles, doc, &actor),
                Status::InReview => routed_to(doc, &actor).is_some(),
                _ => return Err(wrong_state(&cmd, doc)),
            };
            if !allowed {
                return Err(forbidden(
                    "only the author or drafting unit routes a draft, and in review only the official it was routed to",
                ));
            }
            if to == &actor {
                return Err(invalid("a draft cannot be routed to oneself"));
            }
            if !roles.in_agency(to, &doc.agency) {
                return Err(invalid(format!(
                    "{to} holds no position in {} at this time",
                    doc.agency
                )));
            }
            if let Some(n) = note {
                text("note", n, false)?;
            }
            Ok(Decision::one(DocumentEvent::Routed(Routed {
                by: actor,
                at,
                to: to.clone(),
                purpose,
                note: note.clone(),
            })))
        }
        Command::Return { ref reason } => {
            if !matches!(doc.status, Status::InReview | Status::AwaitingSignature) {
                return Err(wrong_state(&cmd, doc));
            }
            if routed_to(doc, &actor).is_none() {
                return Err(forbidden(
                    "only the official the draft was routed to may return it",
                ));
            }
            text("reason", reason, true)?;
            Ok(Decision::one(DocumentEvent::Returned(Returned {
                by: actor,
                at,
                to: doc.author.clone(),
                reason: reason.clone(),
            })))
        }
        Command::RequestOpinion {
            ref from,
            ref question,
        } => {
            if !matches!(
                doc.status,
                Status::Draft | Status::InReview | Status::AwaitingSignature
            ) {
                return Err(wrong_state(&cmd, doc));
            }
            if !is_drafter(&roles, doc, &actor) && routed_to(doc, &actor).is_none() {
                return Err(forbidden(
                    "only the author, the drafting unit or the official the draft is routed to asks for opinions",
                ));
            }
            if from.is_empty() {
                return Err(invalid("from needs at least one official"));
            }
            for o in from {
                if ctx.org.positions_at(o, at).is_empty() {
                    return Err(invalid(format!("{o} holds no position at this time")));
                }
                if o == &actor {
                    return Err(invalid("one does not ask oneself for an opinion"));
                }
            }
            text("question", question, true)?;
            Ok(Decision::one(DocumentEvent::OpinionRequested(
                OpinionRequested {
                    by: actor,
                    at,
                    from: from.clone(),
                    question: question.clone(),
                },
            )))
        }
        Command::GiveOpinion {
            opinion,
            ref comment,
        } => {
            if !matches!(
                doc.status,
                Status::Draft | Status::InReview | Status::AwaitingSignature
            ) {
                return Err(wrong_state(&cmd, doc));
            }
            if !doc
                .opinions
                .iter()
                .any(|o| o.from == actor && o.opinion.is_none())
            {
                return Err(forbidden(format!(
                    "{actor} was not asked for an opinion on this draft (or already gave it)"
                )));
            }
            text("comment", comment, opinion != OpinionKind::Agree)?;
            Ok(Decision::one(DocumentEvent::OpinionGiven(OpinionGiven {
                by: actor,
                at,
                opinion,
                comment: comment.clone(),
            })))
        }
        Command::Sign {
            jws,
            payload,
            certificate,
            report,
            authority,
        } => {
            may_sign(doc, &actor)?;
            check_payload(doc, &payload, &authority, ctx)?;
            if !report.passed() {
                return Err(invalid(format!(
                    "the signature did not verify: {:?} {}",
                    report.indication,
                    report
                        .sub_indication
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_default()
                )));
            }
            if !authority.passed {
                return Err(invalid(format!(
                    "the signer lacks authority: {}",
                    authority.reason
                )));
            }
            Ok(Decision::one(DocumentEvent::Signed(Signed {
                by: actor,
                at,
                jws,
                payload,
                certificate,
                report,
                authority,
            })))
        }
        Command::Issue {
            plan,
            number,
            seal,
            seal_payload,
            org_version,
        } => {
            let fresh = plan_issue(doc, ctx)?;
            if fresh != plan {
                return Err(invalid("the issue plan is stale; retry"));
            }
            if number == 0 {
                return Err(invalid("numbers start at 1"));
            }
            let register = plan.register.stream_id();
            Ok(Decision {
                events: vec![DocumentEvent::Issued(Issued {
                    by: actor.clone(),
                    at,
                    number,
                    symbol: plan.symbol.clone(),
                    issued_on: plan.issued_on,
                    register,
                    recipients: plan.recipients.clone(),
                    seal,
                    seal_payload,
                    org_version,
                })],
                register: Some((
                    plan.register,
                    NumberAllocated {
                        number,
                        doc: doc.id,
                        symbol: Some(plan.symbol),
                        by: actor,
                        at,
                    },
                )),
                linked: None,
            })
        }
        Command::Recall { ref reason } => {
            if doc.status != Status::Issued {
                return Err(wrong_state(&cmd, doc));
            }
            if !roles.is_clerk(&actor, &doc.agency) && !roles.is_leader(&actor, &doc.agency) {
                return Err(forbidden(format!(
                    "only a leader or clerk of {} recalls its documents",
                    doc.agency
                )));
            }
            text("reason", reason, true)?;
            Ok(Decision::one(DocumentEvent::Recalled(Recalled {
                by: actor,
                at,
                reason: reason.clone(),
            })))
        }
        Command::Replace {
            ref replacement,
            ref reason,
        } => {
            if doc.status != Status::Issued {
                return Err(wrong_state(&cmd, doc));
            }
            if !roles.is_clerk(&actor, &doc.agency) && !roles.is_leader(&actor, &doc.agency) {
                return Err(forbidden(format!(
                    "only a leader or clerk of {} replaces its documents",
                    doc.agency
                )));
            }
            text("reason", reason, true)?;
            // Decree 30/2020 Art. 18.3: replaced by a document of equivalent form.
            if replacement.id == doc.id
                || replacement.agency != doc.agency
                || replacement.status != Status::Issued
            {
                return Err(invalid(
                    "the replacement must be another issued document of the same agency",
                ));
            }
            if replacement.draft.doc_type != doc.draft.doc_type {
                return Err(invalid(
                    "the replacement must be of the same document type (Decree 30/2020 Art. 18.3)",
                ));
            }
            Ok(Decision::one(DocumentEvent::Replaced(Replaced {
                by: actor,
                at,
                replacement: replacement.id,
                replacement_reference: replacement.reference().unwrap_or_default().to_owned(),
                reason: reason.clone(),
            })))
        }
        Command::Receive {
            ref agency,
            ref register,
            number,
        } => {
            incoming_state(&cmd, doc)?;
            if !roles.is_clerk(&actor, agency) {
                return Err(forbidden(format!(
                    "only a clerk (văn thư) of {agency} receives documents for it"
                )));
            }
            let expected_register = receipt_register(doc, agency, at)?;
            if doc.receipts.contains_key(agency) {
                return Err(receipt_state(&cmd, "received"));
            }
            if *register != expected_register || number == 0 {
                return Err(invalid("the incoming register plan is stale; retry"));
            }
            Ok(Decision {
                events: vec![DocumentEvent::Received(Received {
                    agency: agency.clone(),
                    by: actor.clone(),
                    at,
                    incoming_number: number,
                    register: register.stream_id(),
                })],
                register: Some((
                    register.clone(),
                    NumberAllocated {
                        number,
                        doc: doc.id,
                        symbol: doc.reference().map(str::to_owned),
                        by: actor,
                        at,
                    },
                )),
                linked: None,
            })
        }
        Command::Assign {
            ref agency,
            ref lead,
            ref coordinating,
            ref fyi,
            ref handler,
            ref instruction,
            deadline,
        } => {
            incoming_state(&cmd, doc)?;
            if !roles.is_leader(&actor, agency) {
                return Err(forbidden(format!(
                    "only a leader of {agency} assigns its incoming documents"
                )));
            }
            let r = receipt(&cmd, doc, agency)?;
            if r.done {
                return Err(receipt_state(&cmd, "completed"));
            }
            if !r.completed.is_empty() {
                return Err(invalid(
                    "units have already completed their part; the assignment can no longer change",
                ));
            }
            let mut all = vec![lead];
            all.extend(coordinating);
            all.extend(fyi);
            let mut seen = std::collections::BTreeSet::new();
            for u in &all {
                if !roles.unit_exists(agency, u) {
                    return Err(invalid(format!("no unit {u} in {agency}")));
                }
                if !seen.insert(*u) {
                    return Err(invalid(format!("unit {u} is named twice")));
                }
            }
            if let Some(h) = handler {
                if !roles.in_unit(h, agency, lead) {
                    return Err(invalid(format!(
                        "the handler {h} is not in the lead unit {lead}"
                    )));
                }
            }
            text("instruction", instruction, true)?;
            let deadline = deadline.or(r.handling_due).or(doc.reply_due(agency));
            if r.handling_due.is_some() && deadline != r.handling_due {
                return Err(invalid(
                    "the handling deadline is set; change it with a deadline extension (reason kept)",
                ));
            }
            // Several units need a lead and a deadline (domain-rules §6 rule 11).
            if !coordinating.is_empty() && deadline.is_none() {
                return Err(invalid("an assignment to several units needs a deadline"));
            }
            if let Some(d) = deadline {
                if d < at.with_timezone(&numbering::vietnam()).date_naive() {
                    return Err(invalid("the deadline is in the past"));
                }
            }
            Ok(Decision::one(DocumentEvent::Assigned(Assigned {
                agency: agency.clone(),
                by: actor,
                at,
                lead: lead.clone(),
                coordinating: coordinating.clone(),
                fyi: fyi.clone(),
                handler: handler.clone(),
                instruction: instruction.clone(),
                deadline,
            })))
        }
        Command::ExtendDeadline {
            ref agency,
            scope,
            new,
            ref reason,
        } => {
            incoming_state(&cmd, doc)?;
            text("reason", reason, true)?;
            let old = match scope {
                DeadlineScope::Reply => {
                    if !roles.is_leader(&actor, &doc.agency) && !roles.is_clerk(&actor, &doc.agency)
                    {
                        return Err(forbidden(format!(
                            "only a leader or clerk of the issuing agency {} extends a reply deadline",
                            doc.agency
                        )));
                    }
                    doc.reply_due(agency).ok_or_else(|| {
                        invalid(format!("{agency} has no reply deadline on this document"))
                    })?
                }
                DeadlineScope::Handling => {
                    if !roles.is_leader(&actor, agency) {
                        return Err(forbidden(format!(
                            "only a leader of {agency} extends its handling deadline"
                        )));
                    }
                    receipt(&cmd, doc, agency)?
                        .handling_due
                        .ok_or_else(|| invalid(format!("{agency} set no handling deadline")))?
                }
            };
            if new <= old {
                return Err(invalid(format!(
                    "the new deadline {new} must be after the one in force, {old}"
                )));
            }
            Ok(Decision::one(DocumentEvent::DeadlineExtended(
                DeadlineExtended {
                    agency: agency.clone(),
                    scope,
                    by: actor,
                    at,
                    old,
                    new,
                    reason: reason.clone(),
                },
            )))
        }
        Command::Reply {
            ref agency,
            ref unit,
            ref reply,
        } => {
            incoming_state(&cmd, doc)?;
            let r = receipt(&cmd, doc, agency)?;
            let a = assignment(&cmd, r)?;
            if r.done {
                return Err(receipt_state(&cmd, "completed"));
            }
            let assigned: Vec<&String> = std::iter::once(&a.lead).chain(&a.coordinating).collect();
            let unit = match unit {
                Some(u) => u.clone(),
                None => roles
                    .units_of(&actor, agency)
                    .into_iter()
                    .find(|u| assigned.contains(&u))
                    .unwrap_or_default(),
            };
            if !assigned.contains(&&unit) || !roles.in_unit(&actor, agency, &unit) {
                return Err(forbidden(format!(
                    "only officials of the units assigned to handle it ({}) reply for {agency}",
                    assigned
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if reply.agency != *agency || reply.status != Status::Issued {
                return Err(invalid(format!(
                    "the reply must be a document issued by {agency}"
                )));
            }
            if !reply
                .draft
                .recipients
                .iter()
                .any(|x| x.agency == doc.agency)
            {
                return Err(invalid(format!(
                    "the reply must be addressed to {}, the issuer of this document",
                    doc.agency
                )));
            }
            if reply.in_reply_to.is_some() {
                return Err(invalid("that document is already linked as a reply"));
            }
            let reply_reference = reply.reference().unwrap_or_default().to_owned();
            let due = doc.reply_due(agency);
            let on_time = due.is_none_or(|d| !ctx.calendar.is_overdue(d, at));
            Ok(Decision {
                events: vec![DocumentEvent::Replied(Replied {
                    agency: agency.clone(),
                    unit,
                    by: actor.clone(),
                    at,
                    reply: reply.id,
                    reply_reference,
                    reply_due: due,
                    on_time,
                })],
                register: None,
                linked: Some((
                    reply.id,
                    reply.version,
                    DocumentEvent::ReplyLinked(ReplyLinked {
                        by: actor,
                        at,
                        in_reply_to: doc.id,
                        in_reply_to_reference: doc.reference().unwrap_or_default().to_owned(),
                    }),
                )),
            })
        }
        Command::Complete {
            ref agency,
            ref unit,
        } => {
            incoming_state(&cmd, doc)?;
            let r = receipt(&cmd, doc, agency)?;
            let a = assignment(&cmd, r)?;
            let unit = unit.clone().unwrap_or_else(|| a.lead.clone());
            let is_lead = unit == a.lead;
            if !is_lead && !a.coordinating.contains(&unit) && !a.fyi.contains(&unit) {
                return Err(invalid(format!(
                    "unit {unit} was not assigned this document"
                )));
            }
            if !roles.in_unit(&actor, agency, &unit) && !roles.is_leader(&actor, agency) {
                return Err(forbidden(format!(
                    "only officials of {unit} or leaders of {agency} complete its part"
                )));
            }
            if r.completed.contains_key(&unit) {
                return Err(receipt_state(&cmd, "completed"));
            }
            // The lead's completion completes its coordinators (domain-rules §6 rule 12).
            let cascaded = if is_lead {
                a.coordinating
                    .iter()
                    .chain(&a.fyi)
                    .filter(|u| !r.completed.contains_key(*u))
                    .cloned()
                    .collect()
            } else {
                vec![]
            };
            Ok(Decision::one(DocumentEvent::Completed(Completed {
                agency: agency.clone(),
                unit,
                by: actor,
                at,
                cascaded,
            })))
        }
    }
}

/// Whether `actor` may sign now: the document awaits a signature and was
/// routed to them for signing. Checked before any signature is verified.
pub fn may_sign(doc: &Document, actor: &str) -> Result<(), DomainError> {
    if doc.status != Status::AwaitingSignature {
        return Err(DomainError::WrongState {
            command: "sign",
            state: doc.status.as_str(),
        });
    }
    if doc
        .route
        .as_ref()
        .is_none_or(|r| r.to != actor || r.purpose != RoutePurpose::Signing)
    {
        return Err(forbidden(format!(
            "only the official the draft was routed to for signing signs it; {actor} is not"
        )));
    }
    Ok(())
}

/// The submitted payload is the one this version of the document asks for,
/// handed out recently, by the server, for this signer and verdict.
fn check_payload(
    doc: &Document,
    payload: &SigningPayload,
    verdict: &AuthorityVerdict,
    ctx: &Ctx<'_>,
) -> Result<(), DomainError> {
    if payload.doc != doc.id.to_string() {
        return Err(invalid("the signed payload is for another document"));
    }
    if payload.version != doc.version {
        return Err(invalid(format!(
            "the signed payload is for version {}, the document is at version {}; fetch the signing payload again",
            payload.version, doc.version
        )));
    }
    if payload.signer != ctx.actor {
        return Err(invalid("the signed payload names another signer"));
    }
    payload_freshness(payload.at, ctx.now).map_err(|(_, _, why)| invalid(why))?;
    let expected = doc.signing_payload(ctx.actor, verdict, payload.at);
    if &expected != payload {
        return Err(invalid(
            "the signed payload differs from the document's signing payload",
        ));
    }
    payload_matches(payload, verdict).map_err(invalid)
}

/// Whether a signing payload dated `payload_at` may still be signed at
/// `now`: not from the future (beyond the clock skew), not older than
/// [`SIGNING_PAYLOAD_TTL`]. A failure is a signature-policy constraint
/// (INDETERMINATE / SIG_CONSTRAINTS_FAILURE) in a verification report.
pub fn payload_freshness(
    payload_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<String, (Indication, SubIndication, String)> {
    let fail = |why: String| {
        Err((
            Indication::Indeterminate,
            SubIndication::SigConstraintsFailure,
            why,
        ))
    };
    if payload_at > now + CLOCK_SKEW {
        return fail(format!(
            "the signed payload is dated {payload_at}, in the future"
        ));
    }
    if now - payload_at > SIGNING_PAYLOAD_TTL {
        return fail(format!(
            "the signing payload of {payload_at} is stale (older than {} minutes); fetch it again",
            SIGNING_PAYLOAD_TTL.num_minutes()
        ));
    }
    Ok(format!("the signing payload of {payload_at} is fresh"))
}

impl WorkingDays for super::calendar::Calendar {
    fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        super::calendar::Calendar::add_working_days(self, from, n)
    }
    fn is_overdue(&self, due: NaiveDate, at: DateTime<Utc>) -> bool {
        super::calendar::Calendar::is_overdue(self, due, at)
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
