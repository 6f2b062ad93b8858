//! The organisation's events, with the positions and signing forms they
//! name (DESIGN §9).
//!
//! Must never: change a stored event's meaning; a change is a new event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;

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
    /// The official may read the log's raw entries (every record, drafts
    /// and confidential documents included): the auditor role, for an
    /// inspector checking the log against its published tree.
    AuditorGranted {
        official: String,
        at: DateTime<Utc>,
    },
    AuditorRevoked {
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
    /// An agency of this system gets its identifier on the national
    /// interchange (mã định danh, Decision 20/2020/QĐ-TTg).
    AgencyIdentified {
        agency: String,
        organ_id: String,
        at: DateTime<Utc>,
    },
    /// An agency of another system (another province, a ministry) that
    /// documents are exchanged with as edXML packages through `peer`, an
    /// interchange peer of the configuration. It can be a recipient; it has
    /// no units and no officials here.
    ExternalAgencyRegistered {
        /// Code used here, in recipients and deadlines (`HT-UBND`).
        code: String,
        name: String,
        organ_id: String,
        peer: String,
        at: DateTime<Utc>,
    },
    /// An integration client's webhook: events of these kinds (of
    /// [`WEBHOOK_EVENTS`]) about these agencies (every agency when empty)
    /// are delivered to `url`, signed per Standard Webhooks with a secret
    /// the service derives for this id (never recorded).
    WebhookSubscribed {
        id: String,
        client: String,
        url: String,
        events: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        agencies: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The webhook's signing secret is replaced by a new one; for
    /// [`WEBHOOK_ROTATION_OVERLAP_HOURS`] messages carry both signatures.
    WebhookSecretRotated {
        id: String,
        at: DateTime<Utc>,
    },
    WebhookUnsubscribed {
        id: String,
        at: DateTime<Utc>,
    },
}

/// Declares [`WebhookKind`]: each variant with its wire string, once.
macro_rules! webhook_kinds {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// A kind of message a webhook may subscribe to; its wire string
        /// (`as_str`, and its serde form) is what subscriptions name and
        /// messages carry as `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum WebhookKind {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)*
        }

        impl WebhookKind {
            /// Every kind, in the order the API lists them.
            pub const ALL: &'static [WebhookKind] = &[$(WebhookKind::$variant),*];

            /// The wire string (`document.issued`, …).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(WebhookKind::$variant => $wire,)*
                }
            }
        }
    };
}

webhook_kinds! {
    /// A document was issued.
    Issued => "document.issued",
    /// An issued document was recalled.
    Recalled => "document.recalled",
    /// An issued document was replaced by another.
    Replaced => "document.replaced",
    /// A recipient received it (took it into its incoming register).
    Received => "document.received",
    /// A recipient replied.
    Replied => "document.replied",
    /// A reply deadline came within the due-soon window.
    DueSoon => "deadline.due_soon",
    /// A reply deadline passed without a reply.
    Overdue => "deadline.overdue",
}

impl WebhookKind {
    /// The kind whose wire string is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a webhook may subscribe to: issued documents and what happens to
/// them (recall, replacement, reception and replies at recipients), and
/// reply deadlines coming due or passing. The wire strings of
/// [`WebhookKind::ALL`].
pub const WEBHOOK_EVENTS: &[&str] = &{
    let mut out = [""; WebhookKind::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = WebhookKind::ALL[i].as_str();
        i += 1;
    }
    out
};

/// How long a rotated-out webhook secret still signs, beside the new one.
pub const WEBHOOK_ROTATION_OVERLAP_HOURS: i64 = 24;

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
            | OrgEvent::AuditorGranted { at, .. }
            | OrgEvent::AuditorRevoked { at, .. }
            | OrgEvent::ClientRegistered { at, .. }
            | OrgEvent::ClientRevoked { at, .. }
            | OrgEvent::AgencyIdentified { at, .. }
            | OrgEvent::ExternalAgencyRegistered { at, .. }
            | OrgEvent::WebhookSubscribed { at, .. }
            | OrgEvent::WebhookSecretRotated { at, .. }
            | OrgEvent::WebhookUnsubscribed { at, .. } => Some(*at),
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
            OrgEvent::AuditorGranted { .. } => "org.auditor_granted.v1",
            OrgEvent::AuditorRevoked { .. } => "org.auditor_revoked.v1",
            OrgEvent::ClientRegistered { .. } => "org.client_registered.v1",
            OrgEvent::ClientRevoked { .. } => "org.client_revoked.v1",
            OrgEvent::AgencyIdentified { .. } => "org.agency_identified.v1",
            OrgEvent::ExternalAgencyRegistered { .. } => "org.external_agency_registered.v1",
            OrgEvent::WebhookSubscribed { .. } => "org.webhook_subscribed.v1",
            OrgEvent::WebhookSecretRotated { .. } => "org.webhook_secret_rotated.v1",
            OrgEvent::WebhookUnsubscribed { .. } => "org.webhook_unsubscribed.v1",
        }
    }
}

#[cfg(test)]
mod webhook_kind_tests {
    use super::*;

    #[test]
    fn webhook_kinds_keep_their_wire_strings() {
        // The contract: subscriptions stored in the log name these.
        assert_eq!(
            WEBHOOK_EVENTS,
            [
                "document.issued",
                "document.recalled",
                "document.replaced",
                "document.received",
                "document.replied",
                "deadline.due_soon",
                "deadline.overdue",
            ]
        );
        for k in WebhookKind::ALL {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str());
            assert_eq!(serde_json::from_value::<WebhookKind>(json).unwrap(), *k);
            assert_eq!(WebhookKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(WebhookKind::parse("document.drafted"), None);
    }
}
