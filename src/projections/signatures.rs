//! Signature evidence: per document, the verification report and authority
//! verdict recorded when the signature was accepted, and the seal applied at
//! issue. `GET /v1/documents/{id}/verification` serves it without
//! re-verifying.
//!
//! Rows: `s/{doc}` → [`Evidence`].
//!
//! Must never: verify anything itself (it shows what was decided, when).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Applied, Projection, ProjectionError, Tx};
use crate::crypto::verify::Report;
use crate::domain::authority::AuthorityVerdict;
use crate::domain::document::DocumentEvent;

/// The latest signature evidence of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub document: Uuid,
    pub signer: String,
    pub accepted_at: DateTime<Utc>,
    pub certificate: String,
    pub report: Report,
    pub authority: AuthorityVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub issued_at: DateTime<Utc>,
    pub number: u64,
    pub symbol: String,
    pub jws: String,
}

pub struct Signatures;

/// Row key of a document's evidence.
pub fn key(doc: Uuid) -> String {
    format!("s/{doc}")
}

impl Projection for Signatures {
    fn name(&self) -> &'static str {
        "signatures"
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        match event {
            DocumentEvent::Signed(e) => tx.put_json(
                key(doc),
                &Evidence {
                    document: doc,
                    signer: e.by.clone(),
                    accepted_at: e.at,
                    certificate: e.certificate.clone(),
                    report: e.report.clone(),
                    authority: e.authority.clone(),
                    seal: None,
                },
            ),
            DocumentEvent::Issued(e) => {
                if let Some(mut ev) = tx.get_json::<Evidence>(key(doc).as_bytes())? {
                    ev.seal = Some(Seal {
                        issued_at: e.at,
                        number: e.number,
                        symbol: e.symbol.clone(),
                        jws: e.seal.clone(),
                    });
                    tx.put_json(key(doc), &ev);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
