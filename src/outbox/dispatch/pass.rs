//! One pass of the sender: which pending deliveries may go now.
//!
//! Must never: start a delivery while an earlier one of the same document
//! to the same webhook is pending, exceed a webhook's concurrency, or let
//! one webhook's backlog hide another's.

use std::collections::HashSet;
use std::time::Duration;

use super::{Sender, IDLE, PASS};
use crate::outbox::{json, report, OutboxError, Pending, Report, Status};

impl Sender {
    /// Finds every delivery that may go now, and marks it in flight;
    /// returns them and how long until the next one is due. Each webhook's
    /// pending entries are read apart (up to [`PASS`] each), so one
    /// receiver's backlog never hides another's.
    pub(super) fn pass(&self) -> Result<(Duration, Vec<Report>), OutboxError> {
        if !self.sending() || *self.stop.borrow() {
            return Ok((IDLE, Vec::new()));
        }
        let now = (self.env.now)();
        let table = &self.env.table;
        let mut wait = IDLE;
        let mut due = Vec::new();
        let mut from = b"p/".to_vec();
        // One webhook at a time: its first key names it; the next starts
        // past its entries ('0' sorts right after the '/' ending its id).
        while let Some((first, _)) = table.scan_from(b"p/", &from, 1)?.into_iter().next() {
            let first = String::from_utf8_lossy(&first).into_owned();
            let Some(webhook) = first["p/".len()..].split('/').next().map(str::to_owned) else {
                break;
            };
            from = format!("p/{webhook}0").into_bytes();
            // Without the key no webhook message can be signed: they wait.
            if self.env.key.is_none() && !webhook.starts_with(crate::interchange::PEER_PREFIX) {
                continue;
            }
            let mut heads: HashSet<uuid::Uuid> = HashSet::new();
            for (key, value) in table.scan(format!("p/{webhook}/").as_bytes(), None, PASS)? {
                let p: Pending = match json(&key, &value) {
                    Ok(p) => p,
                    Err(e) => {
                        self.unreadable(&e);
                        continue;
                    }
                };
                // Only the first pending delivery of a document to a webhook.
                if !heads.insert(p.doc) {
                    continue;
                }
                let key = String::from_utf8_lossy(&key).into_owned();
                let Some(id) = key.rsplit('/').next() else {
                    continue;
                };
                let mut in_flight = self.lock();
                if in_flight.contains_key(id)
                    || in_flight.values().filter(|w| **w == webhook).count()
                        >= self.env.policy.concurrency
                {
                    continue;
                }
                let r = match report(table, id) {
                    Ok(r) => r,
                    // Loud, and the others still go.
                    Err(e @ OutboxError::Decode(..)) => {
                        self.unreadable(&e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // Answered between the scan and now (its entry is gone).
                if r.state.status != Status::Pending {
                    continue;
                }
                let at = r.state.next_at.unwrap_or(r.delivery.created_at);
                if at > now {
                    wait = wait.min((at - now).to_std().unwrap_or_default());
                    continue;
                }
                in_flight.insert(id.to_owned(), webhook.clone());
                due.push(r);
            }
        }
        self.passes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok((wait, due))
    }
}
