//! The open reply deadlines the fold keeps for the sender, which turns
//! them into `deadline.due_soon` and `deadline.overdue` messages as the
//! clock passes them.
//!
//! Must never: read the clock (the fold keeps facts; the sender judges
//! "due soon" and "overdue").

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::document::DocumentEvent;
use crate::projections::feed::Issued;
use crate::projections::{ProjectionError, Tx};

/// An open reply deadline the sender watches for `deadline.due_soon` and
/// `deadline.overdue` (`w/{deadline}/{doc}/{agency}`: in deadline order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub doc: Uuid,
    /// The agency that must reply.
    pub agency: String,
    /// The agency that set the deadline.
    pub issuer: String,
    /// The deadline in force.
    pub deadline: NaiveDate,
}

impl Watch {
    pub fn key(&self) -> String {
        format!("w/{}/{}/{}", self.deadline, self.doc, self.agency)
    }
}

/// Stops watching the deadline of `agency` for `doc`, if watched.
pub(super) fn unwatch(doc: Uuid, agency: &str, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
    let x = format!("x/{doc}/{agency}");
    if let Some(key) = tx.get(x.as_bytes())? {
        tx.delete(key);
        tx.delete(x);
    }
    Ok(())
}

fn watch(w: &Watch, tx: &mut Tx<'_>) {
    tx.put(format!("x/{}/{}", w.doc, w.agency), w.key().into_bytes());
    tx.put_json(w.key(), w);
}

/// Keeps `w/` rows for the reply deadlines still open: set at issue,
/// moved by an extension, gone with the reply, a recall or a replacement.
/// (The sender drops a row once it has told the deadline overdue; an
/// extension after that watches the new deadline.)
pub(super) fn watch_deadlines(
    doc: Uuid,
    event: &DocumentEvent,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::document::DeadlineScope;
    match event {
        DocumentEvent::Issued(_) | DocumentEvent::Arrived(_) => {
            // Another system's document: its issuer is the external agency.
            let (issuer, recipients) = match event {
                DocumentEvent::Issued(e) => (&e.seal_payload.signed.agency, &e.recipients),
                DocumentEvent::Arrived(e) => (&e.agency, &e.recipients),
                _ => unreachable!(),
            };
            for r in recipients {
                if let Some(deadline) = r.reply_due {
                    watch(
                        &Watch {
                            doc,
                            agency: r.agency.clone(),
                            issuer: issuer.clone(),
                            deadline,
                        },
                        tx,
                    );
                }
            }
        }
        DocumentEvent::DeadlineExtended(e) if e.scope == DeadlineScope::Reply => {
            let issuer = match tx.get_json::<Issued>(format!("m/{doc}").as_bytes())? {
                Some(issued) => issued.agency,
                None => return Ok(()),
            };
            unwatch(doc, &e.agency, tx)?;
            watch(
                &Watch {
                    doc,
                    agency: e.agency.clone(),
                    issuer,
                    deadline: e.new,
                },
                tx,
            );
        }
        DocumentEvent::Replied(e) => unwatch(doc, &e.agency, tx)?,
        DocumentEvent::Refused(e) => unwatch(doc, &e.agency, tx)?,
        DocumentEvent::Recalled(_)
        | DocumentEvent::Replaced(_)
        | DocumentEvent::RecallAnswered(crate::domain::document::RecallAnswered {
            agreed: true,
            ..
        }) => {
            for (key, _) in tx.scan_prefix(format!("x/{doc}/").as_bytes())? {
                let key = String::from_utf8_lossy(&key).into_owned();
                if let Some(agency) = key.rsplit('/').next() {
                    unwatch(doc, agency, tx)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
