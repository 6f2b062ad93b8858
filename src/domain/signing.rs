//! The signing payload: what an official's client signs, as RFC 8785
//! canonical JSON (DESIGN §5). The server hands it out with its own time in
//! `at` and accepts a signature only over exactly these bytes.
//!
//! Must never: include anything the signer cannot see (internal ids aside
//! from the document's), or depend on map ordering (canonical JSON fixes it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::org::{Authority, OrgEvent, Position};

/// A content file of the document, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentRef {
    pub name: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// The fields a personal signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningPayload {
    /// Document id.
    pub doc: String,
    /// Document stream version being signed (a newer version needs a new signature).
    pub version: u64,
    pub content: Vec<ContentRef>,
    pub title: String,
    pub doc_type: String,
    pub agency: String,
    /// Official id of the signer.
    pub signer: String,
    pub authority: Authority,
    /// For KT./TL./TUQ.: the official signed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub position: Position,
    /// When the server issued this payload (UTC, RFC 3339).
    pub at: DateTime<Utc>,
}

impl SigningPayload {
    /// The exact bytes to sign.
    pub fn canonical(&self) -> Vec<u8> {
        // Strings, integers below 2^53 and a timestamp: always serialisable.
        crate::crypto::jws::canonical_json(self).expect("signing payload serialises")
    }
}

/// The seal this code makes: v2 attests the authority-relevant
/// organisation events only ([`bears_on_authority`]).
pub const SEAL_VERSION: u32 = 2;

/// What the agency seal covers at issuance (DESIGN §5): the personal
/// signing payload plus number, symbol, issue date, and the hash of the
/// personal signature it seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealPayload {
    /// Which organisation history `org_sha256` covers ([`sealed_org`]):
    /// absent in seal v1 (every organisation event up to the issue), 2 in
    /// seal v2 (the authority-relevant ones only). Omitted when 1, so a v1
    /// seal's bytes are what they always were.
    #[serde(default = "seal_v1", skip_serializing_if = "is_seal_v1")]
    pub seal_version: u32,
    pub signed: SigningPayload,
    pub number: u64,
    /// `05/QĐ-UBND`.
    pub symbol: String,
    /// Issue date, `YYYY-MM-DD` (Asia/Ho_Chi_Minh).
    pub issued_on: chrono::NaiveDate,
    /// SHA-256 (hex) of the personal signature's compact JWS.
    pub signature_sha256: String,
    /// When the log accepted the personal signature: the instant it was
    /// judged at, attested by the agency.
    pub signed_at: DateTime<Utc>,
    /// SHA-256 (hex) of the canonical JSON of the organisation events the
    /// authority verdict rests on (`sealed_org` of the history up to the
    /// issue): the agency attests its own history.
    pub org_sha256: String,
}

fn seal_v1() -> u32 {
    1
}

fn is_seal_v1(v: &u32) -> bool {
    *v == 1
}

impl SealPayload {
    /// The exact bytes the seal signs.
    pub fn canonical(&self) -> Vec<u8> {
        crate::crypto::jws::canonical_json(self).expect("seal payload serialises")
    }
}

/// Whether an organisation event bears on who may sign what, and so is
/// what a seal v2 attests and every bundle (to each recipient and peer)
/// carries: agencies and their identifiers, units, appointments and
/// reliefs, certificate bindings and revocations, delegations. The
/// integration configuration (clients, webhook subscriptions, whose URLs
/// may hold tokens) and the admin and auditor roles do not, and never
/// leave the service in a bundle.
pub fn bears_on_authority(event: &OrgEvent) -> bool {
    match event {
        OrgEvent::AgencyCreated { .. }
        | OrgEvent::UnitCreated { .. }
        | OrgEvent::OfficialAppointed { .. }
        | OrgEvent::OfficialRelieved { .. }
        | OrgEvent::CertificateBound { .. }
        | OrgEvent::CertificateRevoked { .. }
        | OrgEvent::DelegationGranted { .. }
        | OrgEvent::DelegationRevoked { .. }
        | OrgEvent::AgencyIdentified { .. }
        | OrgEvent::ExternalAgencyRegistered { .. } => true,
        OrgEvent::AdminGranted { .. }
        | OrgEvent::AdminRevoked { .. }
        | OrgEvent::AuditorGranted { .. }
        | OrgEvent::AuditorRevoked { .. }
        | OrgEvent::ClientRegistered { .. }
        | OrgEvent::ClientRevoked { .. }
        | OrgEvent::WebhookSubscribed { .. }
        | OrgEvent::WebhookSecretRotated { .. }
        | OrgEvent::WebhookUnsubscribed { .. } => false,
    }
}

/// The organisation events a seal of `seal_version` attests, and a bundle
/// carries, of the history `events` up to the issue: all of them in v1,
/// the authority-relevant ones in v2 (in order). `None`: a version this
/// code does not know.
pub fn sealed_org(seal_version: u32, events: &[OrgEvent]) -> Option<Vec<OrgEvent>> {
    match seal_version {
        1 => Some(events.to_vec()),
        2 => Some(
            events
                .iter()
                .filter(|e| bears_on_authority(e))
                .cloned()
                .collect(),
        ),
        _ => None,
    }
}

/// SHA-256 (hex) of the canonical JSON of organisation events, as a seal
/// payload attests them.
pub fn org_sha256(events: &[OrgEvent]) -> String {
    use sha2::{Digest, Sha256};
    let bytes = crate::crypto::jws::canonical_json(&events).expect("org events serialise");
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 (hex) of a compact JWS, as a seal payload refers to it.
pub fn jws_sha256(jws: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(jws.trim().as_bytes()))
}

/// The agency seal goes on only after a personal signature passed every
/// check, authority included (Decree 30/2020 Art. 13 and Appendix I: the
/// clerk seals what the competent person signed).
pub fn check_sealable(
    personal: &crate::crypto::verify::Report,
    authority: &super::authority::AuthorityVerdict,
) -> Result<(), String> {
    if !personal.passed() {
        let sub = personal
            .sub_indication
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        return Err(format!(
            "the personal signature did not pass ({:?} {sub}); the seal cannot be applied",
            personal.indication
        ));
    }
    if !authority.passed {
        return Err(format!(
            "the signer lacked authority ({}); the seal cannot be applied",
            authority.reason
        ));
    }
    Ok(())
}

/// Whether what the signer signed (form, position, on whose behalf) is what
/// the authority verdict found, so the printed signature block cannot claim
/// more than the organisation supports.
pub fn payload_matches(
    payload: &SigningPayload,
    verdict: &super::authority::AuthorityVerdict,
) -> Result<(), String> {
    if payload.authority != verdict.form {
        return Err(format!(
            "the payload says {:?} but the verdict is for {:?}",
            payload.authority, verdict.form
        ));
    }
    if verdict.position.is_some_and(|p| p != payload.position) {
        return Err(format!(
            "the payload claims position {} but the signer held {}",
            payload.position.as_str(),
            verdict.position.map(|p| p.as_str()).unwrap_or("none")
        ));
    }
    if payload.on_behalf_of != verdict.on_behalf_of {
        return Err(format!(
            "the payload signs on behalf of {:?} but the organisation says {:?}",
            payload.on_behalf_of, verdict.on_behalf_of
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::verify::{Indication, Report, SubIndication};
    use crate::domain::authority::AuthorityVerdict;

    fn payload(seal_version: u32) -> SealPayload {
        let at = chrono::DateTime::UNIX_EPOCH;
        SealPayload {
            seal_version,
            signed: SigningPayload {
                doc: "d".into(),
                version: 3,
                content: vec![],
                title: "t".into(),
                doc_type: "BC".into(),
                agency: "SVHTT".into(),
                signer: "s".into(),
                authority: Authority::Kt,
                on_behalf_of: None,
                position: Position::DeputyHead,
                at,
            },
            number: 1,
            symbol: "BC-SVHTT".into(),
            issued_on: at.date_naive(),
            signature_sha256: "00".into(),
            signed_at: at,
            org_sha256: "11".into(),
        }
    }

    /// A v1 seal's payload reads and writes as it did before versions (no
    /// `seal_version`), so its seal still verifies; v2 says it is v2.
    #[test]
    fn a_v1_seal_payload_keeps_its_bytes_and_v2_names_itself() {
        let v1 = String::from_utf8(payload(1).canonical()).unwrap();
        assert!(!v1.contains("seal_version"), "{v1}");
        let read: SealPayload = serde_json::from_str(&v1).unwrap();
        assert_eq!(read.seal_version, 1);
        assert_eq!(read.canonical(), v1.as_bytes());
        let v2 = String::from_utf8(payload(SEAL_VERSION).canonical()).unwrap();
        assert!(v2.contains(r#""seal_version":2"#), "{v2}");
        let read: SealPayload = serde_json::from_str(&v2).unwrap();
        assert_eq!(read, payload(2));
    }

    /// Seal v2 attests the authority-relevant organisation events only:
    /// never a client, a webhook (its URL may hold a token) or a role.
    #[test]
    fn seal_v2_attests_authority_and_no_integration_configuration() {
        let t = chrono::DateTime::UNIX_EPOCH;
        let events = vec![
            OrgEvent::AgencyCreated {
                code: "UBND".into(),
                name: "UBND".into(),
                parent: None,
                collegial: true,
            },
            OrgEvent::ClientRegistered {
                id: "portal".into(),
                name: "Cổng".into(),
                scopes: vec!["feed:read".into()],
                at: t,
            },
            OrgEvent::WebhookSubscribed {
                id: "w".into(),
                client: "portal".into(),
                url: "https://h.example/x?token=secret".into(),
                events: vec!["document.issued".into()],
                agencies: vec![],
                at: t,
            },
            OrgEvent::AdminGranted {
                official: "a".into(),
                at: t,
            },
            OrgEvent::UnitCreated {
                agency: "UBND".into(),
                code: "VP".into(),
                name: "VP".into(),
            },
        ];
        assert_eq!(sealed_org(1, &events).unwrap(), events);
        let v2 = sealed_org(2, &events).unwrap();
        assert_eq!(v2, vec![events[0].clone(), events[4].clone()]);
        assert_eq!(sealed_org(3, &events), None);
    }

    #[test]
    fn seal_only_after_a_passing_personal_signature() {
        let report = |indication, sub| Report {
            indication,
            sub_indication: sub,
            signing_instant: chrono::DateTime::UNIX_EPOCH,
            certificate: None,
            checks: vec![],
        };
        let authority = |passed| AuthorityVerdict {
            passed,
            form: Authority::Kt,
            position: Some(Position::DeputyHead),
            on_behalf_of: None,
            reason: "r".into(),
        };
        assert!(check_sealable(&report(Indication::TotalPassed, None), &authority(true)).is_ok());
        assert!(check_sealable(&report(Indication::TotalPassed, None), &authority(false)).is_err());
        let failed = report(Indication::TotalFailed, Some(SubIndication::Revoked));
        let err = check_sealable(&failed, &authority(true)).unwrap_err();
        assert!(err.contains("Revoked"), "{err}");
        let indeterminate = report(Indication::Indeterminate, Some(SubIndication::TryLater));
        assert!(check_sealable(&indeterminate, &authority(true)).is_err());
    }
}
