//! May official X sign a document of agency A and type T with form F at
//! instant I? The signing forms of Decree 30/2020 Art. 13, judged against the
//! organisation as it stood at I:
//!
//! - direct: the head of a head-led agency (Art. 13.1.b);
//! - `TM.`: the head of a collegial body, for the collective (Art. 13.1.a);
//! - `KT.`: a deputy head, for the head of the same agency (Art. 13.1.a–b);
//! - `Q.`: the acting head;
//! - `TL.` / `TUQ.`: an official holding a delegation of that form in force
//!   at I, granted by the agency's head (still head at I, so a TUQ. cannot be
//!   passed on), covering the document type (Art. 13.3–4).
//!
//! Also here: whether the signing certificate was bound to the signer at I,
//! and `assess`, which adds both verdicts to a crypto verification report.
//!
//! Must never: do I/O or read the clock; look at anything but the `Org`
//! history and the inputs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::org::{Authority, DelegationForm, Org, Position};
use crate::crypto::verify::{Indication, Report, SubIndication};

/// What is being signed, by whom, when.
#[derive(Debug, Clone, Copy)]
pub struct SigningAct<'a> {
    pub official: &'a str,
    /// The agency issuing the document.
    pub agency: &'a str,
    /// Document type code (`BC`, `KH`, `CV`, …).
    pub doc_type: &'a str,
    pub form: Authority,
    pub at: DateTime<Utc>,
}

/// The authority verdict, with its reason in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityVerdict {
    pub passed: bool,
    pub form: Authority,
    /// The position the signer held that the form relies on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// For KT./TL./TUQ.: the head signed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub reason: String,
}

fn fail(form: Authority, reason: String) -> AuthorityVerdict {
    AuthorityVerdict {
        passed: false,
        form,
        position: None,
        on_behalf_of: None,
        reason,
    }
}

fn describe_positions(org: &Org, official: &str, at: DateTime<Utc>) -> String {
    let held: Vec<String> = org
        .positions_at(official, at)
        .iter()
        .map(|a| match &a.unit {
            Some(u) => format!("{} of {}/{}", a.position.as_str(), a.agency, u),
            None => format!("{} of {}", a.position.as_str(), a.agency),
        })
        .collect();
    if held.is_empty() {
        "holds no position".into()
    } else {
        format!("holds {}", held.join(", "))
    }
}

/// Judges whether the act's form fits the signer's position at the instant.
pub fn judge(org: &Org, act: &SigningAct<'_>) -> AuthorityVerdict {
    let SigningAct {
        official,
        agency,
        doc_type,
        form,
        at,
    } = *act;
    let Some(ag) = org.agencies.get(agency) else {
        return fail(form, format!("no agency {agency}"));
    };
    let head = org
        .holder(agency, Position::Head, at)
        .map(|a| a.official.clone());
    let needs = |position: Position, what: &str| -> AuthorityVerdict {
        if org.holds(official, agency, position, at) {
            AuthorityVerdict {
                passed: true,
                form,
                position: Some(position),
                on_behalf_of: if form == Authority::Kt {
                    head.clone()
                } else {
                    None
                },
                reason: format!(
                    "{official} was {} of {agency} at {at}: {what}",
                    position.as_str()
                ),
            }
        } else {
            fail(
                form,
                format!(
                    "{} requires the {} of {agency} at {at}; {official} {}",
                    if form == Authority::Direct {
                        "a direct signature".to_owned()
                    } else {
                        form.as_str().to_owned()
                    },
                    position.as_str(),
                    describe_positions(org, official, at)
                ),
            )
        }
    };
    match form {
        Authority::Direct if ag.collegial => fail(
            form,
            format!(
                "{agency} is a collegial body: its head signs TM. the collective, not directly"
            ),
        ),
        Authority::Direct => needs(Position::Head, "the head signs directly"),
        Authority::Tm if !ag.collegial => fail(
            form,
            format!(
                "TM. is for collegial bodies; {agency} is head-led, so its head signs directly"
            ),
        ),
        Authority::Tm => needs(Position::Head, "the head signs TM. the collective"),
        Authority::Kt => needs(Position::DeputyHead, "a deputy head signs KT. for the head"),
        Authority::Q => needs(Position::ActingHead, "the acting head signs Q."),
        Authority::Tl | Authority::Tuq => {
            let wanted = if form == Authority::Tl {
                DelegationForm::Tl
            } else {
                DelegationForm::Tuq
            };
            let candidates = org.delegations_to(official, agency, at);
            let in_form: Vec<_> = candidates.iter().filter(|d| d.form == wanted).collect();
            if in_form.is_empty() {
                return fail(
                    form,
                    format!(
                        "{official} held no {} delegation in {agency} in force at {at}",
                        form.as_str()
                    ),
                );
            }
            let covering: Vec<_> = in_form
                .iter()
                .filter(|d| d.doc_types.iter().any(|t| t == doc_type))
                .collect();
            if covering.is_empty() {
                return fail(
                    form,
                    format!(
                        "the {} delegation(s) of {official} do not cover document type {doc_type}",
                        form.as_str()
                    ),
                );
            }
            // A delegation counts only while its grantor is still the head: a
            // delegated power cannot be passed on.
            let Some(d) = covering
                .iter()
                .find(|d| org.holds(&d.from, agency, Position::Head, at))
            else {
                let d = covering[0];
                return fail(
                    form,
                    format!("delegation {} was granted by {}, who was not the head of {agency} at {at} (a delegation cannot be passed on)", d.id, d.from),
                );
            };
            AuthorityVerdict {
                passed: true,
                form,
                position: org.positions_at(official, at).first().map(|a| a.position),
                on_behalf_of: Some(d.from.clone()),
                reason: format!(
                    "delegation {} from {} covers {doc_type} at {at}",
                    d.id, d.from
                ),
            }
        }
    }
}

/// Adds the signature-policy checks to a crypto report: the payload (dated
/// `payload_at`) was fresh at the instant, the certificate was bound to the
/// signer then, it is a personal (not an agency seal) certificate, and the
/// signer had authority for the form. Each
/// failure is INDETERMINATE / SIG_CONSTRAINTS_FAILURE naming the rule. The
/// server at acceptance and `vanthu verify` offline both call this, so they
/// reach the same verdict on the same inputs.
pub fn assess(
    report: &mut Report,
    org: &Org,
    act: &SigningAct<'_>,
    payload_at: DateTime<Utc>,
) -> AuthorityVerdict {
    let verdict = judge(org, act);
    record_constraints(report, org, act, payload_at, &verdict);
    verdict
}

/// Records in `report` the signature-policy checks of [`assess`] with the
/// authority `verdict` already judged for `act` (judged once by callers
/// that also need it to build the expected payload).
pub fn record_constraints(
    report: &mut Report,
    org: &Org,
    act: &SigningAct<'_>,
    payload_at: DateTime<Utc>,
    verdict: &AuthorityVerdict,
) {
    report.record("freshness", payload_freshness(payload_at, act.at));
    if let Some(cert) = report.certificate.clone() {
        let binding = match org.certificate_holder(&cert.fingerprint, act.at) {
            Some(b) if b.official == act.official => Ok(format!(
                "certificate {} was bound to {} at {}",
                cert.serial, act.official, act.at
            )),
            Some(b) => Err((
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
                format!(
                    "certificate {} was bound to {}, not to the signer {}, at {}",
                    cert.serial, b.official, act.official, act.at
                ),
            )),
            None => Err((
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
                format!(
                    "certificate {} was bound to no official at {}",
                    cert.serial, act.at
                ),
            )),
        };
        report.record("binding", binding);
        // A personal signature is an official's, never the agency's seal.
        report.record(
            "personal_certificate",
            if cert.agency_seal {
                Err((
                    Indication::Indeterminate,
                    SubIndication::SigConstraintsFailure,
                    format!(
                        "certificate {} is an agency seal certificate: it cannot make a personal signature",
                        cert.serial
                    ),
                ))
            } else {
                Ok("a personal (not an agency seal) certificate".into())
            },
        );
    }
    // Authority is a constraint of the signature policy (ETSI EN 319 102-1
    // SIG_CONSTRAINTS_FAILURE when it fails), recorded with the rule it broke.
    report.record(
        "authority",
        if verdict.passed {
            Ok(verdict.reason.clone())
        } else {
            Err((
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
                verdict.reason.clone(),
            ))
        },
    );
}

/// How long a signing payload handed out stays signable (DESIGN §5).
pub const SIGNING_PAYLOAD_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Clock skew tolerated between the server that made a payload and now.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(1);

/// Whether a signing payload dated `payload_at` may still be signed at
/// `now`: not from the future (beyond the clock skew), not older than
/// [`SIGNING_PAYLOAD_TTL`]. A failure is a signature-policy constraint
/// (INDETERMINATE / SIG_CONSTRAINTS_FAILURE) in a verification report.
pub fn payload_freshness(
    payload_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<String, (Indication, SubIndication, String)> {
    let fail = |why: String| {
        Err((
            Indication::Indeterminate,
            SubIndication::SigConstraintsFailure,
            why,
        ))
    };
    if payload_at > now + CLOCK_SKEW {
        return fail(format!(
            "the signed payload is dated {payload_at}, in the future"
        ));
    }
    if now - payload_at > SIGNING_PAYLOAD_TTL {
        return fail(format!(
            "the signing payload of {payload_at} is stale (older than {} minutes); fetch it again",
            SIGNING_PAYLOAD_TTL.num_minutes()
        ));
    }
    Ok(format!("the signing payload of {payload_at} is fresh"))
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
