//! Inboxes: what awaits whom. Per party (an official `o:ID`, an agency's
//! clerks `c:AGENCY`, an agency's leaders `l:AGENCY`, a unit
//! `u:AGENCY/UNIT`), items in boxes `sign`, `review`, `handle`, `info`, each
//! `pending` or `done`, newest first; read marks per official.
//!
//! - routed for signing → `sign` for that official; review/approval or an
//!   opinion request → `review`; done when they act or the draft moves on;
//! - issued → `handle` for each recipient agency's clerks (to receive);
//!   received → `handle` for its leaders (to assign); assigned → `handle` for
//!   the lead and coordinating units and the handler, `info` for FYI units;
//!   completed → done; recalled → everything of the document done;
//! - arrived from another system → `handle` for each addressed agency's
//!   clerks (to receive or refuse); its issuer's recall request →
//!   `handle` again for them (reason `recall`) until one answers.
//!
//! Rows: `i/{party}/{box}/{state}/{newest-first position}/{doc}` → [`Item`];
//! `x/{party}/{box}/{doc}` → that row's key; `m/{doc}` → [`Meta`];
//! `r/{official}/{doc}` → read mark (from `inbox.read.v1` events).
//!
//! Must never: decide who may do what (that is the domain's); it only
//! mirrors what the events say is awaited.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{padded, payload, Applied, Projection, ProjectionError, Tx};
use crate::domain::document::{DocumentEvent, RoutePurpose};

/// Event type of a read mark, on stream `inbox-{official}`.
pub const READ: &str = "inbox.read.v1";

/// Payload of [`READ`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadMark {
    pub official: String,
    pub doc: Uuid,
}

/// One inbox item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub doc: Uuid,
    pub party: String,
    #[serde(rename = "box")]
    pub box_: String,
    pub state: String,
    /// Why it is here: `signing`, `review`, `approval`, `opinion`,
    /// `receive`, `assign`, `lead`, `coordinating`, `handler`, `fyi`.
    pub reason: String,
    pub title: String,
    /// The issuing agency.
    pub agency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub since: DateTime<Utc>,
    /// Log position of the change that put it in this state.
    pub position: u64,
}

/// What the inbox remembers of a document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    title: String,
    agency: String,
    reference: Option<String>,
    /// (party, box) of every item the document has.
    items: Vec<(String, String)>,
    /// Parties of the current route (signer or reviewer).
    route: Option<(String, String)>,
    /// Handling parties: (recipient agency, party, box, reason).
    handling: Vec<(String, String, String, String)>,
    /// Recipient agencies whose clerks took it in or refused it.
    #[serde(default)]
    settled: Vec<String>,
}

pub struct Inbox;

pub const BOXES: [&str; 4] = ["sign", "review", "handle", "info"];

/// Key prefix of a party's items in a box and state.
pub fn prefix(party: &str, box_: &str, state: &str) -> String {
    format!("i/{party}/{box_}/{state}/")
}

fn newest_first(position: u64) -> String {
    padded(u64::MAX - position)
}

/// Read-mark key.
pub fn read_key(official: &str, doc: Uuid) -> String {
    format!("r/{official}/{doc}")
}

/// The idempotency key of `official`'s read mark on `doc`: a second mark is
/// a replay of the first, never a second event.
pub fn read_mark_key(official: &str, doc: Uuid) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(official.as_bytes())
        .chain_update([0])
        .chain_update(doc.as_bytes())
        .finalize();
    format!("inbox-read-{}", hex::encode(h))
}

struct Ctx {
    doc: Uuid,
    at: DateTime<Utc>,
    position: u64,
}

fn set(
    tx: &mut Tx<'_>,
    meta: &mut Meta,
    c: &Ctx,
    party: &str,
    box_: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<(), ProjectionError> {
    let index = format!("x/{party}/{box_}/{}", c.doc);
    let old_key = tx.get(index.as_bytes())?;
    let old: Option<Item> = match &old_key {
        Some(k) => tx.get_json::<Item>(k)?,
        None => None,
    };
    match (&old, state) {
        (None, "done") => return Ok(()), // nothing was awaited here
        (Some(o), "done") if o.state == "done" => return Ok(()),
        _ => {}
    }
    if let Some(k) = old_key {
        tx.delete(k);
    }
    let reason = reason
        .map(str::to_owned)
        .or(old.map(|o| o.reason))
        .unwrap_or_default();
    let key = format!(
        "{}{}/{}",
        prefix(party, box_, state),
        newest_first(c.position),
        c.doc
    );
    tx.put_json(
        key.clone(),
        &Item {
            doc: c.doc,
            party: party.into(),
            box_: box_.into(),
            state: state.into(),
            reason,
            title: meta.title.clone(),
            agency: meta.agency.clone(),
            reference: meta.reference.clone(),
            since: c.at,
            position: c.position,
        },
    );
    tx.put(index, key.into_bytes());
    let pair = (party.to_owned(), box_.to_owned());
    if !meta.items.contains(&pair) {
        meta.items.push(pair);
    }
    Ok(())
}

/// Each recipient agency's clerks have it to receive.
fn to_receive(
    tx: &mut Tx<'_>,
    meta: &mut Meta,
    c: &Ctx,
    recipients: &[crate::domain::document::IssuedRecipient],
) -> Result<(), ProjectionError> {
    for r in recipients {
        let party = format!("c:{}", r.agency);
        set(tx, meta, c, &party, "handle", "pending", Some("receive"))?;
    }
    Ok(())
}

/// An agency's clerks took the document in or refused it: their item is done.
fn settled(tx: &mut Tx<'_>, meta: &mut Meta, c: &Ctx, agency: &str) -> Result<(), ProjectionError> {
    meta.settled.push(agency.to_owned());
    set(tx, meta, c, &format!("c:{agency}"), "handle", "done", None)
}

fn official(id: &str) -> String {
    format!("o:{id}")
}

/// The row key part of an inbox (`domain::access::Party`).
pub fn party_key(party: &crate::domain::access::Party) -> String {
    use crate::domain::access::Party;
    match party {
        Party::Official(id) => official(id),
        Party::Clerks(agency) => format!("c:{agency}"),
        Party::Leaders(agency) => format!("l:{agency}"),
        Party::Unit { agency, unit } => format!("u:{agency}/{unit}"),
    }
}

impl Projection for Inbox {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        let record = a.record;
        if record.event_type == READ {
            let mark: ReadMark = payload(record)?;
            tx.put(read_key(&mark.official, mark.doc), b"1".to_vec());
            return Ok(());
        }
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        let meta_key = format!("m/{doc}");
        let mut meta: Meta = tx.get_json(meta_key.as_bytes())?.unwrap_or_default();
        let (_, at) = event.actor_and_time();
        let c = Ctx {
            doc,
            at,
            position: record.position,
        };
        let end_route = |tx: &mut Tx<'_>, meta: &mut Meta| -> Result<(), ProjectionError> {
            if let Some((party, box_)) = meta.route.take() {
                set(tx, meta, &c, &party, &box_, "done", None)?;
            }
            Ok(())
        };
        match &event {
            DocumentEvent::Drafted(e) => {
                meta.title = e.draft.title.clone();
                meta.agency = e.agency.clone();
            }
            DocumentEvent::Revised(e) => meta.title = e.draft.title.clone(),
            DocumentEvent::Routed(e) => {
                end_route(tx, &mut meta)?;
                let (box_, reason) = match e.purpose {
                    RoutePurpose::Signing => ("sign", "signing"),
                    RoutePurpose::Review => ("review", "review"),
                    RoutePurpose::Approval => ("review", "approval"),
                };
                let party = official(&e.to);
                set(tx, &mut meta, &c, &party, box_, "pending", Some(reason))?;
                meta.route = Some((party, box_.into()));
            }
            DocumentEvent::Returned(_) => end_route(tx, &mut meta)?,
            DocumentEvent::Signed(_) => {
                end_route(tx, &mut meta)?;
                // Opinions nobody gave can no longer be given.
                for (party, box_) in meta.items.clone() {
                    if box_ == "review" {
                        set(tx, &mut meta, &c, &party, &box_, "done", None)?;
                    }
                }
            }
            DocumentEvent::OpinionRequested(e) => {
                for from in &e.from {
                    set(
                        tx,
                        &mut meta,
                        &c,
                        &official(from),
                        "review",
                        "pending",
                        Some("opinion"),
                    )?;
                }
            }
            DocumentEvent::OpinionGiven(e) => {
                // Still pending if the same official is also the route's reviewer.
                let item = (official(&e.by), "review".to_owned());
                if meta.route.as_ref() != Some(&item) {
                    set(tx, &mut meta, &c, &official(&e.by), "review", "done", None)?;
                }
            }
            DocumentEvent::Arrived(e) => {
                let seal = &e.seal_payload;
                meta.title = seal.signed.title.clone();
                meta.agency = e.agency.clone();
                meta.reference = Some(crate::domain::numbering::reference(
                    seal.number,
                    &seal.symbol,
                ));
                to_receive(tx, &mut meta, &c, &e.recipients)?;
            }
            DocumentEvent::Refused(e) => {
                settled(tx, &mut meta, &c, &e.agency)?;
            }
            DocumentEvent::RecallRequested(_) => {
                for (party, box_) in meta.items.clone() {
                    if party.starts_with("c:") && box_ == "handle" {
                        set(tx, &mut meta, &c, &party, &box_, "pending", Some("recall"))?;
                    }
                }
            }
            DocumentEvent::RecallAnswered(e) if e.agreed => {
                for (party, box_) in meta.items.clone() {
                    set(tx, &mut meta, &c, &party, &box_, "done", None)?;
                }
            }
            DocumentEvent::RecallAnswered(_) => {
                // Kept: each clerk's item goes back to what it awaited.
                for (party, box_) in meta.items.clone() {
                    let Some(agency) = party.strip_prefix("c:") else {
                        continue;
                    };
                    if box_ != "handle" {
                        continue;
                    }
                    if meta.settled.iter().any(|a| a == agency) {
                        set(tx, &mut meta, &c, &party, &box_, "done", Some("receive"))?;
                    } else {
                        set(tx, &mut meta, &c, &party, &box_, "pending", Some("receive"))?;
                    }
                }
            }
            DocumentEvent::Issued(e) => {
                meta.reference = Some(crate::domain::numbering::reference(e.number, &e.symbol));
                to_receive(tx, &mut meta, &c, &e.recipients)?;
            }
            DocumentEvent::Received(e) => {
                settled(tx, &mut meta, &c, &e.agency)?;
                set(
                    tx,
                    &mut meta,
                    &c,
                    &format!("l:{}", e.agency),
                    "handle",
                    "pending",
                    Some("assign"),
                )?;
            }
            DocumentEvent::Assigned(e) => {
                set(
                    tx,
                    &mut meta,
                    &c,
                    &format!("l:{}", e.agency),
                    "handle",
                    "done",
                    None,
                )?;
                // A new assignment replaces the previous one's parties.
                let (previous, kept): (Vec<_>, Vec<_>) =
                    meta.handling.drain(..).partition(|h| h.0 == e.agency);
                meta.handling = kept;
                for (_, party, box_, _) in previous {
                    set(tx, &mut meta, &c, &party, &box_, "done", None)?;
                }
                let unit = |u: &str| format!("u:{}/{u}", e.agency);
                let mut parties = vec![(unit(&e.lead), "handle", "lead")];
                parties.extend(
                    e.coordinating
                        .iter()
                        .map(|u| (unit(u), "handle", "coordinating")),
                );
                parties.extend(e.fyi.iter().map(|u| (unit(u), "info", "fyi")));
                if let Some(h) = &e.handler {
                    parties.push((official(h), "handle", "handler"));
                }
                for (party, box_, reason) in parties {
                    set(tx, &mut meta, &c, &party, box_, "pending", Some(reason))?;
                    meta.handling
                        .push((e.agency.clone(), party, box_.into(), reason.into()));
                }
            }
            // Another system's word about its own handling: no inbox here.
            DocumentEvent::InterchangeStatus(_) => {}
            DocumentEvent::Completed(e) => {
                let unit = |u: &str| format!("u:{}/{u}", e.agency);
                let mut done = vec![unit(&e.unit)];
                done.extend(e.cascaded.iter().map(|u| unit(u)));
                let handling: Vec<_> = meta
                    .handling
                    .iter()
                    .filter(|h| h.0 == e.agency)
                    .cloned()
                    .collect();
                // The lead's completion also ends the handler's item.
                let lead_done = handling
                    .iter()
                    .any(|h| h.3 == "lead" && h.1 == unit(&e.unit));
                for (_, party, box_, reason) in handling {
                    if done.contains(&party) || (reason == "handler" && lead_done) {
                        set(tx, &mut meta, &c, &party, &box_, "done", None)?;
                    }
                }
            }
            DocumentEvent::Recalled(_) | DocumentEvent::Replaced(_) => {
                for (party, box_) in meta.items.clone() {
                    set(tx, &mut meta, &c, &party, &box_, "done", None)?;
                }
                meta.route = None;
            }
            DocumentEvent::DeadlineExtended(_)
            | DocumentEvent::Replied(_)
            | DocumentEvent::ReplyLinked(_) => {}
        }
        tx.put_json(meta_key, &meta);
        Ok(())
    }
}
