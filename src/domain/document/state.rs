//! A document's state as its events leave it: `evolve` folds one event,
//! `fold` a stream.
//!
//! Must never: refuse an event (deciding is `decide`'s job; a stored
//! event is a fact).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

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
    /// Per external recipient, the status messages its system sent back.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub interchange: BTreeMap<String, Vec<InterchangeState>>,
    /// Per external recipient, the replies that came back by package.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub replies_by_package: BTreeMap<String, Vec<Reply>>,
    /// For a document another system issued: where it came from, and what
    /// this system's agencies did with it as such.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Where an arrived document came from, and its refusals and recall here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Origin {
    #[serde(flatten)]
    pub from: ArrivedFrom,
    /// Addressed agencies that refused it (status 02).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, Refused>,
    /// The issuing system asked for it back (status 13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_requested: Option<RecallRequested>,
    /// The answer given here (15 agreed, 16 refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_answer: Option<RecallAnswered>,
}

/// One status an external recipient's system reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InterchangeState {
    pub code: String,
    /// The code's name (Đã đến, Đã tiếp nhận, …).
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub reported_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// Folds one event into the state. `None` before the first event.
pub fn evolve(state: Option<Document>, event: &DocumentEvent) -> Option<Document> {
    let mut doc = match (state, event) {
        (None, DocumentEvent::Drafted(e)) => return Some(drafted(e)),
        (None, DocumentEvent::Arrived(e)) => return Some(arrived(e)),
        (None, _) => return None,
        (Some(d), _) => d,
    };
    doc.version += 1;
    match event {
        DocumentEvent::Drafted(_) | DocumentEvent::Arrived(_) => {}
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
            doc.issue = Some(issue_of(e));
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
            let reply = Reply {
                unit: e.unit.clone(),
                reply: e.reply,
                reply_reference: e.reply_reference.clone(),
                at: e.at,
                on_time: e.on_time,
            };
            match doc.receipts.get_mut(&e.agency) {
                Some(r) => r.replies.push(reply),
                // Another system's agency: its reply came by package.
                None => doc
                    .replies_by_package
                    .entry(e.agency.clone())
                    .or_default()
                    .push(reply),
            }
        }
        DocumentEvent::Refused(e) => {
            if let Some(o) = doc.origin.as_mut() {
                o.refused.insert(e.agency.clone(), e.clone());
            }
        }
        DocumentEvent::RecallRequested(e) => {
            if let Some(o) = doc.origin.as_mut() {
                o.recall_requested = Some(e.clone());
            }
        }
        DocumentEvent::RecallAnswered(e) => {
            if let Some(o) = doc.origin.as_mut() {
                o.recall_answer = Some(e.clone());
                if e.agreed {
                    doc.status = Status::Recalled;
                    doc.recall = Some(Recalled {
                        by: e.by.clone(),
                        at: e.at,
                        reason: o
                            .recall_requested
                            .as_ref()
                            .map(|r| r.reason.clone())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        DocumentEvent::ReplyLinked(e) => doc.in_reply_to = Some(e.in_reply_to),
        DocumentEvent::InterchangeStatus(e) => {
            doc.interchange
                .entry(e.agency.clone())
                .or_default()
                .push(InterchangeState {
                    code: e.code.clone(),
                    name: crate::domain::interchange::StatusCode::parse(&e.code)
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default(),
                    description: e.description.clone(),
                    reported_at: e.reported_at,
                    at: e.at,
                });
        }
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

/// The issue record an `issued` event makes.
fn issue_of(e: &Issued) -> Issue {
    Issue {
        number: e.number,
        symbol: e.symbol.clone(),
        number_line: numbering::number_line(e.number, &e.symbol),
        reference: numbering::reference(e.number, &e.symbol),
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
    }
}

/// The state a draft starts in.
fn drafted(e: &Drafted) -> Document {
    Document {
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
        interchange: BTreeMap::new(),
        replies_by_package: BTreeMap::new(),
        origin: None,
    }
}

/// The state an arrival starts in: issued (by another system), awaiting
/// its addressed agencies' clerks; drafted nowhere here (no drafting unit).
fn arrived(e: &Arrived) -> Document {
    let seal = &e.seal_payload;
    let mut doc = drafted(&Drafted {
        doc: e.doc,
        agency: e.agency.clone(),
        drafting_unit: String::new(),
        by: e.by.clone(),
        at: e.at,
        draft: Draft {
            doc_type: seal.signed.doc_type.clone(),
            title: seal.signed.title.clone(),
            content: e.content.clone(),
            urgency: e.urgency,
            confidentiality: Confidentiality::Normal,
            recipients: e
                .recipients
                .iter()
                .map(|r| Recipient {
                    agency: r.agency.clone(),
                    reply_due: r.reply_due,
                    reply_within_working_days: None,
                })
                .collect(),
        },
    });
    doc.status = Status::Issued;
    // Issued by another system: its seal's number, symbol and date.
    doc.issue = Some(issue_of(&Issued {
        by: e.by.clone(),
        at: e.at,
        number: seal.number,
        symbol: seal.symbol.clone(),
        issued_on: seal.issued_on,
        register: String::new(),
        recipients: e.recipients.clone(),
        seal: e.seal.clone(),
        seal_payload: e.seal_payload.clone(),
        org_version: 0,
    }));
    doc.origin = Some(Origin {
        from: e.from.clone(),
        refused: BTreeMap::new(),
        recall_requested: None,
        recall_answer: None,
    });
    doc
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
