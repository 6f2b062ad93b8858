//! Accepting a personal signature: the one function that judges a
//! submitted JWS for a document, and the typed value it returns. A
//! [`AcceptedSignature`] can only come from [`accept`] (its fields are
//! private), so `decide` never has to trust a report someone built by hand:
//! the JWS is parsed once, the signer's authority judged once, the expected
//! payload built once, and every check (crypto, chain, revocation,
//! freshness, certificate binding, personal certificate, authority) run
//! once, in [`judge_signature`], which `vanthu verify` also runs offline.
//!
//! Must never: read the clock or do I/O (the instant and the trust come
//! in), or hand out an `AcceptedSignature` whose report did not pass.

use chrono::{DateTime, Utc};

use super::*;
use crate::crypto::jws::{parse_compact, Jws};
use crate::crypto::pki::Trust;
use crate::crypto::verify::{verify_parsed, Expectation};
use crate::domain::authority::{judge, record_constraints, SigningAct};

/// A signature accepted for one version of one document by one official.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedSignature {
    jws: String,
    payload: SigningPayload,
    /// SHA-256 fingerprint of the signer's certificate.
    certificate: String,
    report: Report,
    authority: AuthorityVerdict,
}

impl AcceptedSignature {
    /// SHA-256 fingerprint of the signer's certificate.
    pub fn certificate(&self) -> &str {
        &self.certificate
    }

    /// Whether it was accepted for `doc` as it stands, signed by `signer`:
    /// a command retried on a newer version must be signed again.
    pub fn is_for(&self, doc: &Document, signer: &str) -> Result<(), DomainError> {
        if self.payload.doc != doc.id.to_string() {
            return Err(invalid("the signed payload is for another document"));
        }
        if self.payload.version != doc.version {
            return Err(invalid(format!(
                "the signed payload is for version {}, the document is at version {}; fetch the signing payload again",
                self.payload.version, doc.version
            )));
        }
        if self.payload.signer != signer {
            return Err(invalid("the signed payload names another signer"));
        }
        Ok(())
    }

    /// The `signed` event this signature becomes.
    pub(super) fn into_event(self, by: String, at: DateTime<Utc>) -> Signed {
        Signed {
            by,
            at,
            jws: self.jws,
            payload: self.payload,
            certificate: self.certificate,
            report: self.report,
            authority: self.authority,
        }
    }

    /// A signature as if accepted, for the domain's own unit tests (which
    /// test `decide`, not the cryptography).
    #[cfg(test)]
    pub(crate) fn for_tests(payload: SigningPayload, authority: AuthorityVerdict) -> Self {
        Self {
            jws: "x.y.z".into(),
            payload,
            certificate: "fp".into(),
            report: Report {
                indication: crate::crypto::verify::Indication::TotalPassed,
                sub_indication: None,
                signing_instant: DateTime::<Utc>::UNIX_EPOCH,
                certificate: None,
                checks: vec![],
            },
            authority,
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// The document does not await this official's signature now.
    NotNow(DomainError),
    /// The signature failed a check; the report names it (ETSI EN 319 102-1),
    /// the authority verdict (once the payload could be read) says what the
    /// form was worth.
    Failed {
        report: Box<Report>,
        authority: Option<Box<AuthorityVerdict>>,
    },
}

/// Judges a parsed personal signature against the payload it had to sign,
/// at `at`: the cryptography, chain and revocation (`crypto::verify`), then
/// freshness, binding, personal certificate and the `authority` verdict
/// already judged for `act`. The server at acceptance and `vanthu verify`
/// offline both judge through this.
pub fn judge_signature(
    jws: &Jws,
    expected: &SigningPayload,
    org: &Org,
    act: &SigningAct<'_>,
    authority: &AuthorityVerdict,
    trust: &Trust,
) -> Report {
    let mut report = verify_parsed(
        jws,
        &Expectation {
            payload: &expected.canonical(),
            at: act.at,
            trust,
        },
    );
    record_constraints(&mut report, org, act, expected.at, authority);
    report
}

/// Accepts `jws_text` as `signer`'s signature of `doc` at `at`, or says why
/// not. The payload must be this document's signing payload as the signer
/// claims it (their form, position, on-behalf-of); what that form is worth
/// is the authority check's to say, so a wrong form is a signature
/// constraint failure, not a mismatch of bytes.
pub fn accept(
    org: &Org,
    doc: &Document,
    signer: &str,
    jws_text: &str,
    trust: &Trust,
    at: DateTime<Utc>,
) -> Result<AcceptedSignature, Rejection> {
    may_sign(doc, signer).map_err(Rejection::NotNow)?;
    let malformed = |detail: String| Rejection::Failed {
        report: Box::new(Report::format_failure(
            at,
            format!("the JWS is malformed: {detail}"),
        )),
        authority: None,
    };
    let jws = parse_compact(jws_text).map_err(|e| malformed(e.to_string()))?;
    let payload: SigningPayload = serde_json::from_slice(&jws.payload)
        .map_err(|e| malformed(format!("the payload is not a signing payload: {e}")))?;
    let act = SigningAct {
        official: signer,
        agency: &doc.agency,
        doc_type: &doc.draft.doc_type,
        form: payload.authority,
        at,
    };
    let authority = judge(org, &act);
    let mut claimed = authority.clone();
    if !claimed.passed {
        claimed.on_behalf_of = payload.on_behalf_of.clone();
        claimed.position = Some(payload.position);
    }
    let expected = doc.signing_payload(signer, &claimed, payload.at);
    let report = judge_signature(&jws, &expected, org, &act, &authority, trust);
    if !report.passed() {
        return Err(Rejection::Failed {
            report: Box::new(report),
            authority: Some(Box::new(authority)),
        });
    }
    let certificate = report
        .certificate
        .as_ref()
        .map(|c| c.fingerprint.clone())
        .unwrap_or_default();
    Ok(AcceptedSignature {
        jws: jws_text.trim().to_owned(),
        payload: expected,
        certificate,
        report,
        authority,
    })
}
