//! The deadline maker: open reply deadlines that came due soon or passed
//! become `deadline.due_soon` and `deadline.overdue` deliveries.
//!
//! Each check reads only what is due: the fold's watches (`w/`, in
//! deadline order) up to the first neither due soon nor overdue; a watch
//! told due soon moves to the sender's `u/{instant}/{doc}/{agency}`, keyed
//! by the instant it passes, and is read again only then, if the fold
//! still watches that deadline (`x/`). A watch told overdue is gone.
//!
//! Must never: tell one deadline twice of one kind to one webhook, tell a
//! subscriber of a deadline that passed before it subscribed, make two
//! bodies under one delivery id, or read every open watch at each check.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use super::Sender;
use crate::domain::calendar::{Calendar, VN_UTC_OFFSET_SECONDS};
use crate::domain::org::WebhookKind;
use crate::outbox::counters::{put_sender, sender_counts};
use crate::outbox::{json, OutboxError, State, Watch};
use crate::projections::padded;
use crate::store::tables::Changes;

/// Rows read at a time.
const PAGE: usize = 256;

/// The sender's key for a watch told due soon: by the instant it passes.
fn told_key(calendar: &Calendar, w: &Watch) -> Vec<u8> {
    let ms = u64::try_from(calendar.deadline_end(w.deadline).timestamp_millis()).unwrap_or(0);
    format!("u/{}/{}/{}", padded(ms), w.doc, w.agency).into_bytes()
}

/// The instant in a `u/` key, in Unix milliseconds.
fn told_instant(key: &[u8]) -> Option<i64> {
    std::str::from_utf8(key.get(2..22)?).ok()?.parse().ok()
}

impl Sender {
    /// Makes a delivery for each open reply deadline that is now due soon
    /// or overdue, to each webhook that wants it and has none for that
    /// deadline and kind yet; returns how many deliveries it made. Reads
    /// only the watches due (module docs).
    pub(super) fn deadlines(&self) -> Result<usize, OutboxError> {
        let now = (self.env.now)();
        let table = &self.env.table;
        let calendar = &self.env.calendar;
        let mut changes = Changes::new();
        let mut todo: Vec<(Watch, WebhookKind)> = Vec::new();
        // Watches told nothing yet, in deadline order.
        let mut after: Option<Vec<u8>> = None;
        'fresh: loop {
            let rows = table.scan(b"w/", after.as_deref(), PAGE)?;
            let Some((last, _)) = rows.last() else {
                break;
            };
            after = Some(last.clone());
            for (key, value) in &rows {
                let w: Watch = match json(key, value) {
                    Ok(w) => w,
                    Err(e) => {
                        self.unreadable(&e);
                        continue;
                    }
                };
                if calendar.is_overdue(w.deadline, now) {
                    changes.insert(key.clone(), None);
                    todo.push((w, WebhookKind::Overdue));
                } else if calendar.is_due_soon(w.deadline, now, self.env.due_soon_days) {
                    changes.insert(key.clone(), None);
                    changes.insert(told_key(calendar, &w), Some(value.clone()));
                    todo.push((w, WebhookKind::DueSoon));
                } else {
                    break 'fresh;
                }
            }
        }
        // Watches told due soon, in the order they pass.
        let now_ms = now.timestamp_millis();
        let mut after: Option<Vec<u8>> = None;
        'told: loop {
            let rows = table.scan(b"u/", after.as_deref(), PAGE)?;
            let Some((last, _)) = rows.last() else {
                break;
            };
            after = Some(last.clone());
            for (key, value) in &rows {
                if told_instant(key).is_some_and(|at| at > now_ms) {
                    break 'told;
                }
                changes.insert(key.clone(), None);
                let w: Watch = match json(key, value) {
                    Ok(w) => w,
                    Err(e) => {
                        self.unreadable(&e);
                        continue;
                    }
                };
                // A reply, recall or extension since ended or moved it.
                let x = table.get(format!("x/{}/{}", w.doc, w.agency).as_bytes())?;
                if x.as_deref() != Some(w.key().as_bytes()) {
                    continue;
                }
                if calendar.is_overdue(w.deadline, now) {
                    changes.insert(w.key().into_bytes(), None);
                    todo.push((w, WebhookKind::Overdue));
                } else {
                    // The calendar moved its end on since: wait for that.
                    changes.insert(told_key(calendar, &w), Some(value.clone()));
                }
            }
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let mut made: BTreeMap<String, u64> = BTreeMap::new();
        if !todo.is_empty() {
            self.tell(&todo, now, &mut changes, &mut made)?;
        }
        // Written with the counts of what it made, under the counting lock.
        let _counting = self.counting();
        for (webhook, n) in &made {
            let mut counts = sender_counts(table, webhook)?;
            counts.made += n;
            put_sender(&mut changes, webhook, &counts);
        }
        table.write_outside(changes)?;
        let made = made.values().sum::<u64>();
        if made > 0 {
            self.wake.notify_one();
        }
        Ok(usize::try_from(made).unwrap_or(usize::MAX))
    }

    /// Adds to `changes` the deliveries `todo` makes (counted per webhook
    /// in `made`).
    fn tell(
        &self,
        todo: &[(Watch, WebhookKind)],
        now: DateTime<Utc>,
        changes: &mut Changes,
        made: &mut BTreeMap<String, u64>,
    ) -> Result<(), OutboxError> {
        let table = &self.env.table;
        let calendar = &self.env.calendar;
        // Read after the watches: every message of theirs the fold made
        // sorts before these.
        let position = table.checkpoint()?;
        // One that does not decode: nothing is made (an overdue deadline
        // told to the others would be dropped before it is told to it).
        let subscribers = crate::outbox::subscribers(table).inspect_err(|e| self.unreadable(e))?;
        for (w, kind) in todo {
            let kind = *kind;
            let concerned = [w.agency.as_str(), w.issuer.as_str()];
            let passed_at = calendar.deadline_end(w.deadline);
            let m = format!("m/{}", w.doc);
            let document = match table.get(m.as_bytes())? {
                Some(bytes) => match json::<serde_json::Value>(m.as_bytes(), &bytes) {
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
                let wants =
                    crate::domain::org::wants(&s.events, &s.agencies, kind.as_str(), &concerned);
                // A deadline that passed before the subscription is not news.
                if !wants || (kind == WebhookKind::Overdue && passed_at < s.since) {
                    continue;
                }
                let id = crate::outbox::deadline_delivery_id(
                    &s.webhook, w.doc, &w.agency, kind, w.deadline,
                );
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
                *made.entry(s.webhook.clone()).or_default() += 1;
            }
        }
        Ok(())
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
