//! The deadline maker: open reply deadlines that came due soon or passed
//! become `deadline.due_soon` and `deadline.overdue` deliveries.
//!
//! Must never: tell one deadline twice of one kind to one webhook, tell a
//! subscriber of a deadline that passed before it subscribed, or make two
//! bodies under one delivery id.

use crate::domain::org::WebhookKind;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use crate::domain::calendar::{Calendar, VN_UTC_OFFSET_SECONDS};
use crate::outbox::{json, OutboxError, State};
use crate::store::tables::Changes;

use super::Sender;

impl Sender {

    /// Makes a delivery for each open reply deadline that is now due soon
    /// or overdue, to each webhook that wants it and has none for that
    /// deadline and kind yet, and stops watching deadlines told overdue;
    /// returns how many deliveries it made. Watches are read in deadline
    /// order and the reading stops at the first neither due soon nor
    /// overdue.
    pub(super) fn deadlines(&self) -> Result<usize, OutboxError> {
        let now = (self.env.now)();
        let table = &self.env.table;
        let calendar = &self.env.calendar;
        let mut watches = Vec::new();
        for (key, value) in table.scan(b"w/", None, usize::MAX)? {
            let w: crate::outbox::Watch = match json(&key, &value) {
                Ok(w) => w,
                Err(e) => {
                    self.unreadable(&e);
                    continue;
                }
            };
            if calendar.is_overdue(w.deadline, now) {
                watches.push((w, WebhookKind::Overdue));
            } else if calendar.is_due_soon(w.deadline, now, self.env.due_soon_days) {
                watches.push((w, WebhookKind::DueSoon));
            } else {
                break;
            }
        }
        if watches.is_empty() {
            return Ok(0);
        }
        // Read after the watches: every message of theirs the fold made
        // sorts before these.
        let position = table.checkpoint()?;
        // One that does not decode: nothing is made (an overdue deadline
        // told to the others would be dropped before it is told to it).
        let subscribers = crate::outbox::subscribers(table).inspect_err(|e| self.unreadable(e))?;
        let mut changes = Changes::new();
        let mut made = 0;
        for (w, kind) in watches {
            let concerned = [w.agency.as_str(), w.issuer.as_str()];
            let passed_at = calendar.deadline_end(w.deadline);
            let document = match table.get(format!("m/{}", w.doc).as_bytes())? {
                Some(bytes) => match json::<serde_json::Value>(format!("m/{}", w.doc).as_bytes(), &bytes) {
                    Ok(d) => d,
                    Err(e) => {
                        self.unreadable(&e);
                        continue;
                    }
                },
                None => continue,
            };
            // Stamped with the instant the deadline reached `kind`, not
            // with this check's clock: a sender that takes over (or a
            // restored table) makes the same bytes under the same id.
            let stamp = match kind {
                WebhookKind::Overdue => passed_at,
                _ => due_soon_at(calendar, w.deadline, self.env.due_soon_days),
            };
            let body = serde_json::json!({
                "type": kind,
                "timestamp": stamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": {
                    "document": document,
                    "deadline": { "agency": w.agency, "reply_due": w.deadline, "status": &kind.as_str()["deadline.".len()..] },
                },
            })
            .to_string();
            for s in &subscribers {
                let wants = crate::domain::org::wants(&s.events, &s.agencies, kind.as_str(), &concerned);
                // A deadline that passed before the subscription is not news.
                if !wants || (kind == WebhookKind::Overdue && passed_at < s.since) {
                    continue;
                }
                let id =
                    crate::outbox::deadline_delivery_id(&s.webhook, w.doc, &w.agency, kind, w.deadline);
                if table.get(format!("q/{id}").as_bytes())?.is_some() {
                    continue;
                }
                let delivery = crate::outbox::Delivery {
                    id,
                    webhook: s.webhook.clone(),
                    client: s.client.clone(),
                    kind: kind.as_str().into(),
                    doc: w.doc,
                    position,
                    created_at: stamp,
                    body: body.clone(),
                    compose: None,
                };
                // Due now, its maximum age counted from now (not from the
                // stamp, which a late check leaves in the past).
                let state = State {
                    next_at: Some(now),
                    since: Some(now),
                    ..State::default()
                };
                changes.insert(
                    format!("a/{}", delivery.id).into_bytes(),
                    Some(serde_json::to_vec(&state).expect("a state serialises")),
                );
                for (k, v) in crate::outbox::made(&delivery) {
                    changes.insert(k.into_bytes(), Some(v));
                }
                made += 1;
            }
            if kind == WebhookKind::Overdue {
                changes.insert(w.key().into_bytes(), None);
            }
        }
        if !changes.is_empty() {
            table.write_outside(changes)?;
            self.wake.notify_one();
        }
        Ok(made)
    }
}

/// The instant a reply deadline `due` came due soon (at most `within`
/// working days left): 00:00 +07:00 of the first such day. A fact of the
/// calendar, the same whenever and wherever it is computed.
pub(super) fn due_soon_at(calendar: &Calendar, due: NaiveDate, within: u32) -> DateTime<Utc> {
    let end = calendar.roll_forward(due);
    let mut day = end;
    // Back a day at a time while the day before is still due soon (a
    // bounded walk: `within` working days and the holidays among them).
    for _ in 0..(i64::from(within) * 7 + 366) {
        match day.pred_opt() {
            Some(before) if calendar.working_days_between(before, end) <= i64::from(within) => {
                day = before;
            }
            _ => break,
        }
    }
    day.and_time(NaiveTime::MIN)
        .checked_sub_signed(TimeDelta::seconds(VN_UTC_OFFSET_SECONDS))
        .unwrap_or(chrono::NaiveDateTime::MIN)
        .and_utc()
}
