//! The issued-documents feed for integrations: every issue, recall and
//! replacement in global log order, keyed by log position, so a consumer
//! that resumes from its last cursor sees every entry exactly once.
//!
//! Rows: `f/{position:020}` → [`FeedEntry`]; `d/{doc}` → the issued facts
//! (for recall and replacement entries); `c/{doc}` → the draft is
//! confidential (never fed).
//!
//! Must never: reorder entries or reuse a cursor.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{padded, Applied, Projection, ProjectionError, Tx};
use crate::domain::document::{DocumentEvent, IssuedRecipient};
use crate::domain::signing::ContentRef;

/// One signer of an issued document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    pub official: String,
    pub authority: String,
    pub position: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// An issued document as integrations see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub doc: Uuid,
    pub agency: String,
    pub number: u64,
    pub symbol: String,
    pub reference: String,
    pub issued_on: NaiveDate,
    pub doc_type: String,
    pub title: String,
    pub signers: Vec<Signer>,
    pub content: Vec<ContentRef>,
    pub recipients: Vec<IssuedRecipient>,
    /// Where to fetch the evidence bundle.
    pub bundle: String,
}

impl Issued {
    /// What integrations are told of document `doc` issued by `e`.
    pub fn of(doc: Uuid, e: &crate::domain::document::Issued) -> Self {
        Self::sealed(doc, &e.seal_payload, &e.recipients)
    }

    /// The facts `seal` attests, addressed to `recipients`.
    fn sealed(
        doc: Uuid,
        seal: &crate::domain::signing::SealPayload,
        recipients: &[IssuedRecipient],
    ) -> Self {
        let s = &seal.signed;
        Issued {
            doc,
            agency: s.agency.clone(),
            number: seal.number,
            symbol: seal.symbol.clone(),
            reference: crate::domain::numbering::reference(seal.number, &seal.symbol),
            issued_on: seal.issued_on,
            doc_type: s.doc_type.clone(),
            title: s.title.clone(),
            signers: vec![Signer {
                official: s.signer.clone(),
                authority: s.authority.as_str().to_owned(),
                position: s.position.as_str().to_owned(),
                on_behalf_of: s.on_behalf_of.clone(),
            }],
            content: s.content.clone(),
            recipients: recipients.to_vec(),
            bundle: format!("/v1/documents/{doc}/bundle"),
        }
    }

    /// What integrations are told of document `doc`, another system's,
    /// that arrived here as `e`: the sealed facts and signer, with the
    /// external agency (this system's code for it) as issuer. It is not
    /// fed: it tells of its handling here (received, replied) and its
    /// reply deadlines.
    pub fn arrived(doc: Uuid, e: &crate::domain::document::Arrived) -> Self {
        let seal = &e.seal_payload;
        Issued {
            agency: e.agency.clone(),
            ..Self::sealed(doc, seal, &e.recipients)
        }
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// The log position: resume with `after=cursor`.
    pub cursor: u64,
    /// `issued`, `recalled` or `replaced`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub document: Issued,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Uuid>,
}

pub struct Feed;

/// Row key of the entry at `cursor`.
pub fn key(cursor: u64) -> String {
    format!("f/{}", padded(cursor))
}

impl Projection for Feed {
    fn name(&self) -> &'static str {
        "feed"
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        let record = a.record;
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        tx.note_confidentiality(doc, event);
        let (kind, at, reason, replacement) = match event {
            DocumentEvent::Issued(_)
                if !crate::domain::access::integrations_may_see(tx.is_confidential(doc)?) =>
            {
                return Ok(())
            }
            DocumentEvent::Issued(e) => {
                tx.put_json(format!("d/{doc}"), &Issued::of(doc, e));
                ("issued", e.at, None, None)
            }
            DocumentEvent::Recalled(e) => ("recalled", e.at, Some(e.reason.clone()), None),
            DocumentEvent::Replaced(e) => (
                "replaced",
                e.at,
                Some(e.reason.clone()),
                Some(e.replacement),
            ),
            _ => return Ok(()),
        };
        let Some(document) = tx.get_json::<Issued>(format!("d/{doc}").as_bytes())? else {
            return Ok(());
        };
        tx.put_json(
            key(record.position),
            &FeedEntry {
                cursor: record.position,
                kind: kind.into(),
                at,
                document,
                reason,
                replacement,
            },
        );
        Ok(())
    }
}
