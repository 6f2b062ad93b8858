//! The organisation as events: agencies, units, officials' appointments,
//! certificates bound to officials, and delegations, each with the instant it
//! takes effect, so the organisation as of any past instant can be derived.
//! A signature is judged by the roles that held when it was made.
//!
//! Must never: do I/O, read the clock, or forget history (an appointment
//! ends with `official_relieved`; nothing is overwritten).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Stream id of the organisation's events.
pub const STREAM: &str = "org";

/// Positions an official can hold (DESIGN §9).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Thủ trưởng: Chairman of a People's Committee, Director of a Department.
    Head,
    /// Cấp phó: Vice-chairman, Deputy Director.
    DeputyHead,
    /// Quyền: acting head.
    ActingHead,
    /// Chánh Văn phòng: chief of the agency's office.
    OfficeChief,
    /// Văn thư: registers, numbers, seals and dispatches.
    Clerk,
    /// Chuyên viên.
    Specialist,
}

impl Position {
    /// Head, deputy head or acting head: the agency's leadership.
    pub fn is_leader(self) -> bool {
        matches!(
            self,
            Position::Head | Position::DeputyHead | Position::ActingHead
        )
    }

    /// Wire name (`head`, `deputy_head`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Position::Head => "head",
            Position::DeputyHead => "deputy_head",
            Position::ActingHead => "acting_head",
            Position::OfficeChief => "office_chief",
            Position::Clerk => "clerk",
            Position::Specialist => "specialist",
        }
    }
}

/// Signing forms of Decree 30/2020 Art. 13 (DESIGN §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Authority {
    /// The head signs in his own name.
    #[serde(rename = "")]
    Direct,
    /// Thay mặt: the head of a collegial body signs for the collective.
    #[serde(rename = "TM.")]
    Tm,
    /// Ký thay: a deputy signs for the head.
    #[serde(rename = "KT.")]
    Kt,
    /// Thừa lệnh: a unit head signs by the head's standing order.
    #[serde(rename = "TL.")]
    Tl,
    /// Thừa ủy quyền: signs under a written, time-limited delegation.
    #[serde(rename = "TUQ.")]
    Tuq,
    /// Quyền: the acting head signs.
    #[serde(rename = "Q.")]
    Q,
}

impl Authority {
    /// The prefix as printed on a document (`KT.`), empty for a direct signature.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Direct => "",
            Authority::Tm => "TM.",
            Authority::Kt => "KT.",
            Authority::Tl => "TL.",
            Authority::Tuq => "TUQ.",
            Authority::Q => "Q.",
        }
    }

    /// Parses `KT.`, `TM.`, `TL.`, `TUQ.`, `Q.` or the empty string (also without the dot).
    pub fn parse(s: &str) -> Option<Self> {
        Some(
            match s.trim().trim_end_matches('.').to_ascii_uppercase().as_str() {
                "" => Authority::Direct,
                "TM" => Authority::Tm,
                "KT" => Authority::Kt,
                "TL" => Authority::Tl,
                "TUQ" => Authority::Tuq,
                "Q" => Authority::Q,
                _ => return None,
            },
        )
    }
}

/// Delegation forms (TL. and TUQ. need one in force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DelegationForm {
    #[serde(rename = "TL.")]
    Tl,
    #[serde(rename = "TUQ.")]
    Tuq,
}

/// Events of the `org` stream. Every event names the instant it takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrgEvent {
    AgencyCreated {
        /// Short code used in symbols: `UBND`, `SNV`, `SVHTT`, `STTTT`.
        code: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
        /// A collegial body (People's Committee): its head signs TM. the collective.
        #[serde(default)]
        collegial: bool,
    },
    UnitCreated {
        agency: String,
        /// Code unique within the agency, used in công văn symbols (`VP`).
        code: String,
        name: String,
    },
    OfficialAppointed {
        official: String,
        name: String,
        agency: String,
        /// None for the agency's leadership (head, deputies).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        position: Position,
        /// Printed title, e.g. "Phó Giám đốc".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        from: DateTime<Utc>,
    },
    OfficialRelieved {
        official: String,
        agency: String,
        position: Position,
        at: DateTime<Utc>,
    },
    CertificateBound {
        official: String,
        /// SHA-256 of the certificate's DER, lower-case hex.
        fingerprint: String,
        serial: String,
        issuer: String,
        at: DateTime<Utc>,
    },
    CertificateRevoked {
        fingerprint: String,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    DelegationGranted {
        id: String,
        form: DelegationForm,
        /// The head who delegates.
        from: String,
        /// The official who may sign.
        to: String,
        agency: String,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        /// Document type codes covered (`KH`, `BC`, `CV`…); empty covers none.
        doc_types: Vec<String>,
    },
    DelegationRevoked {
        id: String,
        at: DateTime<Utc>,
    },
    /// The official may change the organisation (the admin role).
    AdminGranted {
        official: String,
        at: DateTime<Utc>,
    },
    AdminRevoked {
        official: String,
        at: DateTime<Utc>,
    },
    /// An integration client (the province's portal, an archive, another
    /// system) may call the API with tokens for this id, with at most these
    /// scopes. Client ids and official ids never overlap.
    ClientRegistered {
        id: String,
        name: String,
        /// Of [`CLIENT_SCOPES`].
        scopes: Vec<String>,
        at: DateTime<Utc>,
    },
    ClientRevoked {
        id: String,
        at: DateTime<Utc>,
    },
}

/// What an integration client may be allowed: `feed:read` (issued
/// documents), `org:read` (the organisation, as officials see it).
pub const CLIENT_SCOPES: &[&str] = &["feed:read", "org:read"];

impl OrgEvent {
    /// The instant the change takes effect (appointment, relief, binding,
    /// delegation start, grant…), as the admin states it; `None` for
    /// changes without one (agencies, units).
    pub fn effective_at(&self) -> Option<DateTime<Utc>> {
        match self {
            OrgEvent::AgencyCreated { .. } | OrgEvent::UnitCreated { .. } => None,
            OrgEvent::OfficialAppointed { from, .. } => Some(*from),
            OrgEvent::DelegationGranted { valid_from, .. } => Some(*valid_from),
            OrgEvent::OfficialRelieved { at, .. }
            | OrgEvent::CertificateBound { at, .. }
            | OrgEvent::CertificateRevoked { at, .. }
            | OrgEvent::DelegationRevoked { at, .. }
            | OrgEvent::AdminGranted { at, .. }
            | OrgEvent::AdminRevoked { at, .. }
            | OrgEvent::ClientRegistered { at, .. }
            | OrgEvent::ClientRevoked { at, .. } => Some(*at),
        }
    }

    /// Whether this change may be recorded at `recorded_at`: one that takes
    /// effect in the past rewrites what the organisation was (who had
    /// authority for a signature already made), so it is allowed only
    /// within `window` and with a `reason`. A few minutes' slack covers
    /// "as of now" written by hand.
    pub fn check_backdating(
        &self,
        recorded_at: DateTime<Utc>,
        window: chrono::Duration,
        reason: Option<&str>,
    ) -> Result<(), OrgError> {
        const SLACK: chrono::Duration = chrono::Duration::minutes(5);
        let Some(effective) = self.effective_at() else {
            return Ok(());
        };
        if effective >= recorded_at - SLACK {
            return Ok(());
        }
        if effective < recorded_at - window {
            return Err(OrgError::Invalid(format!(
                "takes effect at {effective}, more than {} days before it is recorded ({recorded_at}); the backdating window is {} days",
                (recorded_at - effective).num_days(),
                window.num_days()
            )));
        }
        if reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(OrgError::Invalid(format!(
                "takes effect at {effective}, before it is recorded ({recorded_at}): give a reason for backdating it"
            )));
        }
        Ok(())
    }

    /// Versioned event type for the log, e.g. `org.official_appointed.v1`.
    pub fn event_type(&self) -> &'static str {
        match self {
            OrgEvent::AgencyCreated { .. } => "org.agency_created.v1",
            OrgEvent::UnitCreated { .. } => "org.unit_created.v1",
            OrgEvent::OfficialAppointed { .. } => "org.official_appointed.v1",
            OrgEvent::OfficialRelieved { .. } => "org.official_relieved.v1",
            OrgEvent::CertificateBound { .. } => "org.certificate_bound.v1",
            OrgEvent::CertificateRevoked { .. } => "org.certificate_revoked.v1",
            OrgEvent::DelegationGranted { .. } => "org.delegation_granted.v1",
            OrgEvent::DelegationRevoked { .. } => "org.delegation_revoked.v1",
            OrgEvent::AdminGranted { .. } => "org.admin_granted.v1",
            OrgEvent::AdminRevoked { .. } => "org.admin_revoked.v1",
            OrgEvent::ClientRegistered { .. } => "org.client_registered.v1",
            OrgEvent::ClientRevoked { .. } => "org.client_revoked.v1",
        }
    }
}

/// A span of time `[from, until)`; `until = None` means still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

impl Span {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agency {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    pub collegial: bool,
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

/// Why an organisation change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    #[error("agency {0} already exists")]
    AgencyExists(String),
    #[error("no agency {0}")]
    NoAgency(String),
    #[error("unit {1} already exists in {0}")]
    UnitExists(String, String),
    #[error("no unit {1} in {0}")]
    NoUnit(String, String),
    #[error("{0} already holds {1} in {2}")]
    AlreadyAppointed(String, &'static str, String),
    #[error("{0} does not hold {1} in {2}")]
    NotAppointed(String, &'static str, String),
    #[error("certificate {0} is already bound")]
    CertificateBound(String),
    #[error("certificate {0} is not bound to anyone")]
    CertificateUnknown(String),
    #[error("delegation {0} already exists")]
    DelegationExists(String),
    #[error("no delegation {0} in force")]
    NoDelegation(String),
    #[error("{0}")]
    Invalid(String),
}

/// Official and client ids are token subjects and parts of keys and stream
/// ids (`inbox-{id}`): 1 to 64 of ASCII letters, digits, `.`, `_`, `-`, `@`
/// (an SSO's e-mail-like subjects fit), starting with a letter or digit.
fn check_id(kind: &str, id: &str) -> Result<(), OrgError> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(OrgError::Invalid(format!(
            "{kind} id {id:?} must be 1 to 64 ASCII letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        )))
    }
}

/// Agency and unit codes appear in symbols (`05/QĐ-UBND`) and stream ids:
/// upper-case ASCII letters and digits only.
fn check_code(kind: &str, code: &str) -> Result<(), OrgError> {
    if code.is_empty()
        || !code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(OrgError::Invalid(format!(
            "{kind} code {code:?} must be upper-case ASCII letters and digits"
        )));
    }
    Ok(())
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
    /// Integration clients, registered and revoked.
    pub clients: Vec<Client>,
}

impl Org {
    /// Checks that `event` may be applied to the history as it stands.
    pub fn validate(&self, event: &OrgEvent) -> Result<(), OrgError> {
        let agency = |code: &str| {
            self.agencies
                .contains_key(code)
                .then_some(())
                .ok_or_else(|| OrgError::NoAgency(code.to_owned()))
        };
        match event {
            OrgEvent::AgencyCreated { code, parent, .. } => {
                check_code("agency", code)?;
                if self.agencies.contains_key(code) {
                    return Err(OrgError::AgencyExists(code.clone()));
                }
                if let Some(p) = parent {
                    agency(p)?;
                }
            }
            OrgEvent::UnitCreated {
                agency: a, code, ..
            } => {
                agency(a)?;
                check_code("unit", code)?;
                if self.units.contains_key(&(a.clone(), code.clone())) {
                    return Err(OrgError::UnitExists(a.clone(), code.clone()));
                }
            }
            OrgEvent::OfficialAppointed {
                official,
                agency: a,
                unit,
                position,
                from,
                ..
            } => {
                agency(a)?;
                check_id("official", official)?;
                self.not_a_client(official)?;
                if let Some(u) = unit {
                    if !self.units.contains_key(&(a.clone(), u.clone())) {
                        return Err(OrgError::NoUnit(a.clone(), u.clone()));
                    }
                }
                if self.open_appointment(official, a, *position).is_some() {
                    return Err(OrgError::AlreadyAppointed(
                        official.clone(),
                        position.as_str(),
                        a.clone(),
                    ));
                }
                if *position == Position::Head && unit.is_none() {
                    // The new headship [from, ∞) must not overlap any other.
                    let overlapping = self.appointments.iter().find(|x| {
                        x.agency == *a
                            && x.position == Position::Head
                            && x.unit.is_none()
                            && x.span.until.is_none_or(|u| u > *from)
                    });
                    if let Some(h) = overlapping {
                        return Err(OrgError::Invalid(format!(
                            "{a} has a head from {} ({}) overlapping {from}; relieve them first",
                            h.span.from, h.official
                        )));
                    }
                }
            }
            OrgEvent::OfficialRelieved {
                official,
                agency: a,
                position,
                at,
            } => match self.open_appointment(official, a, *position) {
                None => {
                    return Err(OrgError::NotAppointed(
                        official.clone(),
                        position.as_str(),
                        a.clone(),
                    ))
                }
                Some(x) if *at < x.span.from => {
                    return Err(OrgError::Invalid(format!(
                        "relieved at {at}, before the appointment from {}",
                        x.span.from
                    )))
                }
                Some(_) => {}
            },
            OrgEvent::CertificateBound {
                fingerprint,
                official,
                ..
            } => {
                if !self.appointments.iter().any(|x| x.official == *official) {
                    return Err(OrgError::Invalid(format!(
                        "{official} holds no appointment"
                    )));
                }
                if fingerprint.len() != 64
                    || !fingerprint
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(OrgError::Invalid(
                        "fingerprint must be 64 lower-case hex digits (SHA-256 of the DER)".into(),
                    ));
                }
                if self.bindings.iter().any(|b| b.fingerprint == *fingerprint) {
                    return Err(OrgError::CertificateBound(fingerprint.clone()));
                }
            }
            OrgEvent::CertificateRevoked { fingerprint, .. } => {
                if !self
                    .bindings
                    .iter()
                    .any(|b| b.fingerprint == *fingerprint && b.span.until.is_none())
                {
                    return Err(OrgError::CertificateUnknown(fingerprint.clone()));
                }
            }
            OrgEvent::DelegationGranted {
                id,
                agency: a,
                valid_from,
                valid_until,
                from,
                to,
                ..
            } => {
                agency(a)?;
                if self.delegations.iter().any(|d| d.id == *id) {
                    return Err(OrgError::DelegationExists(id.clone()));
                }
                if valid_until <= valid_from {
                    return Err(OrgError::Invalid(
                        "a delegation must end after it starts".into(),
                    ));
                }
                if from == to {
                    return Err(OrgError::Invalid(
                        "an official cannot delegate to himself".into(),
                    ));
                }
                if !self.holds(from, a, Position::Head, *valid_from) {
                    return Err(OrgError::Invalid(format!(
                        "{from} is not the head of {a} at {valid_from}: only the head delegates (TL., TUQ.)"
                    )));
                }
            }
            OrgEvent::DelegationRevoked { id, .. } => {
                if !self
                    .delegations
                    .iter()
                    .any(|d| d.id == *id && d.revoked_at.is_none())
                {
                    return Err(OrgError::NoDelegation(id.clone()));
                }
            }
            OrgEvent::AdminGranted { official, .. } => {
                check_id("official", official)?;
                self.not_a_client(official)?;
                if self.is_admin_now(official) {
                    return Err(OrgError::Invalid(format!("{official} is already an admin")));
                }
            }
            OrgEvent::AdminRevoked { official, .. } => {
                if !self.is_admin_now(official) {
                    return Err(OrgError::Invalid(format!("{official} is not an admin")));
                }
            }
            OrgEvent::ClientRegistered { id, scopes, .. } => {
                check_id("client", id)?;
                if self.knows_official(id) {
                    return Err(OrgError::Invalid(format!(
                        "{id} is an official's id; client ids and official ids never overlap"
                    )));
                }
                if self
                    .clients
                    .iter()
                    .any(|c| c.id == *id && c.span.until.is_none())
                {
                    return Err(OrgError::Invalid(format!(
                        "client {id} is already registered"
                    )));
                }
                if scopes.is_empty() {
                    return Err(OrgError::Invalid(format!(
                        "client {id}: give at least one scope"
                    )));
                }
                if let Some(bad) = scopes.iter().find(|s| !CLIENT_SCOPES.contains(&s.as_str())) {
                    return Err(OrgError::Invalid(format!(
                        "client {id}: unknown scope {bad:?} (known: {})",
                        CLIENT_SCOPES.join(", ")
                    )));
                }
            }
            OrgEvent::ClientRevoked { id, .. } => {
                if !self
                    .clients
                    .iter()
                    .any(|c| c.id == *id && c.span.until.is_none())
                {
                    return Err(OrgError::Invalid(format!("no client {id} is registered")));
                }
            }
        }
        Ok(())
    }

    /// Refuses an official id that is (or was) a client's.
    fn not_a_client(&self, official: &str) -> Result<(), OrgError> {
        if self.clients.iter().any(|c| c.id == official) {
            return Err(OrgError::Invalid(format!(
                "{official} is an integration client's id; client ids and official ids never overlap"
            )));
        }
        Ok(())
    }

    /// Whether `id` was ever appointed or made an admin: a subject the
    /// organisation knows as an official.
    pub fn knows_official(&self, id: &str) -> bool {
        self.appointments.iter().any(|a| a.official == id)
            || self.admins.iter().any(|(o, _)| o == id)
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

    /// Applies an event (validated before, or read back from the log).
    pub fn apply(&mut self, event: &OrgEvent) {
        match event.clone() {
            OrgEvent::AgencyCreated {
                code,
                name,
                parent,
                collegial,
            } => {
                self.agencies.insert(
                    code.clone(),
                    Agency {
                        code,
                        name,
                        parent,
                        collegial,
                    },
                );
            }
            OrgEvent::UnitCreated { agency, code, name } => {
                self.units
                    .insert((agency.clone(), code.clone()), Unit { agency, code, name });
            }
            OrgEvent::OfficialAppointed {
                official,
                name,
                agency,
                unit,
                position,
                title,
                from,
            } => {
                self.appointments.push(Appointment {
                    official,
                    name,
                    agency,
                    unit,
                    position,
                    title,
                    span: Span { from, until: None },
                });
            }
            OrgEvent::OfficialRelieved {
                official,
                agency,
                position,
                at,
            } => {
                let open = self
                    .appointments
                    .iter()
                    .position(|a| a.is_open(&official, &agency, position));
                if let Some(i) = open {
                    self.appointments[i].span.until = Some(at);
                }
            }
            OrgEvent::CertificateBound {
                official,
                fingerprint,
                serial,
                issuer,
                at,
            } => {
                self.bindings.push(Binding {
                    official,
                    fingerprint,
                    serial,
                    issuer,
                    span: Span {
                        from: at,
                        until: None,
                    },
                });
            }
            OrgEvent::CertificateRevoked {
                fingerprint, at, ..
            } => {
                for b in &mut self.bindings {
                    if b.fingerprint == fingerprint && b.span.until.is_none() {
                        b.span.until = Some(at);
                    }
                }
            }
            OrgEvent::DelegationGranted {
                id,
                form,
                from,
                to,
                agency,
                valid_from,
                valid_until,
                doc_types,
            } => {
                self.delegations.push(Delegation {
                    id,
                    form,
                    from,
                    to,
                    agency,
                    span: Span {
                        from: valid_from,
                        until: Some(valid_until),
                    },
                    doc_types,
                    revoked_at: None,
                });
            }
            OrgEvent::AdminGranted { official, at } => {
                self.admins.push((
                    official,
                    Span {
                        from: at,
                        until: None,
                    },
                ));
            }
            OrgEvent::AdminRevoked { official, at } => {
                for (o, span) in &mut self.admins {
                    if *o == official && span.until.is_none() {
                        span.until = Some(at);
                    }
                }
            }
            OrgEvent::ClientRegistered {
                id,
                name,
                scopes,
                at,
            } => {
                self.clients.push(Client {
                    id,
                    name,
                    scopes,
                    span: Span {
                        from: at,
                        until: None,
                    },
                });
            }
            OrgEvent::ClientRevoked { id, at } => {
                for c in &mut self.clients {
                    if c.id == id && c.span.until.is_none() {
                        c.span.until = Some(at);
                    }
                }
            }
            OrgEvent::DelegationRevoked { id, at } => {
                for d in &mut self.delegations {
                    if d.id == id && d.revoked_at.is_none() {
                        d.revoked_at = Some(at);
                        d.span.until = Some(d.span.until.map_or(at, |u| u.min(at)));
                    }
                }
            }
        }
    }

    /// The appointment of `official` to `position` in `agency` that has not
    /// ended (at most one: `validate` refuses a second).
    fn open_appointment(
        &self,
        official: &str,
        agency: &str,
        position: Position,
    ) -> Option<&Appointment> {
        self.appointments
            .iter()
            .find(|a| a.is_open(official, agency, position))
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

    fn is_admin_now(&self, official: &str) -> bool {
        self.admins
            .iter()
            .any(|(o, s)| o == official && s.until.is_none())
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
