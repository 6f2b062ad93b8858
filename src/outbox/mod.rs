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
//! `c/{doc}` → the draft is confidential; `w/{doc}/{agency}` → [`Watch`]
//! (an open reply deadline); `q/{id}` → [`Delivery`];
//! `i/{webhook}/{position:020}/{id}` → the webhook's deliveries in order;
//! `p/{position:020}/{id}` → [`Pending`] (deleted once final); `a/{id}` →
//! [`State`] (absent: never attempted).
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
    /// The JSON sent, byte for byte.
    pub body: String,
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
    pub webhook: String,
    pub doc: Uuid,
}

/// The id of the delivery of the event at `position` (of `kind`) to `webhook`.
pub fn delivery_id(webhook: &str, position: u64, kind: &str) -> String {
    let digest = Sha256::digest(format!("{webhook}\n{position}\n{kind}").as_bytes());
    format!("msg_{}", hex::encode(&digest[..16]))
}

/// Key of a delivery's pending entry.
pub fn pending_key(position: u64, id: &str) -> String {
    format!("p/{}/{id}", padded(position))
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
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        tx.note_confidentiality(doc, event);
        if !crate::domain::access::integrations_may_see(tx.is_confidential(doc)?) {
            return Ok(());
        }
        if let DocumentEvent::Issued(e) = event {
            tx.put_json(format!("m/{doc}"), &Issued::of(doc, e));
        }
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
            tx.put_json(
                format!("q/{id}"),
                &Delivery {
                    id: id.clone(),
                    webhook: s.webhook.clone(),
                    client: s.client.clone(),
                    kind: told.kind.into(),
                    doc: told.doc,
                    position,
                    created_at: a.record.recorded_at,
                    body: body.clone(),
                },
            );
            tx.put(
                format!("i/{}/{}/{id}", s.webhook, padded(position)),
                Vec::new(),
            );
            tx.put_json(
                pending_key(position, &id),
                &Pending {
                    webhook: s.webhook,
                    doc: told.doc,
                },
            );
        }
        Ok(())
    }
}

/// An open reply deadline the sender watches for `deadline.due_soon` and
/// `deadline.overdue` (`w/{doc}/{agency}`).
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

/// Keeps `w/` rows for the reply deadlines still open: set at issue,
/// moved by an extension, gone with the reply, a recall or a replacement.
fn watch_deadlines(
    doc: Uuid,
    event: &DocumentEvent,
    tx: &mut Tx<'_>,
) -> Result<(), ProjectionError> {
    use crate::domain::document::DeadlineScope;
    match event {
        DocumentEvent::Issued(e) => {
            for r in &e.recipients {
                if let Some(deadline) = r.reply_due {
                    tx.put_json(
                        format!("w/{doc}/{}", r.agency),
                        &Watch {
                            doc,
                            agency: r.agency.clone(),
                            issuer: e.seal_payload.signed.agency.clone(),
                            deadline,
                        },
                    );
                }
            }
        }
        DocumentEvent::DeadlineExtended(e) if e.scope == DeadlineScope::Reply => {
            let key = format!("w/{doc}/{}", e.agency);
            if let Some(mut w) = tx.get_json::<Watch>(key.as_bytes())? {
                w.deadline = e.new;
                tx.put_json(key, &w);
            }
        }
        DocumentEvent::Replied(e) => tx.delete(format!("w/{doc}/{}", e.agency)),
        DocumentEvent::Recalled(_) | DocumentEvent::Replaced(_) => {
            for (key, _) in tx.scan_prefix(format!("w/{doc}/").as_bytes())? {
                tx.delete(key);
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

/// Keeps the subscribers as the organisation's events make and end them.
fn subscription(event: &OrgEvent, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
    match event {
        OrgEvent::WebhookSubscribed {
            id,
            client,
            events,
            agencies,
            ..
        } => tx.put_json(
            format!("s/{id}"),
            &Subscriber {
                webhook: id.clone(),
                client: client.clone(),
                events: events.clone(),
                agencies: agencies.clone(),
            },
        ),
        OrgEvent::WebhookUnsubscribed { id, .. } => tx.delete(format!("s/{id}")),
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
    reply: Uuid,
    reply_reference: &'a str,
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
            data["replacement"] = e.replacement.to_string().into();
            data["replacement_reference"] = e.replacement_reference.clone().into();
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
            data["reply"] = serde_json::to_value(ReplyFacts {
                agency: &e.agency,
                unit: &e.unit,
                reply: e.reply,
                reply_reference: &e.reply_reference,
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

/// Up to `limit` deliveries of `webhook` after log position `after`, in
/// log order, optionally only those with `status`; and the position to
/// ask after for the next page.
pub fn list(
    table: &Table,
    webhook: &str,
    after: u64,
    status: Option<Status>,
    limit: usize,
) -> Result<(Vec<Report>, Option<u64>), OutboxError> {
    let prefix = format!("i/{webhook}/");
    let from = format!("{prefix}{}", padded(after.saturating_add(1)));
    let mut out = Vec::new();
    let mut last = None;
    // Filtering by status reads on until a page is full.
    for (key, _) in table.scan_from(prefix.as_bytes(), from.as_bytes(), usize::MAX)? {
        let key = String::from_utf8_lossy(&key).into_owned();
        let mut parts = key[prefix.len()..].splitn(2, '/');
        let position: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let Some(id) = parts.next() else { continue };
        if out.len() == limit {
            break;
        }
        last = Some(position);
        let r = report(table, id)?;
        if status.is_none_or(|s| s == r.state.status) {
            out.push(r);
        }
    }
    let next = (out.len() == limit).then_some(last).flatten();
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
