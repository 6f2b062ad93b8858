//! The organisation as events: agencies, units, officials' appointments,
//! certificates bound to officials, and delegations, each with the instant it
//! takes effect, so the organisation as of any past instant can be derived.
//! A signature is judged by the roles that held when it was made.
//!
//! - `events.rs`: positions, signing forms and the events themselves.
//! - `validate.rs`: whether an event may be applied (`OrgError`).
//! - `apply.rs`: folding an event into the history.
//! - here: the history (`Org`) and what it says at an instant.
//!
//! Must never: do I/O, read the clock, or forget history (an appointment
//! ends with `official_relieved`; nothing is overwritten).

mod apply;
mod events;
mod validate;

pub use events::*;
pub use validate::*;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Stream id of the organisation's events.
pub const STREAM: &str = "org";

/// A span of time `[from, until)`; `until = None` means still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

impl Span {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agency {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    pub collegial: bool,
    /// Its identifier on the national interchange (Decision 20/2020/QĐ-TTg).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organ_id: Option<String>,
    /// For an agency outside this system: the interchange peer (another
    /// system, or an axis adapter) its documents travel through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

impl Agency {
    /// An agency of another system, reached through the interchange.
    pub fn is_external(&self) -> bool {
        self.peer.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub agency: String,
    pub code: String,
    pub name: String,
}

/// One appointment of an official.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    pub official: String,
    pub name: String,
    pub agency: String,
    pub unit: Option<String>,
    pub position: Position,
    pub title: Option<String>,
    pub span: Span,
}

impl Appointment {
    fn is_open(&self, official: &str, agency: &str, position: Position) -> bool {
        self.official == official
            && self.agency == agency
            && self.position == position
            && self.span.until.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub official: String,
    pub fingerprint: String,
    pub serial: String,
    pub issuer: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delegation {
    pub id: String,
    pub form: DelegationForm,
    pub from: String,
    pub to: String,
    pub agency: String,
    pub span: Span,
    pub doc_types: Vec<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who an authenticated token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An official the organisation knows (appointed or made admin, ever):
    /// what they may do comes from their positions, never from the token.
    Official,
    /// A registered integration client, with the scopes both its token and
    /// its registration name.
    Client { scopes: Vec<String> },
}

/// A registered integration client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub span: Span,
}

/// An integration client's webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: String,
    pub client: String,
    pub url: String,
    pub events: Vec<String>,
    /// Empty: every agency.
    pub agencies: Vec<String>,
    pub span: Span,
    /// When its secret was rotated, in order: the secret's generation at
    /// an instant is how many rotations came before it.
    pub rotations: Vec<DateTime<Utc>>,
}

impl Webhook {
    /// The generations of the secrets that sign a message at `t`: the
    /// current one first, then, newest first, each rotated out within the
    /// overlap (generation g was rotated out by rotation g).
    pub fn generations_at(&self, t: DateTime<Utc>) -> Vec<u32> {
        let overlap = chrono::Duration::hours(events::WEBHOOK_ROTATION_OVERLAP_HOURS);
        let done: Vec<&DateTime<Utc>> = self.rotations.iter().filter(|r| **r <= t).collect();
        let current = u32::try_from(done.len()).unwrap_or(u32::MAX);
        let mut out = vec![current];
        out.extend(
            (0..current)
                .rev()
                .filter(|g| done.get(*g as usize).is_some_and(|r| t - **r < overlap)),
        );
        out
    }

    /// Whether it wants events of `kind` about any of `agencies`.
    pub fn wants(&self, kind: &str, agencies: &[&str]) -> bool {
        wants(&self.events, &self.agencies, kind, agencies)
    }
}

/// Whether a webhook subscribed to `events` about `subscribed` agencies
/// (every agency when empty) wants an event of `kind` about `concerned`.
pub fn wants(events: &[String], subscribed: &[String], kind: &str, concerned: &[&str]) -> bool {
    events.iter().any(|e| e == kind)
        && (subscribed.is_empty() || concerned.iter().any(|a| subscribed.iter().any(|w| w == a)))
}

/// The whole history of the organisation, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Org {
    pub agencies: BTreeMap<String, Agency>,
    /// By (agency, unit code).
    pub units: BTreeMap<(String, String), Unit>,
    pub appointments: Vec<Appointment>,
    pub bindings: Vec<Binding>,
    pub delegations: Vec<Delegation>,
    /// Who held the admin role, when.
    pub admins: Vec<(String, Span)>,
    /// Who held the auditor role (reads the log's raw entries), when.
    pub auditors: Vec<(String, Span)>,
    /// Integration clients, registered and revoked.
    pub clients: Vec<Client>,
    /// Webhook subscriptions, made and ended.
    pub webhooks: Vec<Webhook>,
}

impl Org {
    /// Whether `id` was ever appointed, or made an admin or an auditor: a subject the
    /// organisation knows as an official.
    pub fn knows_official(&self, id: &str) -> bool {
        self.appointments.iter().any(|a| a.official == id)
            || self
                .admins
                .iter()
                .chain(&self.auditors)
                .any(|(o, _)| o == id)
    }

    /// Who a verified token's subject is at `t`: a known official (a
    /// client's token never passes for one), or a client registered then
    /// with the scopes its token asks for and its registration allows.
    /// `None`: the organisation does not know the subject.
    pub fn authenticate(
        &self,
        sub: &str,
        client_token: bool,
        token_scopes: &[String],
        t: DateTime<Utc>,
    ) -> Option<Subject> {
        if client_token {
            let client = self.client_at(sub, t)?;
            let scopes = token_scopes
                .iter()
                .filter(|s| client.scopes.contains(s))
                .cloned()
                .collect();
            Some(Subject::Client { scopes })
        } else {
            self.knows_official(sub).then_some(Subject::Official)
        }
    }

    /// The client registered as `id` at `t`, if any.
    pub fn client_at(&self, id: &str, t: DateTime<Utc>) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.id == id && c.span.contains(t))
    }

    /// The agency whose interchange identifier is `organ_id`.
    pub fn agency_by_organ(&self, organ_id: &str) -> Option<&Agency> {
        self.agencies
            .values()
            .find(|a| a.organ_id.as_deref() == Some(organ_id))
    }

    /// The webhook `id` in force at `t`, while its client is registered.
    pub fn webhook_at(&self, id: &str, t: DateTime<Utc>) -> Option<&Webhook> {
        self.webhooks
            .iter()
            .find(|w| w.id == id && w.span.contains(t))
            .filter(|w| self.client_at(&w.client, t).is_some())
    }

    /// Appointments of `official` in force at `t`.
    pub fn positions_at(&self, official: &str, t: DateTime<Utc>) -> Vec<&Appointment> {
        self.appointments
            .iter()
            .filter(|a| a.official == official && a.span.contains(t))
            .collect()
    }

    /// Whether `official` holds `position` at agency level (no unit) in `agency` at `t`.
    pub fn holds(
        &self,
        official: &str,
        agency: &str,
        position: Position,
        t: DateTime<Utc>,
    ) -> bool {
        self.positions_at(official, t)
            .iter()
            .any(|a| a.agency == agency && a.position == position && a.unit.is_none())
    }

    /// Who held the agency-level `position` in `agency` at `t` (the first, for head).
    pub fn holder(
        &self,
        agency: &str,
        position: Position,
        t: DateTime<Utc>,
    ) -> Option<&Appointment> {
        self.appointments.iter().find(|a| {
            a.agency == agency && a.position == position && a.unit.is_none() && a.span.contains(t)
        })
    }

    /// Whether `official` led `agency` at `t` (head, deputy or acting head,
    /// at agency level).
    pub fn leads(&self, official: &str, agency: &str, t: DateTime<Utc>) -> bool {
        self.positions_at(official, t)
            .iter()
            .any(|a| a.agency == agency && a.unit.is_none() && a.position.is_leader())
    }

    /// Whether `official` kept `agency`'s books at `t`: its leaders, its
    /// clerks and its office chief (Chánh Văn phòng, who heads the office
    /// unit: the position decides, not whether the appointment names a unit).
    pub fn keeps_books(&self, official: &str, agency: &str, t: DateTime<Utc>) -> bool {
        self.leads(official, agency, t)
            || self.positions_at(official, t).iter().any(|a| {
                a.agency == agency && matches!(a.position, Position::Clerk | Position::OfficeChief)
            })
    }

    /// Whether `official` was a clerk (văn thư) of `agency` at `t`.
    pub fn is_clerk(&self, official: &str, agency: &str, t: DateTime<Utc>) -> bool {
        self.positions_at(official, t)
            .iter()
            .any(|a| a.agency == agency && a.position == Position::Clerk)
    }

    /// Whether `official` held the admin role at `t`.
    pub fn is_admin(&self, official: &str, t: DateTime<Utc>) -> bool {
        self.admins
            .iter()
            .any(|(o, s)| o == official && s.contains(t))
    }

    /// Whether `official` held the auditor role at `t`.
    pub fn is_auditor(&self, official: &str, t: DateTime<Utc>) -> bool {
        self.auditors
            .iter()
            .any(|(o, s)| o == official && s.contains(t))
    }

    /// The official a certificate was bound to at `t`, if any.
    pub fn certificate_holder(&self, fingerprint: &str, t: DateTime<Utc>) -> Option<&Binding> {
        self.bindings
            .iter()
            .find(|b| b.fingerprint == fingerprint && b.span.contains(t))
    }

    /// Delegations to `official` in `agency` in force at `t`.
    pub fn delegations_to(
        &self,
        official: &str,
        agency: &str,
        t: DateTime<Utc>,
    ) -> Vec<&Delegation> {
        self.delegations
            .iter()
            .filter(|d| d.to == official && d.agency == agency && d.span.contains(t))
            .collect()
    }

    /// The organisation as it stood at `t`: who held what, which
    /// certificates were bound, which delegations were in force.
    pub fn as_of(&self, t: DateTime<Utc>) -> OrgAt<'_> {
        OrgAt {
            at: t,
            agencies: self.agencies.values().collect(),
            appointments: self
                .appointments
                .iter()
                .filter(|a| a.span.contains(t))
                .collect(),
            bindings: self
                .bindings
                .iter()
                .filter(|b| b.span.contains(t))
                .collect(),
            delegations: self
                .delegations
                .iter()
                .filter(|d| d.span.contains(t))
                .collect(),
            clients: self.clients.iter().filter(|c| c.span.contains(t)).collect(),
        }
    }
}

/// A snapshot of the organisation at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct OrgAt<'a> {
    pub at: DateTime<Utc>,
    pub agencies: Vec<&'a Agency>,
    pub appointments: Vec<&'a Appointment>,
    pub bindings: Vec<&'a Binding>,
    pub delegations: Vec<&'a Delegation>,
    pub clients: Vec<&'a Client>,
}
