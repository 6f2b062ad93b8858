//! Verification of one personal or seal signature: every check with its
//! outcome, and the verdict in ETSI EN 319 102-1 words (TOTAL_PASSED,
//! TOTAL_FAILED + sub-indication, INDETERMINATE + sub-indication).
//!
//! Checks, in order; the first that fails decides the indication:
//! format → signature (strict Ed25519) → payload (byte-equal to the expected
//! canonical payload) → chain (trust anchor, document-signing EKU, validity
//! at the instant) → revocation (CRL; revoked after the instant passes).
//! Who may sign (certificate binding, authority) is judged by the domain.
//!
//! Must never: read the clock; the signing instant is an input.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::jws::{self, Jws};
use super::pki::{self, CertInfo, ChainVerdict, Revocation, Trust};

/// ETSI EN 319 102-1 main indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    TotalPassed,
    TotalFailed,
    Indeterminate,
}

/// ETSI EN 319 102-1 sub-indications used by vanthu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// The JWS or its payload is not in our profile (malformed, not canonical).
    FormatFailure,
    /// The signature value does not verify with the certificate's key.
    SigCryptoFailure,
    /// The signed payload is not the payload the document expects (another
    /// version, another document, altered).
    HashFailure,
    /// Revoked at or before the signing instant.
    Revoked,
    /// The signing instant is after the certificate's notAfter.
    Expired,
    /// The signing instant is before the certificate's notBefore.
    NotYetValid,
    /// x5c holds no usable signer certificate.
    NoSigningCertificateFound,
    /// No path from the signer's certificate to a trust anchor.
    NoCertificateChainFound,
    /// The path exists but a constraint fails (here: EKU is not document signing).
    ChainConstraintsFailure,
    /// The path is broken in another way (a CA expired, bad extensions).
    CertificateChainGeneralFailure,
    /// No current revocation information; may pass later.
    TryLater,
    /// A signature-level constraint of our policy fails (certificate not
    /// bound to the signer, authority lacking).
    SigConstraintsFailure,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// A verification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub indication: Indication,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_indication: Option<SubIndication>,
    /// The instant the signature was judged at.
    pub signing_instant: DateTime<Utc>,
    /// The signer's certificate, when x5c held one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    pub checks: Vec<Check>,
}

impl Report {
    /// The report of something that is not a signature in our profile at
    /// all (TOTAL_FAILED / FORMAT_FAILURE), judged at `at`.
    pub fn format_failure(at: DateTime<Utc>, detail: String) -> Self {
        let mut report = Report {
            indication: Indication::TotalPassed,
            sub_indication: None,
            signing_instant: at,
            certificate: None,
            checks: Vec::new(),
        };
        report.record(
            "format",
            Err((
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                detail,
            )),
        );
        report
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }

    /// Adds a check; a failing one sets the verdict unless an earlier check
    /// already did.
    pub fn record(
        &mut self,
        name: &'static str,
        result: Result<String, (Indication, SubIndication, String)>,
    ) {
        match result {
            Ok(detail) => self.checks.push(Check {
                name: name.to_owned(),
                outcome: Outcome::Passed,
                detail,
            }),
            Err((indication, sub, detail)) => {
                if self.passed() {
                    self.indication = indication;
                    self.sub_indication = Some(sub);
                }
                self.checks.push(Check {
                    name: name.to_owned(),
                    outcome: Outcome::Failed,
                    detail,
                });
            }
        }
    }
}

/// What a signature is checked against.
pub struct Expectation<'a> {
    /// The canonical payload the signer had to sign, byte for byte (RFC
    /// 8785 canonical JSON: a payload equal to it is taken as canonical).
    pub payload: &'a [u8],
    /// The instant the signature is judged at (when the server accepted it).
    pub at: DateTime<Utc>,
    pub trust: &'a Trust,
}

use Indication::{Indeterminate, TotalFailed};

/// Verifies a compact JWS against what it must be. Stops at the first
/// failing check; the report lists every check that ran.
pub fn verify(jws_text: &str, expect: &Expectation<'_>) -> Report {
    match jws::parse_compact(jws_text) {
        Ok(jws) => verify_parsed(&jws, expect),
        Err(e) => Report::format_failure(expect.at, e.to_string()),
    }
}

/// [`verify`] for a JWS already parsed (so a caller that needed its payload
/// first parses it once).
pub fn verify_parsed(jws: &Jws, expect: &Expectation<'_>) -> Report {
    let mut report = Report {
        indication: Indication::TotalPassed,
        sub_indication: None,
        signing_instant: expect.at,
        certificate: None,
        checks: Vec::new(),
    };
    // Bytes equal to the expected payload (always canonical) are canonical
    // without parsing them again; any other payload is parsed and checked.
    let canonical = if jws.payload == expect.payload {
        Ok(true)
    } else {
        jws::is_canonical_json(&jws.payload)
    };
    match canonical {
        Ok(true) => report.record(
            "format",
            Ok("compact JWS, EdDSA, canonical JSON payload".into()),
        ),
        Ok(false) => report.record(
            "format",
            Err((
                TotalFailed,
                SubIndication::FormatFailure,
                "the payload is not RFC 8785 canonical JSON".into(),
            )),
        ),
        Err(e) => report.record(
            "format",
            Err((TotalFailed, SubIndication::FormatFailure, e.to_string())),
        ),
    }
    if !report.passed() {
        return report;
    }
    let cert = match pki::parse_certificate(&jws.chain[0]) {
        Ok(c) => c,
        Err(e) => {
            report.record(
                "certificate",
                Err((
                    Indeterminate,
                    SubIndication::NoSigningCertificateFound,
                    format!("x5c[0]: {e}"),
                )),
            );
            return report;
        }
    };
    report.certificate = Some(cert.clone());
    run_checks(&mut report, jws, &cert, expect);
    report
}

fn run_checks(report: &mut Report, jws: &Jws, cert: &CertInfo, expect: &Expectation<'_>) {
    if jws::verify_ed25519(&cert.public_key, &jws.signing_input, &jws.signature) {
        report.record(
            "signature",
            Ok("Ed25519 (strict) verifies with the certificate's key".into()),
        );
    } else {
        report.record(
            "signature",
            Err((
                TotalFailed,
                SubIndication::SigCryptoFailure,
                "the signature does not verify with the certificate's key".into(),
            )),
        );
        return;
    }
    if jws.payload == expect.payload {
        report.record(
            "payload",
            Ok("the signed payload is the document's current signing payload".into()),
        );
    } else {
        report.record(
            "payload",
            Err((
                TotalFailed,
                SubIndication::HashFailure,
                "the signed payload differs from the document's current signing payload (another version or document)".into(),
            )),
        );
        return;
    }
    let mut issuer = None;
    let chain = match expect.trust.verify_chain(&jws.chain, expect.at) {
        ChainVerdict::Valid { issuer: i } => {
            issuer = Some(i);
            Ok(format!(
                "chains to a trust anchor at {}, valid {} .. {}, document-signing EKU",
                expect.at, cert.not_before, cert.not_after
            ))
        }
        ChainVerdict::Untrusted(d) => {
            Err((Indeterminate, SubIndication::NoCertificateChainFound, d))
        }
        ChainVerdict::Expired => Err((
            TotalFailed,
            SubIndication::Expired,
            format!(
                "signed at {} but the certificate expired at {}",
                expect.at, cert.not_after
            ),
        )),
        ChainVerdict::NotYetValid => Err((
            TotalFailed,
            SubIndication::NotYetValid,
            format!(
                "signed at {} but the certificate is valid only from {}",
                expect.at, cert.not_before
            ),
        )),
        ChainVerdict::WrongUsage(d) => {
            Err((Indeterminate, SubIndication::ChainConstraintsFailure, d))
        }
        ChainVerdict::Invalid(d) => Err((
            Indeterminate,
            SubIndication::CertificateChainGeneralFailure,
            d,
        )),
    };
    let chain_ok = chain.is_ok();
    report.record("chain", chain);
    if !chain_ok {
        return;
    }
    let status = match issuer {
        Some(issuer) => pki::revocation(&jws.chain[0], &issuer, &expect.trust.crls, expect.at),
        None => Revocation::Unknown("the issuer's certificate is not available".into()),
    };
    report.record(
        "revocation",
        match status {
            Revocation::Good { crl_this_update } => {
                Ok(format!("not listed in the CRL of {crl_this_update}"))
            }
            Revocation::RevokedAfter { revoked_at } => Ok(format!(
                "revoked at {revoked_at}, after the signing instant {}: the signature stands",
                expect.at
            )),
            Revocation::RevokedBefore { revoked_at } => Err((
                TotalFailed,
                SubIndication::Revoked,
                format!(
                    "revoked at {revoked_at}, before the signing instant {}",
                    expect.at
                ),
            )),
            Revocation::Unknown(d) => Err((Indeterminate, SubIndication::TryLater, d)),
        },
    );
}
