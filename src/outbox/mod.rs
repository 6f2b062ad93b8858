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
//! Files: this one holds the types and ids; `fold.rs` the fold,
//! `watches.rs` the open deadlines, `peers.rs` the interchange's
//! deliveries, `read.rs` the admin's reads, `dispatch/` the sender.
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
//! The sender's rows: `u/{instant}/{doc}/{agency}` → a [`Watch`] told
//! due soon, by the instant it passes; `k/{webhook}/made` and
//! `k/{webhook}/sender` → counts (`counters.rs`), `K/fold` and `K/sender`
//! → counted from the start.
//! `order` is the log position, padded, then `.0` for a message the fold
//! made or `.1` for a deadline message the sender made at that position.
//!
//! Must never: send anything about a confidential document, read the clock
//! in the fold, or reuse a delivery id for a different message.

pub mod counters;
pub mod dispatch;
mod fold;
mod peers;
mod read;
mod watches;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::projections::padded;
use crate::store::StoreError;

pub use fold::Outbox;
pub use read::{counts, list, report, subscribers};
pub use watches::Watch;

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

/// Puts a new delivery's rows into the fold's batch and counts it; one
/// already made (the same id) is left as it is.
pub(super) fn make(
    tx: &mut crate::projections::Tx<'_>,
    d: &Delivery,
) -> Result<(), crate::projections::ProjectionError> {
    if tx.get(format!("q/{}", d.id).as_bytes())?.is_some() {
        return Ok(());
    }
    for (k, v) in made(d) {
        tx.put(k, v);
    }
    counters::fold_made(tx, &d.webhook)
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

/// The id of the message that a reply deadline (of `agency` for `doc`,
/// at `deadline`) reached `kind`, to `webhook`.
pub fn deadline_delivery_id(
    webhook: &str,
    doc: Uuid,
    agency: &str,
    kind: crate::domain::org::WebhookKind,
    deadline: NaiveDate,
) -> String {
    let kind = kind.as_str();
    let digest = Sha256::digest(
        format!("{webhook}\ndeadline\n{doc}\n{agency}\n{kind}\n{deadline}").as_bytes(),
    );
    format!("msg_{}", hex::encode(&digest[..16]))
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
