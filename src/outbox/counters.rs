//! Counts of each webhook's deliveries by status, kept in the outbox's
//! table beside the deliveries and written in the same batch as the change
//! they count, so `GET /v1/admin/webhooks` reads two rows per webhook, not
//! every delivery it ever had.
//!
//! Each counter has one writer, so no update is lost between the fold's
//! thread and the sender's tasks:
//! - `k/{webhook}/made` (the fold's): deliveries the fold made;
//! - `k/{webhook}/sender` (the sender's, under its lock): deadline
//!   messages it made, and how many deliveries are delivered and dead.
//!
//! Pending is made minus delivered minus dead. A table from before the
//! counters is counted once by each writer (`K/fold`, `K/sender` mark it
//! done); until both are, [`counted`] says so and the reader counts rows.
//!
//! Must never: count a delivery twice, or be written apart from the change
//! it counts.

use serde::{Deserialize, Serialize};

use super::{json, OutboxError, State, Status};
use crate::projections::{ProjectionError, Tx};
use crate::store::tables::{Changes, Table};

/// Set once the fold's counters cover every delivery it made.
const FOLD_DONE: &[u8] = b"K/fold";
/// Set once the sender's counters cover every delivery.
const SENDER_DONE: &[u8] = b"K/sender";

fn made_key(webhook: &str) -> String {
    format!("k/{webhook}/made")
}

fn sender_key(webhook: &str) -> String {
    format!("k/{webhook}/sender")
}

/// The sender's counts for one webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderCounts {
    /// Deadline messages the sender made.
    pub made: u64,
    pub delivered: u64,
    pub dead: u64,
}

impl SenderCounts {
    /// Moves one delivery from status `from` to `to`.
    pub fn moved(&mut self, from: Status, to: Status) {
        match from {
            Status::Pending => {}
            Status::Delivered => self.delivered = self.delivered.saturating_sub(1),
            Status::Dead => self.dead = self.dead.saturating_sub(1),
        }
        match to {
            Status::Pending => {}
            Status::Delivered => self.delivered += 1,
            Status::Dead => self.dead += 1,
        }
    }
}

fn number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The webhook (or peer) and whether the sender made it, from an `i/` key
/// (`i/{webhook}/{position}.{0|1}/{id}`).
fn parse_index(key: &[u8]) -> Option<(String, bool)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.strip_prefix("i/")?.rsplitn(3, '/');
    let (_id, order, webhook) = (parts.next()?, parts.next()?, parts.next()?);
    Some((webhook.to_owned(), order.ends_with(".1")))
}

/// The fold's side: counts once what it made before the counters, then
/// nothing (call before each record).
pub(super) fn ensure_fold(tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
    if tx.get(FOLD_DONE)?.is_some() {
        return Ok(());
    }
    let mut made: std::collections::BTreeMap<String, u64> = Default::default();
    for (key, _) in tx.scan_prefix(b"i/")? {
        if let Some((webhook, false)) = parse_index(&key) {
            *made.entry(webhook).or_default() += 1;
        }
    }
    for (webhook, n) in made {
        tx.put(made_key(&webhook), n.to_string().into_bytes());
    }
    tx.put(FOLD_DONE.to_vec(), Vec::new());
    Ok(())
}

/// The fold made one more delivery to `webhook`.
pub(super) fn fold_made(tx: &mut Tx<'_>, webhook: &str) -> Result<(), ProjectionError> {
    let key = made_key(webhook);
    let n = tx
        .get(key.as_bytes())?
        .and_then(|b| number(&b))
        .unwrap_or(0);
    tx.put(key, (n + 1).to_string().into_bytes());
    Ok(())
}

/// The sender's counts of `webhook` now (zero when none).
pub fn sender_counts(table: &Table, webhook: &str) -> Result<SenderCounts, OutboxError> {
    let key = sender_key(webhook);
    match table.get(key.as_bytes())? {
        Some(b) => json(key.as_bytes(), &b),
        None => Ok(SenderCounts::default()),
    }
}

/// Adds the sender's counts of `webhook` to a batch.
pub fn put_sender(changes: &mut Changes, webhook: &str, counts: &SenderCounts) {
    changes.insert(
        sender_key(webhook).into_bytes(),
        Some(serde_json::to_vec(counts).expect("counts serialise")),
    );
}

/// The sender's side for a table from before the counters: counts every
/// delivery's status once, as a batch (empty when already done). Call
/// under the sender's counting lock.
pub fn backfill_sender(table: &Table) -> Result<Changes, OutboxError> {
    let mut changes = Changes::new();
    if table.get(SENDER_DONE)?.is_some() {
        return Ok(changes);
    }
    let mut counts: std::collections::BTreeMap<String, SenderCounts> = Default::default();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = table.scan(b"i/", after.as_deref(), 1_000)?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        for (key, _) in &rows {
            let Some((webhook, by_sender)) = parse_index(key) else {
                continue;
            };
            let Some(id) = std::str::from_utf8(key)
                .ok()
                .and_then(|k| k.rsplit('/').next())
            else {
                continue;
            };
            let c = counts.entry(webhook).or_default();
            if by_sender {
                c.made += 1;
            }
            let state_key = format!("a/{id}");
            if let Some(b) = table.get(state_key.as_bytes())? {
                let state: State = json(state_key.as_bytes(), &b)?;
                c.moved(Status::Pending, state.status);
            }
        }
    }
    for (webhook, c) in &counts {
        put_sender(&mut changes, webhook, c);
    }
    changes.insert(SENDER_DONE.to_vec(), Some(Vec::new()));
    Ok(changes)
}

/// `webhook`'s deliveries as [pending, delivered, dead], from the counters;
/// `None` while a table from before them is not yet counted.
pub fn counted(table: &Table, webhook: &str) -> Result<Option<[u64; 3]>, OutboxError> {
    if table.get(FOLD_DONE)?.is_none() || table.get(SENDER_DONE)?.is_none() {
        return Ok(None);
    }
    let made = table
        .get(made_key(webhook).as_bytes())?
        .and_then(|b| number(&b))
        .unwrap_or(0);
    let s = sender_counts(table, webhook)?;
    let pending = (made + s.made).saturating_sub(s.delivered + s.dead);
    Ok(Some([pending, s.delivered, s.dead]))
}
