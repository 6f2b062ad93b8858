//! Packages that arrived from other systems, per addressed agency, for its
//! clerks: `a/{agency}/{position:020}` → [`Row`] (status 01, Đã đến, until
//! a clerk receives or refuses the document it became); `k/{arrival}/{agency}`
//! → that row's key.
//!
//! Must never: list a package for an agency it was not addressed to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{padded, payload, Applied, Projection, ProjectionError, Tx};
use crate::interchange::{Arrived, ARRIVED};

/// The projection's name.
pub const NAME: &str = "arrivals";

/// An arrived package as a clerk's list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub arrival: uuid::Uuid,
    /// The document it became here (`/v1/documents/{document}`): the same id.
    #[serde(default)]
    pub document: uuid::Uuid,
    /// The log position it was recorded at.
    pub position: u64,
    pub from_agency: String,
    pub from_organ: String,
    /// `05/KH-UBND`.
    pub reference: String,
    pub subject: String,
    pub promulgation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    pub signer: String,
    pub authority: String,
    pub files: Vec<crate::domain::signing::ContentRef>,
    /// Where the package's header disagreed with its sealed evidence
    /// (D3); the row shows what was sealed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsealed: Vec<String>,
    /// The two-digit status code: 01 until a clerk acts, then 02
    /// (refused), 03 (received) or 15 (recalled by its issuer).
    pub status: String,
    /// Why it was refused, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<String>,
    pub at: DateTime<Utc>,
}

/// An addressed agency's clerk took the arrived document in (03) or
/// refused it (02); or the issuer's recall was agreed (15).
fn settled(
    doc: uuid::Uuid,
    event: &crate::domain::document::DocumentEvent,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::document::DocumentEvent;
    use crate::domain::interchange::StatusCode;
    let (agency, code, reason) = match event {
        DocumentEvent::Received(e) => (&e.agency, StatusCode::Received, None),
        DocumentEvent::Refused(e) => (&e.agency, StatusCode::Refused, Some(&e.reason)),
        DocumentEvent::RecallAnswered(e) if e.agreed => (&e.agency, StatusCode::RecallAgreed, None),
        _ => return Ok(()),
    };
    let Some(key) = tx.get(format!("k/{doc}/{agency}").as_bytes())? else {
        return Ok(());
    };
    let key = String::from_utf8_lossy(&key).into_owned();
    if let Some(mut row) = tx.get_json::<Row>(key.as_bytes())? {
        row.status = code.code().into();
        if let Some(reason) = reason {
            row.returned = Some(reason.clone());
        }
        tx.put_json(key, &row);
    }
    Ok(())
}

/// Row prefix of `agency`'s arrivals.
pub fn prefix(agency: &str) -> String {
    format!("a/{agency}/")
}

pub struct Arrivals;

impl Projection for Arrivals {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        if let Some((doc, event)) = a.doc {
            return settled(doc, event, tx);
        }
        if a.record.event_type != ARRIVED {
            return Ok(());
        }
        let arrived: Arrived = payload(a.record)?;
        let h = &arrived.header;
        for agency in &arrived.to {
            let key = format!("{}{}", prefix(agency), padded(a.record.position));
            tx.put(
                format!("k/{}/{agency}", arrived.id),
                key.clone().into_bytes(),
            );
            tx.put_json(
                key,
                &Row {
                    arrival: arrived.id,
                    document: arrived.id,
                    position: a.record.position,
                    from_agency: arrived.from_agency.clone(),
                    from_organ: h.from.organ_id.clone(),
                    reference: format!("{}/{}", h.code.code_number, h.code.code_notation),
                    subject: h.subject.clone(),
                    promulgation_date: h.promulgation_info.promulgation_date.clone(),
                    due_date: match &arrived.sealed_due {
                        Some(due) => due
                            .get(agency)
                            .copied()
                            .flatten()
                            .map(crate::interchange::edxml::write_date),
                        None => h.due_date.clone(),
                    },
                    signer: arrived.verdict.signer.clone(),
                    authority: arrived.verdict.authority.clone(),
                    files: arrived.files.clone(),
                    unsealed: arrived.unsealed.clone(),
                    status: crate::domain::interchange::StatusCode::Arrived
                        .code()
                        .into(),
                    returned: None,
                    at: arrived.at,
                },
            );
        }
        Ok(())
    }
}
