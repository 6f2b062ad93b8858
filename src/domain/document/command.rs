//! Commands, their context and outcome, the errors, the roles the rules
//! ask about, and `decide`, which dispatches a command to `outgoing.rs` or
//! `incoming.rs`.
//!
//! Must never: decide a rule itself beyond dispatch; read the clock.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::*;

use super::{arrived, incoming, outgoing};

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
    /// Record a personal signature that `accept` accepted.
    Sign(AcceptedSignature),
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
    /// An addressed agency refuses a document another system issued (02).
    Refuse {
        agency: String,
        reason: String,
    },
    /// An addressed agency answers the issuing system's recall request:
    /// agree (15) or refuse with a reason (16).
    AnswerRecall {
        agency: String,
        agree: bool,
        reason: String,
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
            Command::Sign(_) => "sign",
            Command::Issue { .. } => "issue",
            Command::Recall { .. } => "recall",
            Command::Replace { .. } => "replace",
            Command::Receive { .. } => "receive",
            Command::Assign { .. } => "assign",
            Command::ExtendDeadline { .. } => "extend a deadline of",
            Command::Reply { .. } => "reply to",
            Command::Complete { .. } => "complete",
            Command::Refuse { .. } => "refuse",
            Command::AnswerRecall { .. } => "answer the recall of",
        }
    }
}

/// Working-day arithmetic the rules need (implemented by the calendar).
pub trait WorkingDays: Sync {
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
    pub(super) fn one(event: DocumentEvent) -> Self {
        Self {
            events: vec![event],
            ..Default::default()
        }
    }
}

pub(super) fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

pub(super) fn forbidden(msg: impl Into<String>) -> DomainError {
    DomainError::Forbidden(msg.into())
}

pub(super) fn text(field: &str, s: &str, required: bool) -> Result<(), DomainError> {
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
pub(super) struct Roles<'a> {
    pub(super) org: &'a Org,
    pub(super) at: DateTime<Utc>,
}

impl<'a> Roles<'a> {
    /// The roles as of the command's instant.
    pub(super) fn of(ctx: &Ctx<'a>) -> Self {
        Self {
            org: ctx.org,
            at: ctx.now,
        }
    }

    pub(super) fn is_leader(&self, official: &str, agency: &str) -> bool {
        self.org.leads(official, agency, self.at)
    }

    pub(super) fn is_clerk(&self, official: &str, agency: &str) -> bool {
        self.org.is_clerk(official, agency, self.at)
    }

    pub(super) fn in_agency(&self, official: &str, agency: &str) -> bool {
        self.org
            .positions_at(official, self.at)
            .iter()
            .any(|a| a.agency == agency)
    }

    pub(super) fn units_of(&self, official: &str, agency: &str) -> Vec<String> {
        self.org
            .positions_at(official, self.at)
            .iter()
            .filter(|a| a.agency == agency)
            .filter_map(|a| a.unit.clone())
            .collect()
    }

    pub(super) fn in_unit(&self, official: &str, agency: &str, unit: &str) -> bool {
        self.units_of(official, agency).iter().any(|u| u == unit)
    }

    pub(super) fn unit_exists(&self, agency: &str, unit: &str) -> bool {
        self.org
            .units
            .contains_key(&(agency.to_owned(), unit.to_owned()))
    }
}

pub(super) fn wrong_state(cmd: &Command, doc: &Document) -> DomainError {
    DomainError::WrongState {
        command: cmd.name(),
        state: doc.status.as_str(),
    }
}

/// May `actor` edit and route the draft (author or drafting unit)?
pub(super) fn is_drafter(roles: &Roles<'_>, doc: &Document, actor: &str) -> bool {
    actor == doc.author || roles.in_unit(actor, &doc.agency, &doc.drafting_unit)
}

pub(super) fn routed_to<'d>(doc: &'d Document, actor: &str) -> Option<&'d Route> {
    doc.route.as_ref().filter(|r| r.to == actor)
}

/// Decides what a command does to a document (`None` = not yet drafted).
pub fn decide(
    state: Option<&Document>,
    cmd: Command,
    ctx: &Ctx<'_>,
) -> Result<Decision, DomainError> {
    let doc = match (state, &cmd) {
        (None, Command::Draft { .. }) => return outgoing::draft(cmd, ctx),
        (Some(_), Command::Draft { .. }) => {
            return Err(invalid("the document already exists"));
        }
        (None, _) => return Err(invalid("no such document")),
        (Some(d), _) => d,
    };
    match cmd {
        Command::Receive { .. }
        | Command::Assign { .. }
        | Command::ExtendDeadline { .. }
        | Command::Reply { .. }
        | Command::Complete { .. } => incoming::decide(doc, cmd, ctx),
        Command::Refuse { .. } | Command::AnswerRecall { .. } => arrived::decide(doc, cmd, ctx),
        // Another system drafted, signed and issued it: nothing of its
        // outgoing life happens here.
        _ if doc.origin.is_some() => Err(DomainError::WrongState {
            command: cmd.name(),
            state: "from_another_system",
        }),
        _ => outgoing::decide(doc, cmd, ctx),
    }
}

impl WorkingDays for crate::domain::calendar::Calendar {
    fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        crate::domain::calendar::Calendar::add_working_days(self, from, n)
    }
    fn is_overdue(&self, due: NaiveDate, at: DateTime<Utc>) -> bool {
        crate::domain::calendar::Calendar::is_overdue(self, due, at)
    }
}
