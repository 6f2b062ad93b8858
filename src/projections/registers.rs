//! Registers (sổ văn bản đi / đến): per agency, year and series, every
//! number given, in order, with the document's date, symbol, title, signer
//! and recipients (outgoing) or sender (incoming); recalls and replacements
//! mark the entry, the number stays (Decree 30/2020 Art. 16, 22).
//!
//! Rows: `r/{register stream}/{number:020}` → [`Entry`];
//! `d/{doc}` → the issued document's facts; `x/{doc}/{register stream}` → the
//! row key of each entry of a document.
//!
//! Must never: renumber, or drop an entry.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{padded, Applied, Projection, ProjectionError, Tx};
use crate::domain::document::DocumentEvent;
use crate::domain::numbering::vietnam;

/// One line of a register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub register: String,
    /// Số (outgoing) or số đến (incoming).
    pub number: u64,
    /// Ngày: of issue (outgoing) or of arrival (incoming), in Vietnam.
    pub date: chrono::NaiveDate,
    /// `05/QĐ-UBND` (the document's own reference, also for incoming).
    pub reference: String,
    pub doc_type: String,
    pub title: String,
    /// Issuing agency.
    pub agency: String,
    /// Signer and form, e.g. `svhtt-pgd-1 (KT.)`.
    pub signer: String,
    /// Outgoing: the recipients; incoming: the receiving agency.
    pub recipients: Vec<String>,
    pub doc: Uuid,
    /// `issued`, `recalled` or `replaced`.
    pub status: String,
}

/// What the register needs of an issued document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Facts {
    reference: String,
    doc_type: String,
    title: String,
    agency: String,
    signer: String,
    recipients: Vec<String>,
}

pub struct Registers;

/// Row key prefix of a register's entries.
pub fn prefix(register_stream: &str) -> String {
    format!("r/{register_stream}/")
}

fn mark(tx: &mut Tx<'_>, doc: Uuid, status: &str) -> Result<(), ProjectionError> {
    let prefix = format!("x/{doc}/");
    let keys: Vec<Vec<u8>> = {
        // Index rows of this document (few: one outgoing + one per recipient).
        let mut keys = Vec::new();
        for (_, v) in tx.scan_prefix(prefix.as_bytes())? {
            keys.push(v);
        }
        keys
    };
    for key in keys {
        if let Some(mut e) = tx.get_json::<Entry>(&key)? {
            e.status = status.to_owned();
            tx.put_json(key, &e);
        }
    }
    Ok(())
}

impl Projection for Registers {
    fn name(&self) -> &'static str {
        "registers"
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        let record = a.record;
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        match event {
            // Another system's document: numbered here only as received.
            DocumentEvent::Arrived(e) => {
                let seal = &e.seal_payload;
                let facts = Facts {
                    reference: crate::domain::numbering::reference(seal.number, &seal.symbol),
                    doc_type: seal.signed.doc_type.clone(),
                    title: seal.signed.title.clone(),
                    agency: e.agency.clone(),
                    signer: format!("{} ({})", e.from.signer_name, e.from.competence),
                    recipients: e.recipients.iter().map(|r| r.agency.clone()).collect(),
                };
                tx.put_json(format!("d/{doc}"), &facts);
            }
            DocumentEvent::Issued(e) => {
                let signed = &e.seal_payload.signed;
                let facts = Facts {
                    reference: crate::domain::numbering::reference(e.number, &e.symbol),
                    doc_type: signed.doc_type.clone(),
                    title: signed.title.clone(),
                    agency: signed.agency.clone(),
                    signer: format!("{} ({})", signed.signer, signed.authority.as_str()),
                    recipients: e.recipients.iter().map(|r| r.agency.clone()).collect(),
                };
                let key = format!("{}{}", prefix(&e.register), padded(e.number));
                tx.put_json(
                    key.clone(),
                    &Entry {
                        register: e.register.clone(),
                        number: e.number,
                        date: e.issued_on,
                        reference: facts.reference.clone(),
                        doc_type: facts.doc_type.clone(),
                        title: facts.title.clone(),
                        agency: facts.agency.clone(),
                        signer: facts.signer.clone(),
                        recipients: facts.recipients.clone(),
                        doc,
                        status: "issued".into(),
                    },
                );
                tx.put(format!("x/{doc}/{}", e.register), key.into_bytes());
                tx.put_json(format!("d/{doc}"), &facts);
            }
            DocumentEvent::Received(e) => {
                let Some(facts) = tx.get_json::<Facts>(format!("d/{doc}").as_bytes())? else {
                    return Err(ProjectionError::Decode {
                        position: record.position,
                        reason: format!("received before issued: {doc}"),
                    });
                };
                let key = format!("{}{}", prefix(&e.register), padded(e.incoming_number));
                tx.put_json(
                    key.clone(),
                    &Entry {
                        register: e.register.clone(),
                        number: e.incoming_number,
                        date: e.at.with_timezone(&vietnam()).date_naive(),
                        reference: facts.reference,
                        doc_type: facts.doc_type,
                        title: facts.title,
                        agency: facts.agency,
                        signer: facts.signer,
                        recipients: vec![e.agency.clone()],
                        doc,
                        status: "issued".into(),
                    },
                );
                tx.put(format!("x/{doc}/{}", e.register), key.into_bytes());
            }
            DocumentEvent::Recalled(_)
            | DocumentEvent::RecallAnswered(crate::domain::document::RecallAnswered {
                agreed: true,
                ..
            }) => mark(tx, doc, "recalled")?,
            DocumentEvent::Replaced(_) => mark(tx, doc, "replaced")?,
            _ => {}
        }
        Ok(())
    }
}
