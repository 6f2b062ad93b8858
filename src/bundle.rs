//! An issued document's evidence bundle and its offline verification
//! (`vanthu verify BUNDLE --trust root.pem`): the personal signature, the
//! agency seal, the CRLs and the organisation history needed to judge
//! authority, so a receiver can check everything without trusting the
//! server.
//!
//! Trust: the personal and seal certificates chain to the verifier's own
//! anchors; the seal certificate must be an agency seal (EKU) named after the
//! agency; the seal attests the instant the personal signature was accepted
//! and the organisation history that judged its authority. What the bundle
//! cannot prove is that instant itself: it rests on the agency's word until
//! a trusted timestamp or log inclusion proof is added.
//!
//! Must never: fetch anything (the bundle and the trust anchors are all it
//! uses) or read the clock (each signature is judged at the instant the log
//! accepted it, recorded in the bundle).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::jws::parse_compact;
use crate::crypto::pki::{self, Trust};
use crate::crypto::verify::{verify, Expectation, Report};
use crate::domain::authority::{judge, AuthorityVerdict, SigningAct};
use crate::domain::document::judge_signature;
use crate::domain::org::{Org, OrgEvent};
use crate::domain::signing::payload_matches;
use crate::domain::signing::{jws_sha256, org_sha256, SealPayload, SigningPayload};

/// Format tag of bundles this code reads.
pub const FORMAT: &str = "vanthu.bundle.v1";

/// The evidence of one issued document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    /// The personal signature and the payload it must cover.
    pub personal: Signed<SigningPayload>,
    /// The agency seal and the payload it must cover.
    pub seal: Signed<SealPayload>,
    /// CRLs (PEM) current at the signing instants.
    pub crls: Vec<String>,
    /// Organisation history up to the signing instants.
    pub org: Vec<OrgEvent>,
}

/// A signature, its payload, and when the log accepted it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<P> {
    pub jws: String,
    pub payload: P,
    pub recorded_at: DateTime<Utc>,
}

/// The result of verifying a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    pub passed: bool,
    pub personal: Report,
    pub authority: AuthorityVerdict,
    pub seal: Report,
    /// Problems outside the two signatures (links between them).
    pub problems: Vec<String>,
}

/// Why a bundle could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("unsupported bundle format {0:?}, expected {FORMAT}")]
    Format(String),
    #[error("a CRL in the bundle: {0}")]
    Crl(pki::PkiError),
}

/// Verifies a bundle against the given trust anchors (DER).
pub fn verify_bundle(bundle: &Bundle, anchors: Vec<Vec<u8>>) -> Result<BundleReport, BundleError> {
    if bundle.format != FORMAT {
        return Err(BundleError::Format(bundle.format.clone()));
    }
    let mut crls = Vec::new();
    for pem in &bundle.crls {
        crls.extend(pki::pem_blocks(pem, "X509 CRL").map_err(BundleError::Crl)?);
    }
    let trust = Trust {
        anchors,
        crls: pki::parse_crls(crls),
    };
    let mut problems = Vec::new();
    // The organisation history comes with the bundle, so it counts only
    // because the seal attests it (org_sha256 below); it must also obey the
    // organisation's own rules.
    let mut org = Org::default();
    for (i, e) in bundle.org.iter().enumerate() {
        if let Err(err) = org.validate(e) {
            problems.push(format!("organisation event {i} breaks a rule: {err}"));
        }
        org.apply(e);
    }
    // The personal signature, judged as the server judged it at acceptance
    // (`document::judge_signature`), against the payload the seal attests.
    let p = &bundle.personal;
    let act = SigningAct {
        official: &p.payload.signer,
        agency: &p.payload.agency,
        doc_type: &p.payload.doc_type,
        form: p.payload.authority,
        at: p.recorded_at,
    };
    let authority = judge(&org, &act);
    let personal = match parse_compact(&p.jws) {
        Ok(jws) => judge_signature(&jws, &p.payload, &org, &act, &authority, &trust),
        Err(e) => Report::format_failure(p.recorded_at, format!("the JWS is malformed: {e}")),
    };
    if let Err(why) = payload_matches(&p.payload, &authority) {
        problems.push(why);
    }

    let s = &bundle.seal;
    let seal_expected = s.payload.canonical();
    let seal = verify(
        &s.jws,
        &Expectation {
            payload: &seal_expected,
            at: s.recorded_at,
            trust: &trust,
        },
    );
    if s.payload.signed != p.payload {
        problems
            .push("the seal covers a different signing payload than the personal signature".into());
    }
    if s.payload.signature_sha256 != jws_sha256(&p.jws) {
        problems.push("the seal does not refer to this personal signature".into());
    }
    if s.payload.signed_at != p.recorded_at {
        problems.push(format!(
            "the bundle says the personal signature was accepted at {}, the seal attests {}",
            p.recorded_at, s.payload.signed_at
        ));
    }
    if s.payload.org_sha256 != org_sha256(&bundle.org) {
        problems
            .push("the organisation history in the bundle is not the one the seal attests".into());
    }
    if s.recorded_at < p.recorded_at {
        problems.push("the seal was applied before the personal signature".into());
    }
    if let Some(cert) = &seal.certificate {
        let agency_name = org.agencies.get(&p.payload.agency).map(|a| a.name.as_str());
        if !cert.agency_seal {
            problems.push(format!(
                "the seal certificate ({}) is not an agency seal certificate (EKU {})",
                cert.subject,
                pki::AGENCY_SEAL_EKU
            ));
        } else if agency_name.is_none() || cert.common_name.as_deref() != agency_name {
            problems.push(format!(
                "the seal certificate ({}) is not {}'s",
                cert.subject, p.payload.agency
            ));
        }
    }
    Ok(BundleReport {
        passed: personal.passed() && authority.passed && seal.passed() && problems.is_empty(),
        personal,
        authority,
        seal,
        problems,
    })
}
