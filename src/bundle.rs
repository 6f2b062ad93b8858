//! An issued document's evidence bundle and its offline verification
//! (`vanthu verify BUNDLE --trust root.pem`): the personal signature, the
//! agency seal, the CRLs and the organisation history needed to judge
//! authority, so a receiver can check everything without trusting the
//! server.
//!
//! Trust: the personal and seal certificates chain to the verifier's own
//! anchors; the seal certificate must be an agency seal (EKU) named after the
//! agency; the seal attests the instant the personal signature was accepted
//! and the organisation history that judged its authority: since seal v2
//! only its authority-relevant events (`signing::bears_on_authority`:
//! agencies, units, appointments, certificates, delegations), never the
//! integration configuration; a v1 seal attested, and its bundle carries,
//! every organisation event up to the issue, and verifies as it always
//! did. The log evidence ties both signatures, with their instants, to
//! records of the province's transparency log: each record comes with an
//! inclusion proof against one checkpoint, which the log key signed
//! (`--log-key`). What that proves is that everyone who checks the log
//! sees the same records (a monitor would notice a log rewritten later); it
//! does not prove the instants were truthful when first logged, which a
//! trusted timestamp would.
//!
//! Must never: fetch anything (the bundle and the trust anchors are all it
//! uses) or read the clock (each signature is judged at the instant the log
//! accepted it, recorded in the bundle).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::jws::parse_compact;
use crate::crypto::merkle;
use crate::crypto::note;
use crate::crypto::pki::{self, Trust};
use crate::crypto::verify::{verify, Expectation, Report};
use crate::domain::authority::{judge, AuthorityVerdict, SigningAct};
use crate::domain::document::judge_signature;
use crate::domain::org::{Org, OrgEvent};
use crate::domain::signing::payload_matches;
use crate::domain::signing::{jws_sha256, org_sha256, sealed_org, SealPayload, SigningPayload};

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
    /// Organisation history up to the issue, as the seal attests it
    /// (`signing::sealed_org` of the seal's version): its authority-relevant
    /// events under seal v2, all of them under seal v1.
    pub org: Vec<OrgEvent>,
    /// The document's records in the log, with inclusion proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogEvidence>,
}

/// The document's records as the transparency log holds them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEvidence {
    /// The signed checkpoint (C2SP tlog-checkpoint as a signed note) every
    /// proof below is against.
    pub checkpoint: String,
    /// The document's records the bundle's reader may see, in log order:
    /// every one for the issuing side, the signing and issuing records for
    /// a recipient.
    pub records: Vec<LoggedRecord>,
}

/// One record and its proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedRecord {
    /// Its position (leaf index + 1).
    pub position: u64,
    /// The record exactly as logged (canonical JSON); its leaf hash is
    /// SHA-256(0x00 ‖ record).
    pub record: String,
    /// A C2SP tlog-proof: the leaf index, the inclusion proof, and the
    /// checkpoint verbatim.
    pub proof: String,
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
    /// The log evidence.
    pub log: LogReport,
}

/// What the log evidence showed.
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    /// Whether the checkpoint's signature was checked (a log key was given).
    pub signature_checked: bool,
    /// The checkpoint's origin and tree size, once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// Records whose inclusion proof verified.
    pub records_included: usize,
    /// Each failed check, saying which.
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

/// Verifies a bundle against the given trust anchors (DER) and, with
/// `log_key` (a note verifier key), its log evidence's checkpoint signature.
pub fn verify_bundle(
    bundle: &Bundle,
    anchors: Vec<Vec<u8>>,
    log_key: Option<&str>,
) -> Result<BundleReport, BundleError> {
    if bundle.format != FORMAT {
        return Err(BundleError::Format(bundle.format.clone()));
    }
    let mut crls = Vec::new();
    for pem in &bundle.crls {
        crls.extend(pki::pem_blocks(pem, "X509 CRL").map_err(BundleError::Crl)?);
    }
    let trust = Trust::new(anchors, pki::parse_crls(crls));
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
    // Seal v1 attests every organisation event, v2 the authority-relevant
    // ones; either way the bundle carries exactly what the hash covers.
    let version = s.payload.seal_version;
    if sealed_org(version, &[]).is_none() {
        problems.push(format!(
            "the seal is of version {version}, which this verifier does not know"
        ));
    } else if s.payload.org_sha256 != org_sha256(&bundle.org) {
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
    let log = verify_log(bundle, log_key);
    Ok(BundleReport {
        passed: personal.passed()
            && authority.passed
            && seal.passed()
            && problems.is_empty()
            && log.problems.is_empty(),
        personal,
        authority,
        seal,
        problems,
        log,
    })
}

/// Checks the log evidence: the checkpoint (signed by `log_key` when given),
/// every record's inclusion proof against it, that the records are one
/// document's, and that the two signatures are the ones its signing and
/// issuing records hold, at the instants the bundle states.
pub fn verify_log(bundle: &Bundle, log_key: Option<&str>) -> LogReport {
    let mut report = LogReport {
        signature_checked: false,
        origin: None,
        tree_size: None,
        records_included: 0,
        problems: Vec::new(),
    };
    let Some(evidence) = &bundle.log else {
        report
            .problems
            .push("the bundle carries no log evidence (records with inclusion proofs)".into());
        return report;
    };
    let opened = match log_key {
        Some(vkey) => {
            report.signature_checked = true;
            note::open(evidence.checkpoint.as_bytes(), vkey)
        }
        None => signed_note::Note::from_bytes(evidence.checkpoint.as_bytes())
            .map_err(|e| note::NoteError::Malformed(e.to_string()))
            .and_then(|n| note::Checkpoint::parse_body(n.text())),
    };
    let checkpoint = match opened {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(format!("the checkpoint: {e}"));
            return report;
        }
    };
    report.origin = Some(checkpoint.origin.clone());
    report.tree_size = Some(checkpoint.size);
    let mut stream: Option<String> = None;
    let (mut personal_logged, mut seal_logged) = (false, false);
    for r in &evidence.records {
        let at = format!("the record at position {}", r.position);
        let proof = match note::parse_tlog_proof(&r.proof) {
            Ok(p) => p,
            Err(e) => {
                report.problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        if proof.checkpoint != evidence.checkpoint.as_bytes() {
            report.problems.push(format!(
                "{at}: its proof is against another checkpoint than the bundle's"
            ));
            continue;
        }
        if r.position == 0 || proof.index != r.position - 1 {
            report.problems.push(format!(
                "{at}: its proof is for leaf index {}, not {}",
                proof.index,
                r.position.saturating_sub(1)
            ));
            continue;
        }
        let leaf = merkle::leaf_hash(r.record.as_bytes());
        if let Err(e) = merkle::verify_inclusion(
            proof.index,
            checkpoint.size,
            &leaf,
            &proof.proof,
            &checkpoint.root,
        ) {
            report.problems.push(format!(
                "{at}: not included in the checkpoint's tree of {} records: {e}",
                checkpoint.size
            ));
            continue;
        }
        report.records_included += 1;
        let record: crate::store::Record = match serde_json::from_str(&r.record) {
            Ok(rec) => rec,
            Err(e) => {
                report.problems.push(format!("{at}: not a log record: {e}"));
                continue;
            }
        };
        if record.position != r.position {
            report.problems.push(format!(
                "{at}: the record says position {}",
                record.position
            ));
        }
        match &stream {
            None => stream = Some(record.stream.clone()),
            Some(s) if *s != record.stream => report.problems.push(format!(
                "{at}: it belongs to stream {}, not to the document's {s}",
                record.stream
            )),
            Some(_) => {}
        }
        // The instant the bundle states is the event's own `at` (the
        // service clock's), which the record carries in its payload.
        let field = |name: &str| record.payload.get(name).and_then(|v| v.as_str());
        let at_is = |t: DateTime<Utc>| {
            record
                .payload
                .get("at")
                .cloned()
                .map(serde_json::from_value::<DateTime<Utc>>)
                .is_some_and(|a| a.ok() == Some(t))
        };
        match record.event_type.as_str() {
            "document.signed.v1" if field("jws") == Some(bundle.personal.jws.as_str()) => {
                personal_logged = at_is(bundle.personal.recorded_at);
            }
            "document.issued.v1" if field("seal") == Some(bundle.seal.jws.as_str()) => {
                seal_logged = at_is(bundle.seal.recorded_at);
            }
            _ => {}
        }
    }
    if !personal_logged {
        report.problems.push(
            "no included record holds the personal signature at the instant the bundle states"
                .into(),
        );
    }
    if !seal_logged {
        report
            .problems
            .push("no included record holds the seal at the instant the bundle states".into());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle sealed with seal v1, before v2 existed: made by the service
    /// at 1679a1b (`tests/data/bundle-v1/`, with the root certificate and
    /// log key of that run), for a document issued while a webhook was
    /// subscribed, so it carries the whole organisation stream. It still
    /// verifies offline, as `vanthu verify` and the interchange's inbound
    /// judgement do it.
    #[test]
    fn a_v1_bundle_still_verifies_offline() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bundle-v1");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let bundle: Bundle = serde_json::from_str(&read("bundle.json")).unwrap();
        assert_eq!(bundle.seal.payload.seal_version, 1);
        assert!(bundle
            .org
            .iter()
            .any(|e| !crate::domain::signing::bears_on_authority(e)));
        let anchors = pki::pem_blocks(&read("ca/root.pem"), "CERTIFICATE").unwrap();
        let key = read("log/log.vkey");
        let report = verify_bundle(&bundle, anchors.clone(), Some(key.trim())).unwrap();
        assert!(report.passed, "{report:#?}");
        assert_eq!(report.log.records_included, 2, "{report:#?}");
        // Its history is attested: a v1 bundle stripped to the authority
        // events no longer matches its seal.
        let mut stripped = bundle;
        stripped.org = sealed_org(2, &stripped.org).unwrap();
        let report = verify_bundle(&stripped, anchors, Some(key.trim())).unwrap();
        assert!(!report.passed);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("not the one the seal attests")),
            "{:?}",
            report.problems
        );
    }
}
