//! Reply and handling deadlines: one row per (document, recipient agency)
//! with a reply deadline, and one per (document, agency, assigned unit) with
//! a handling deadline. Rows hold facts (the deadline in force, the original,
//! when it was answered); the status (pending, due soon, overdue, replied on
//! time or late) is computed at query time by [`Row::status`] with the
//! working-day calendar: one definition of "late" everywhere (rule 14).
//!
//! Rows: `d/{agency}/{doc}/{unit or -}` → [`Row`]; `x/{doc}` → its row keys;
//! `m/{doc}` → the issued facts; `c/{doc}` → the draft is confidential.
//!
//! Must never: store a time-dependent status, or forget an original deadline.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Applied, Projection, ProjectionError, Tx};
use crate::domain::calendar::Calendar;
use crate::domain::document::{DeadlineScope, DocumentEvent, RecallAnswered};

/// One tracked deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub doc: Uuid,
    pub reference: String,
    pub title: String,
    /// The agency that set the deadline by issuing the document.
    pub issuer: String,
    /// The agency that must answer.
    pub agency: String,
    /// The assigned unit (handling rows); `None` for the agency's reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `reply` or `handling`.
    pub kind: String,
    /// The deadline in force.
    pub deadline: NaiveDate,
    /// The deadline first set (kept when extended).
    pub original: NaiveDate,
    pub extensions: u32,
    /// The document is confidential (mật and above): only leaders and
    /// clerks see its rows.
    #[serde(default)]
    pub confidential: bool,
    /// When it was answered: the agency's first reply, or the unit's completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    /// For an external recipient: the latest status its system reported
    /// (`03 Đã tiếp nhận`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interchange: Option<Reported>,
}

/// A status an external recipient's system reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub code: String,
    pub name: String,
    pub at: DateTime<Utc>,
}

/// Where a deadline stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    DueSoon,
    Overdue,
    RepliedOnTime,
    RepliedLate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::DueSoon => "due_soon",
            Status::Overdue => "overdue",
            Status::RepliedOnTime => "replied_on_time",
            Status::RepliedLate => "replied_late",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Pending,
            Status::DueSoon,
            Status::Overdue,
            Status::RepliedOnTime,
            Status::RepliedLate,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl Row {
    /// The status at `now`: answered rows are on time or late against the
    /// deadline in force; open rows are overdue after the end of the deadline
    /// day (rolled to a working day), due soon within `due_soon` working days.
    pub fn status(&self, calendar: &Calendar, now: DateTime<Utc>, due_soon: u32) -> Status {
        match self.done_at {
            Some(done) if calendar.is_overdue(self.deadline, done) => Status::RepliedLate,
            Some(_) => Status::RepliedOnTime,
            None if calendar.is_overdue(self.deadline, now) => Status::Overdue,
            None if calendar.is_due_soon(self.deadline, now, due_soon) => Status::DueSoon,
            None => Status::Pending,
        }
    }

    /// Whether it was (or would now be) late against the original deadline.
    pub fn late_against_original(&self, calendar: &Calendar, now: DateTime<Utc>) -> bool {
        calendar.is_overdue(self.original, self.done_at.unwrap_or(now))
    }
}

/// Row key.
pub fn key(agency: &str, doc: Uuid, unit: Option<&str>) -> String {
    format!("d/{agency}/{doc}/{}", unit.unwrap_or("-"))
}

/// Key prefix of an agency's rows.
pub fn prefix(agency: &str) -> String {
    format!("d/{agency}/")
}

pub struct Deadlines;

/// Writes a row and records its key under the document (`x/{doc}`).
fn put_row(tx: &mut Tx<'_>, key: String, row: &Row) -> Result<(), ProjectionError> {
    let index = format!("x/{}", row.doc);
    let mut keys: Vec<String> = tx.get_json(index.as_bytes())?.unwrap_or_default();
    if !keys.contains(&key) {
        keys.push(key.clone());
        tx.put_json(index, &keys);
    }
    tx.put_json(key, row);
    Ok(())
}

/// `agency`'s rows for `doc` (its reply and handling deadlines), with
/// their keys.
fn rows_of(
    tx: &Tx<'_>,
    agency: &str,
    doc: Uuid,
    position: u64,
) -> Result<Vec<(Vec<u8>, Row)>, ProjectionError> {
    tx.scan_prefix(format!("d/{agency}/{doc}/").as_bytes())?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_slice(&v)
                .map(|row| (k, row))
                .map_err(|err| ProjectionError::Decode {
                    position,
                    reason: err.to_string(),
                })
        })
        .collect()
}

/// What the projection keeps of an issued document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Facts {
    reference: String,
    title: String,
    issuer: String,
    confidential: bool,
}

impl Projection for Deadlines {
    fn name(&self) -> &'static str {
        "deadlines"
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        let record = a.record;
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        let facts_key = format!("m/{doc}");
        tx.note_confidentiality(doc, event);
        match event {
            DocumentEvent::Issued(_) | DocumentEvent::Arrived(_) => {
                // An arrived document's issuer is another system's agency,
                // by this system's code for it (not the seal's own code).
                let (issuer, seal, recipients) = match event {
                    DocumentEvent::Issued(e) => (
                        &e.seal_payload.signed.agency,
                        &e.seal_payload,
                        &e.recipients,
                    ),
                    DocumentEvent::Arrived(e) => (&e.agency, &e.seal_payload, &e.recipients),
                    _ => unreachable!(),
                };
                let facts = Facts {
                    reference: crate::domain::numbering::reference(seal.number, &seal.symbol),
                    title: seal.signed.title.clone(),
                    issuer: issuer.clone(),
                    confidential: tx.is_confidential(doc)?,
                };
                for r in recipients {
                    if let Some(due) = r.reply_due {
                        put_row(
                            tx,
                            key(&r.agency, doc, None),
                            &Row {
                                doc,
                                reference: facts.reference.clone(),
                                title: facts.title.clone(),
                                issuer: facts.issuer.clone(),
                                agency: r.agency.clone(),
                                unit: None,
                                kind: "reply".into(),
                                deadline: due,
                                original: due,
                                extensions: 0,
                                confidential: facts.confidential,
                                done_at: None,
                                interchange: None,
                            },
                        )?;
                    }
                }
                tx.put_json(facts_key, &facts);
            }
            DocumentEvent::Assigned(e) => {
                let Some(facts) = tx.get_json::<Facts>(facts_key.as_bytes())? else {
                    return Ok(());
                };
                // A re-assignment replaces the open handling rows; the
                // original deadline and the extensions carry over.
                let mut prior: Option<(NaiveDate, u32)> = None;
                for (k, row) in rows_of(tx, &e.agency, doc, record.position)? {
                    if row.unit.is_some() && row.done_at.is_none() {
                        prior = Some((row.original, row.extensions));
                        tx.delete(k);
                    }
                }
                let Some(due) = e.deadline else {
                    return Ok(());
                };
                for unit in std::iter::once(&e.lead).chain(&e.coordinating) {
                    put_row(
                        tx,
                        key(&e.agency, doc, Some(unit)),
                        &Row {
                            doc,
                            reference: facts.reference.clone(),
                            title: facts.title.clone(),
                            issuer: facts.issuer.clone(),
                            agency: e.agency.clone(),
                            unit: Some(unit.clone()),
                            kind: "handling".into(),
                            deadline: due,
                            original: prior.map_or(due, |p| p.0),
                            extensions: prior.map_or(0, |p| p.1),
                            confidential: facts.confidential,
                            done_at: None,
                            interchange: None,
                        },
                    )?;
                }
            }
            DocumentEvent::DeadlineExtended(e) => {
                let keys: Vec<String> = match e.scope {
                    DeadlineScope::Reply => vec![key(&e.agency, doc, None)],
                    DeadlineScope::Handling => tx
                        .scan_prefix(format!("d/{}/{doc}/", e.agency).as_bytes())?
                        .into_iter()
                        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
                        .filter(|k| !k.ends_with("/-"))
                        .collect(),
                };
                for k in keys {
                    if let Some(mut row) = tx.get_json::<Row>(k.as_bytes())? {
                        if row.done_at.is_none() {
                            row.deadline = e.new;
                            row.extensions += 1;
                            tx.put_json(k, &row);
                        }
                    }
                }
            }
            DocumentEvent::Replied(e) => {
                let k = key(&e.agency, doc, None);
                if let Some(mut row) = tx.get_json::<Row>(k.as_bytes())? {
                    if row.done_at.is_none() {
                        row.done_at = Some(e.at);
                        tx.put_json(k, &row);
                    }
                }
            }
            DocumentEvent::Completed(e) => {
                for unit in std::iter::once(&e.unit).chain(&e.cascaded) {
                    let k = key(&e.agency, doc, Some(unit));
                    if let Some(mut row) = tx.get_json::<Row>(k.as_bytes())? {
                        if row.done_at.is_none() {
                            row.done_at = Some(e.at);
                            tx.put_json(k, &row);
                        }
                    }
                }
            }
            DocumentEvent::InterchangeStatus(e) => {
                let k = key(&e.agency, doc, None);
                if let Some(mut row) = tx.get_json::<Row>(k.as_bytes())? {
                    row.interchange = Some(Reported {
                        code: e.code.clone(),
                        name: crate::domain::interchange::StatusCode::parse(&e.code)
                            .map(|c| c.name().to_owned())
                            .unwrap_or_default(),
                        at: e.reported_at,
                    });
                    tx.put_json(k, &row);
                }
            }
            // Refused here, another system's document awaits no answer
            // from that agency.
            DocumentEvent::Refused(e) => {
                for (k, row) in rows_of(tx, &e.agency, doc, record.position)? {
                    if row.done_at.is_none() {
                        tx.delete(k);
                    }
                }
            }
            DocumentEvent::Recalled(_)
            | DocumentEvent::Replaced(_)
            | DocumentEvent::RecallAnswered(RecallAnswered { agreed: true, .. }) => {
                // A recalled document no longer awaits answers: its open rows go.
                let keys: Vec<String> = tx
                    .get_json(format!("x/{doc}").as_bytes())?
                    .unwrap_or_default();
                for k in keys {
                    if let Some(row) = tx.get_json::<Row>(k.as_bytes())? {
                        if row.done_at.is_none() {
                            tx.delete(k);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
