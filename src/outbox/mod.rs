//! The outbox: what the log says must leave the building, turned into
//! deliveries that survive restarts, and sent until they arrive or expire.
//!
//! Two halves share one table (`p.outbox`):
//! - [`Outbox`] is a projection-like fold of the log: each record that a
//!   webhook subscribed to (issued, recalled, replaced, received, replied;
//!   never a confidential document) becomes one delivery per subscriber,
//!   written with the checkpoint in one batch, so a crash neither loses nor
//!   doubles one. Its id is derived from (webhook, position, kind): the same
//!   on every node and after any replay, so a receiver can drop a repeat.
//!   It also keeps the open reply deadlines, which the sender turns into
//!   `deadline.due_soon` and `deadline.overdue` messages as the clock
//!   passes them (ids derived from the deadline itself).
//! - [`dispatch`] sends what is pending, records every attempt, backs off
//!   with jitter, gives up after the maximum age (dead letter) and takes a
//!   manual re-drive. Its rows are the outside world's answers, written
//!   beside the fold's, never rebuilt.
//!
//! It is not in `projections::all()`: `vanthu rebuild` never touches it, so
//! nothing delivered is sent again by a rebuild.
//!
//! Rows: `s/{webhook}` → [`Subscriber`]; `m/{doc}` → the issued facts;
//! `c/{doc}` → the draft is confidential; `w/{deadline}/{doc}/{agency}` →
//! [`Watch`] (an open reply deadline) and `x/{doc}/{agency}` → its `w/`
//! key; `q/{id}` → [`Delivery`]; `i/{webhook}/{order}/{id}` → the
//! webhook's deliveries in order; `p/{webhook}/{order}/{id}` → [`Pending`]
//! (deleted once final); `a/{id}` → [`State`] (absent: never attempted);
//! for the interchange, `e/{code}` → [`External`], `o/{agency}` → its
//! identifier, `n/{agency}` → its name, `v/{arrival}` → the arrival,
//! `l/{doc}/{agency}` → the lead unit assigned, `y/{doc}/{agency}/{code}` →
//! that status was made, `r/{doc}/{agency}` → that recipient refused it.
//! `order` is the log position, padded, then `.0` for a message the fold
//! made or `.1` for a deadline message the sender made at that position.
//!
//! Must never: send anything about a confidential document, read the clock
//! in the fold, or reuse a delivery id for a different message.

pub mod dispatch;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::document::DocumentEvent;
use crate::domain::org::OrgEvent;
use crate::projections::feed::Issued;
use crate::projections::{padded, payload, Applied, Projection, ProjectionError, Tx};
use crate::store::tables::Table;
use crate::store::StoreError;

/// The table's name (`p.outbox`).
pub const NAME: &str = "outbox";

/// A webhook as the fold knows it: what it wants, from where in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    pub webhook: String,
    pub client: String,
    pub events: Vec<String>,
    pub agencies: Vec<String>,
    /// When it was subscribed: no deadline that passed before is told.
    pub since: DateTime<Utc>,
}

/// One message to one subscriber: fixed when made, the same body on every
/// attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `msg_…`: the `webhook-id` a receiver deduplicates on.
    pub id: String,
    pub webhook: String,
    pub client: String,
    /// `document.issued`, `document.received`, …
    pub kind: String,
    pub doc: Uuid,
    /// The log position of the event it tells of.
    pub position: u64,
    /// When that event was recorded.
    pub created_at: DateTime<Utc>,
    /// The JSON sent, byte for byte (empty when composed at send time).
    pub body: String,
    /// What to compose at send time instead (an edXML package: its files
    /// are too big to keep twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<Compose>,
}

/// A message composed when sent, from the log's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Compose {
    /// The document's edXML package for external recipient `agency`.
    Package { agency: String },
}

/// An external agency as the fold knows it (`e/{code}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub peer: String,
    pub organ_id: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet answered with a 2xx; tried again at `next_at`.
    #[default]
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Given up (older than the maximum age, or its webhook ended): the
    /// dead letter, until an admin re-drives it.
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Status::Pending, Status::Delivered, Status::Dead]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Attempts kept per delivery (the first ones and the latest).
pub const ATTEMPTS_KEPT: usize = 50;

/// A delivery's progress (`a/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct State {
    pub status: Status,
    /// How many attempts were made (the list keeps the last [`ATTEMPTS_KEPT`]).
    pub tries: u32,
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    /// The maximum age counts from here: the event's time, or the last
    /// re-drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// How often an admin re-drove it.
    #[serde(default)]
    pub redrives: u32,
}

impl State {
    /// Records an attempt, keeping the list bounded.
    pub fn push(&mut self, attempt: Attempt) {
        self.tries += 1;
        if self.attempts.len() == ATTEMPTS_KEPT {
            self.attempts.remove(ATTEMPTS_KEPT / 2);
        }
        self.attempts.push(attempt);
    }
}

/// The pending index's value: what ordering needs without reading the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub doc: Uuid,
}

/// The id of the delivery of the event at `position` (of `kind`) to `webhook`.
pub fn delivery_id(webhook: &str, position: u64, kind: &str) -> String {
    let digest = Sha256::digest(format!("{webhook}\n{position}\n{kind}").as_bytes());
    format!("msg_{}", hex::encode(&digest[..16]))
}

impl Delivery {
    /// Where it sorts among its webhook's deliveries: by log position, the
    /// fold's message before the sender's deadline messages made there.
    pub fn order(&self) -> String {
        let made_by_sender = self.kind.starts_with("deadline.");
        format!("{}.{}", padded(self.position), u8::from(made_by_sender))
    }

    /// Its key in the pending index.
    pub fn pending_key(&self) -> String {
        format!("p/{}/{}/{}", self.webhook, self.order(), self.id)
    }

    /// Its key in the webhook's index.
    pub fn index_key(&self) -> String {
        format!("i/{}/{}/{}", self.webhook, self.order(), self.id)
    }
}

/// The rows a new delivery adds: itself, its index entry, its pending entry.
pub(super) fn made(d: &Delivery) -> [(String, Vec<u8>); 3] {
    [
        (
            format!("q/{}", d.id),
            serde_json::to_vec(d).expect("a delivery serialises"),
        ),
        (d.index_key(), Vec::new()),
        (
            d.pending_key(),
            serde_json::to_vec(&Pending { doc: d.doc }).expect("a pending entry serialises"),
        ),
    ]
}

/// The fold half (see the module docs).
pub struct Outbox;

/// What one record tells integrations: its kind, the agencies it concerns
/// (a webhook limited to agencies gets it if any is theirs), and `data`.
struct Told {
    kind: &'static str,
    doc: Uuid,
    agencies: Vec<String>,
    data: serde_json::Value,
}

impl Projection for Outbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        if a.record.stream == crate::domain::org::STREAM {
            return subscription(&payload::<OrgEvent>(a.record)?, tx);
        }
        if a.record.event_type == crate::interchange::ARRIVED {
            return arrived(&payload(a.record)?, a.record, tx);
        }
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        tx.note_confidentiality(doc, event);
        if !crate::domain::access::integrations_may_see(tx.is_confidential(doc)?) {
            return Ok(());
        }
        match event {
            DocumentEvent::Issued(e) => {
                tx.put_json(format!("m/{doc}"), &Issued::of(doc, e));
                packages(doc, e, a.record, tx)?;
            }
            DocumentEvent::Arrived(e) => tx.put_json(format!("m/{doc}"), &Issued::arrived(doc, e)),
            _ => {}
        }
        interchange(doc, event, a.record, tx)?;
        watch_deadlines(doc, event, tx)?;
        let Some(told) = told(doc, event, a.record.position, tx)? else {
            return Ok(());
        };
        let subscribers: Vec<Subscriber> = tx
            .scan_prefix(b"s/")?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        let concerned: Vec<&str> = told.agencies.iter().map(String::as_str).collect();
        let body = serde_json::json!({
            "type": told.kind,
            "timestamp": a.record.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": told.data,
        })
        .to_string();
        for s in subscribers {
            if !crate::domain::org::wants(&s.events, &s.agencies, told.kind, &concerned) {
                continue;
            }
            let position = a.record.position;
            let id = delivery_id(&s.webhook, position, told.kind);
            if tx.get(format!("q/{id}").as_bytes())?.is_some() {
                continue;
            }
            let delivery = Delivery {
                id,
                webhook: s.webhook,
                client: s.client,
                kind: told.kind.into(),
                doc: told.doc,
                position,
                created_at: a.record.recorded_at,
                body: body.clone(),
                compose: None,
            };
            for (k, v) in made(&delivery) {
                tx.put(k, v);
            }
        }
        Ok(())
    }
}

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
fn unwatch(doc: Uuid, agency: &str, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
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
fn watch_deadlines(
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

/// The subscribers the fold knows now.
pub fn subscribers(table: &Table) -> Result<Vec<Subscriber>, OutboxError> {
    table
        .scan(b"s/", None, usize::MAX)?
        .iter()
        .map(|(k, v)| json(k, v))
        .collect()
}

/// The id of the message that a reply deadline (of `agency` for `doc`,
/// at `deadline`) reached `kind`, to `webhook`.
pub fn deadline_delivery_id(
    webhook: &str,
    doc: Uuid,
    agency: &str,
    kind: &str,
    deadline: NaiveDate,
) -> String {
    let digest = Sha256::digest(
        format!("{webhook}\ndeadline\n{doc}\n{agency}\n{kind}\n{deadline}").as_bytes(),
    );
    format!("msg_{}", hex::encode(&digest[..16]))
}

/// One package delivery per external recipient of an issued document, to
/// the peer its agency is reached through.
fn packages(
    doc: Uuid,
    e: &crate::domain::document::Issued,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    for r in &e.recipients {
        package(doc, &r.agency, "edxml.document", record, tx)?;
    }
    Ok(())
}

/// The package of `doc` for `agency`, if another system's: composed when
/// sent, to the peer the agency is reached through.
fn package(
    doc: Uuid,
    agency: &str,
    kind: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    let Some(external) = tx.get_json::<External>(format!("e/{agency}").as_bytes())? else {
        return Ok(());
    };
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, external.peer);
    let id = delivery_id(&subscriber, record.position, &format!("{kind}:{agency}"));
    if tx.get(format!("q/{id}").as_bytes())?.is_some() {
        return Ok(());
    }
    let delivery = Delivery {
        id,
        webhook: subscriber,
        client: String::new(),
        kind: kind.into(),
        doc,
        position: record.position,
        created_at: record.recorded_at,
        body: String::new(),
        compose: Some(Compose::Package {
            agency: agency.to_owned(),
        }),
    };
    for (k, v) in made(&delivery) {
        tx.put(k, v);
    }
    Ok(())
}

/// A package arrived: status 01 (Đã đến) goes back to the sending peer,
/// once for each of this system's agencies it was addressed to.
fn arrived(
    arrival: &crate::interchange::Arrived,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    tx.put_json(format!("v/{}", arrival.id), arrival);
    for agency in &arrival.to {
        status(
            arrival,
            agency,
            StatusCode::Arrived,
            StatusCode::Arrived.name(),
            record,
            tx,
        )?;
    }
    Ok(())
}

/// What a document's event tells the systems it travelled between: for
/// an arrived document, its status at this system's agency (02 refused,
/// 03 received, 04 assigned, 06 completed, 15/16 the recall answered);
/// for one issued here, a recall request (13) to each external recipient,
/// and a reply linked to an arrived document travels again, now saying
/// what it answers.
fn interchange(
    doc: Uuid,
    event: &DocumentEvent,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    if let Some(arrival) =
        tx.get_json::<crate::interchange::Arrived>(format!("v/{doc}").as_bytes())?
    {
        let (agency, code, description) = match event {
            DocumentEvent::Refused(e) => (&e.agency, StatusCode::Refused, e.reason.as_str()),
            DocumentEvent::Received(e) => (&e.agency, StatusCode::Received, ""),
            DocumentEvent::Assigned(e) => {
                tx.put(format!("l/{doc}/{}", e.agency), e.lead.clone().into_bytes());
                (&e.agency, StatusCode::Assigned, "")
            }
            DocumentEvent::Completed(e) => {
                let lead = tx.get(format!("l/{doc}/{}", e.agency).as_bytes())?;
                if lead.as_deref() != Some(e.unit.as_bytes()) {
                    return Ok(());
                }
                (&e.agency, StatusCode::Completed, "")
            }
            DocumentEvent::RecallAnswered(e) if e.agreed => {
                (&e.agency, StatusCode::RecallAgreed, e.reason.as_str())
            }
            DocumentEvent::RecallAnswered(e) => {
                (&e.agency, StatusCode::RecallRefused, e.reason.as_str())
            }
            _ => return Ok(()),
        };
        let description = if description.is_empty() {
            code.name()
        } else {
            description
        };
        return status(&arrival, agency, code, description, record, tx);
    }
    match event {
        // A recipient that refused it has nothing to give back, and owes
        // no reply.
        DocumentEvent::InterchangeStatus(e) if e.code == StatusCode::Refused.code() => {
            tx.put(format!("r/{doc}/{}", e.agency), Vec::new());
            unwatch(doc, &e.agency, tx)
        }
        DocumentEvent::Recalled(e) => {
            let Some(issued) = tx.get_json::<Issued>(format!("m/{doc}").as_bytes())? else {
                return Ok(());
            };
            for r in &issued.recipients {
                recall_request(&issued, &r.agency, &e.reason, record, tx)?;
            }
            Ok(())
        }
        DocumentEvent::ReplyLinked(e) => {
            let (Some(arrival), Some(reply)) = (
                tx.get_json::<crate::interchange::Arrived>(
                    format!("v/{}", e.in_reply_to).as_bytes(),
                )?,
                tx.get_json::<Issued>(format!("m/{doc}").as_bytes())?,
            ) else {
                return Ok(());
            };
            if reply
                .recipients
                .iter()
                .any(|r| r.agency == arrival.from_agency)
            {
                package(doc, &arrival.from_agency, "edxml.reply", record, tx)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether status `code` was already made for (`doc`, `agency`); marks it
/// made: each is sent at most once per document and agency.
fn once(
    doc: Uuid,
    agency: &str,
    code: crate::domain::interchange::StatusCode,
    tx: &mut Tx<'_>,
) -> Result<bool, ProjectionError> {
    let key = format!("y/{doc}/{agency}/{}", code.code());
    if tx.get(key.as_bytes())?.is_some() {
        return Ok(false);
    }
    tx.put(key, Vec::new());
    Ok(true)
}

/// Status 13 (Yêu cầu lấy lại) about `issued`, a document of this
/// system's recalled, to external recipient `agency`'s peer.
fn recall_request(
    issued: &Issued,
    agency: &str,
    reason: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::interchange::StatusCode;
    let code = StatusCode::RecallRequested;
    let (Some(external), Some(organ)) = (
        tx.get_json::<External>(format!("e/{agency}").as_bytes())?,
        tx.get(format!("o/{}", issued.agency).as_bytes())?,
    ) else {
        return Ok(());
    };
    if tx
        .get(format!("r/{}/{agency}", issued.doc).as_bytes())?
        .is_some()
        || !once(issued.doc, agency, code, tx)?
    {
        return Ok(());
    }
    let organ = String::from_utf8_lossy(&organ).into_owned();
    let name = name_of(&issued.agency, tx)?;
    let message = crate::interchange::edxml::MessageStatus {
        response_for: crate::interchange::edxml::ResponseFor {
            organ_id: organ.clone(),
            code: format!("{:02}/{}", issued.number, issued.symbol),
            promulgation_date: crate::interchange::edxml::write_date(issued.issued_on),
            document_id: issued.doc.to_string(),
        },
        from: crate::interchange::edxml::Organ {
            organ_id: organ,
            organ_name: name,
            ..Default::default()
        },
        status_code: code.code().into(),
        description: if reason.is_empty() {
            code.name().into()
        } else {
            reason
                .chars()
                .take(crate::domain::document::MAX_REASON)
                .collect()
        },
        timestamp: crate::interchange::edxml::write_timestamp(record.recorded_at),
        staff_info: None,
    };
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, external.peer);
    let kind = format!("edxml.status.{}", code.code());
    put_status(issued.doc, subscriber, kind, agency, message, record, tx);
    Ok(())
}

fn put_status(
    doc: Uuid,
    subscriber: String,
    kind: String,
    agency: &str,
    message: crate::interchange::edxml::MessageStatus,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) {
    let id = delivery_id(&subscriber, record.position, &format!("{kind}:{agency}"));
    let delivery = Delivery {
        id,
        webhook: subscriber,
        client: String::new(),
        kind,
        doc,
        position: record.position,
        created_at: record.recorded_at,
        body: message.to_xml(),
        compose: None,
    };
    for (k, v) in made(&delivery) {
        tx.put(k, v);
    }
}

/// One status message about `arrival` from this system's `agency`, to the
/// peer it came from: at most once per code (nothing if the agency has no
/// identifier).
fn status(
    arrival: &crate::interchange::Arrived,
    agency: &str,
    code: crate::domain::interchange::StatusCode,
    description: &str,
    record: &crate::store::codec::Record,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    let Some(organ) = tx.get(format!("o/{agency}").as_bytes())? else {
        return Ok(());
    };
    if !once(arrival.id, agency, code, tx)? {
        return Ok(());
    }
    let organ = String::from_utf8_lossy(&organ).into_owned();
    let subscriber = format!("{}{}", crate::interchange::PEER_PREFIX, arrival.peer);
    let kind = format!("edxml.status.{}", code.code());
    let message = crate::interchange::status_for(
        arrival,
        &organ,
        &name_of(agency, tx)?,
        code,
        description,
        record.recorded_at,
    );
    put_status(arrival.id, subscriber, kind, agency, message, record, tx);
    Ok(())
}

/// An agency's name, as the organisation's events gave it (its code when
/// they did not).
fn name_of(agency: &str, tx: &Tx<'_>) -> Result<String, ProjectionError> {
    Ok(tx
        .get(format!("n/{agency}").as_bytes())?
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_else(|| agency.to_owned()))
}

/// Keeps the subscribers as the organisation's events make and end them.
fn subscription(event: &OrgEvent, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
    match event {
        OrgEvent::WebhookSubscribed {
            id,
            client,
            events,
            agencies,
            at,
            ..
        } => tx.put_json(
            format!("s/{id}"),
            &Subscriber {
                webhook: id.clone(),
                client: client.clone(),
                events: events.clone(),
                agencies: agencies.clone(),
                since: *at,
            },
        ),
        OrgEvent::WebhookUnsubscribed { id, .. } => tx.delete(format!("s/{id}")),
        OrgEvent::AgencyIdentified {
            agency, organ_id, ..
        } => tx.put(format!("o/{agency}"), organ_id.clone().into_bytes()),
        OrgEvent::AgencyCreated { code, name, .. } => {
            tx.put(format!("n/{code}"), name.clone().into_bytes())
        }
        OrgEvent::ExternalAgencyRegistered {
            code,
            organ_id,
            peer,
            ..
        } => tx.put_json(
            format!("e/{code}"),
            &External {
                peer: peer.clone(),
                organ_id: organ_id.clone(),
            },
        ),
        OrgEvent::ClientRevoked { id, .. } => {
            for (key, value) in tx.scan_prefix(b"s/")? {
                let s: Option<Subscriber> = serde_json::from_slice(&value).ok();
                if s.is_some_and(|s| s.client == *id) {
                    tx.delete(key);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The reply a recipient gave, as integrations are told it.
#[derive(Serialize)]
struct ReplyFacts<'a> {
    agency: &'a str,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_due: Option<NaiveDate>,
    on_time: bool,
    replied_at: DateTime<Utc>,
}

/// What `event` tells integrations, if anything (events before the
/// document's issue tell nothing).
fn told(
    doc: Uuid,
    event: &DocumentEvent,
    cursor: u64,
    tx: &Tx<'_>,
) -> Result<Option<Told>, ProjectionError> {
    let kind = match event {
        DocumentEvent::Issued(_) => "document.issued",
        DocumentEvent::Recalled(_) => "document.recalled",
        DocumentEvent::Replaced(_) => "document.replaced",
        DocumentEvent::Received(_) => "document.received",
        DocumentEvent::Replied(_) => "document.replied",
        _ => return Ok(None),
    };
    let Some(document) = tx.get_json::<Issued>(format!("m/{doc}").as_bytes())? else {
        return Ok(None);
    };
    let mut agencies = vec![document.agency.clone()];
    let mut data = serde_json::json!({ "cursor": cursor });
    match event {
        DocumentEvent::Issued(_) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
        }
        DocumentEvent::Recalled(e) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
            data["reason"] = e.reason.clone().into();
        }
        DocumentEvent::Replaced(e) => {
            agencies.extend(document.recipients.iter().map(|r| r.agency.clone()));
            data["reason"] = e.reason.clone().into();
            // A confidential replacement is not named.
            if !tx.is_confidential(e.replacement)? {
                data["replacement"] = e.replacement.to_string().into();
                data["replacement_reference"] = e.replacement_reference.clone().into();
            }
        }
        DocumentEvent::Received(e) => {
            agencies.push(e.agency.clone());
            data["received"] = serde_json::json!({
                "agency": e.agency,
                "incoming_number": e.incoming_number,
                "register": e.register,
                "received_at": e.at,
            });
        }
        DocumentEvent::Replied(e) => {
            agencies.push(e.agency.clone());
            // A confidential reply is told as a fact, not named.
            let named = !tx.is_confidential(e.reply)?;
            data["reply"] = serde_json::to_value(ReplyFacts {
                agency: &e.agency,
                unit: &e.unit,
                reply: named.then_some(e.reply),
                reply_reference: named.then_some(e.reply_reference.as_str()),
                reply_due: e.reply_due,
                on_time: e.on_time,
                replied_at: e.at,
            })
            .expect("reply facts serialise");
        }
        _ => {}
    }
    data["document"] = serde_json::to_value(&document).expect("issued facts serialise");
    Ok(Some(Told {
        kind,
        doc,
        agencies,
        data,
    }))
}

/// A delivery and where it stands, as admins read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    #[serde(flatten)]
    pub delivery: Delivery,
    #[serde(flatten)]
    pub state: State,
}

/// Why a delivery could not be read or re-driven.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("no delivery {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("row {0} does not decode: {1}")]
    Decode(String, String),
}

fn json<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, OutboxError> {
    serde_json::from_slice(bytes)
        .map_err(|e| OutboxError::Decode(String::from_utf8_lossy(key).into_owned(), e.to_string()))
}

/// The delivery `id` and its state.
pub fn report(table: &Table, id: &str) -> Result<Report, OutboxError> {
    let key = format!("q/{id}");
    let bytes = table
        .get(key.as_bytes())?
        .ok_or_else(|| OutboxError::NotFound(id.into()))?;
    let delivery: Delivery = json(key.as_bytes(), &bytes)?;
    let state_key = format!("a/{id}");
    let state = match table.get(state_key.as_bytes())? {
        Some(b) => json(state_key.as_bytes(), &b)?,
        None => State {
            next_at: Some(delivery.created_at),
            since: Some(delivery.created_at),
            ..State::default()
        },
    };
    Ok(Report { delivery, state })
}

/// Up to `limit` deliveries of `webhook` after the delivery `after` (an
/// id of this webhook's), in order, optionally only those with `status`;
/// and the id to ask after for the next page.
pub fn list(
    table: &Table,
    webhook: &str,
    after: Option<&str>,
    status: Option<Status>,
    limit: usize,
) -> Result<(Vec<Report>, Option<String>), OutboxError> {
    let prefix = format!("i/{webhook}/");
    let start = match after {
        Some(id) => {
            let r = report(table, id)?;
            if r.delivery.webhook != webhook {
                return Err(OutboxError::NotFound(id.into()));
            }
            Some(r.delivery.index_key())
        }
        None => None,
    };
    let mut out = Vec::new();
    let mut last = None;
    let mut from = start;
    // Filtering by status reads on, a page at a time, until a page is full.
    'pages: loop {
        let rows = table.scan(prefix.as_bytes(), from.as_deref().map(str::as_bytes), 256)?;
        if rows.is_empty() {
            break;
        }
        for (key, _) in &rows {
            if out.len() == limit {
                break 'pages;
            }
            let key = String::from_utf8_lossy(key).into_owned();
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let r = report(table, id)?;
            last = Some(id.to_owned());
            if status.is_none_or(|s| s == r.state.status) {
                out.push(r);
            }
        }
        from = rows
            .last()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned());
    }
    let next = if out.len() == limit { last } else { None };
    Ok((out, next))
}

/// Counts of a webhook's deliveries by status.
pub fn counts(table: &Table, webhook: &str) -> Result<[u64; 3], OutboxError> {
    let mut counts = [0; 3];
    for (key, _) in table.scan(format!("i/{webhook}/").as_bytes(), None, usize::MAX)? {
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some(id) = key.rsplit('/').next() else {
            continue;
        };
        let status = match table.get(format!("a/{id}").as_bytes())? {
            Some(b) => json::<State>(key.as_bytes(), &b)?.status,
            None => Status::Pending,
        };
        counts[status as usize] += 1;
    }
    Ok(counts)
}
