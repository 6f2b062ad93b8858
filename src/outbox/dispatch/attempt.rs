//! One attempt at a delivery and what it records: the answer, the backoff,
//! the dead letter; the marks shared among nodes; the admin's re-drive.
//!
//! Must never: follow a redirect, send without a signature, start an
//! attempt on a state a re-drive replaces, or lose an answer once given.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{
    backoff, rand_u32, ComposeError, RedriveError, Sender, Target, Unsendable, MARK_DEAD,
    MARK_DELIVERED, MARK_PENDING,
};
use crate::outbox::counters::{put_sender, sender_counts};
use crate::outbox::{report, Attempt, OutboxError, Pending, Report, State, Status};
use crate::store::tables::Changes;

impl Sender {
    /// What another node recorded of delivery `id`, if it is final there.
    async fn marked_final(&self, id: &str) -> Option<Status> {
        let marks = self.env.marks.as_ref()?;
        match marks.get(id).await {
            Ok(Some(v)) if v == MARK_DELIVERED => Some(Status::Delivered),
            Ok(Some(v)) if v == MARK_DEAD => Some(Status::Dead),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(delivery = %id, error = %e, "the shared marks could not be read; sending anyway");
                None
            }
        }
    }

    /// Tells the other nodes what became of delivery `id`.
    async fn mark(&self, id: &str, value: &[u8]) {
        if let Some(marks) = &self.env.marks {
            if let Err(e) = marks.put(id, value).await {
                tracing::warn!(delivery = %id, error = %e, "the shared marks could not be written");
            }
        }
    }

    /// Sends `r` once and records the answer.
    pub(super) async fn attempt(&self, r: Report) -> Result<(), OutboxError> {
        let Report {
            delivery,
            mut state,
        } = r;
        let now = (self.env.now)();
        if let Some(status) = self.marked_final(&delivery.id).await {
            state.push(Attempt {
                at: now,
                duration_ms: 0,
                status: None,
                error: Some(format!("{} by another node of the log", status.as_str())),
            });
            return self.settle(&delivery, state, status);
        }
        let since = state.since.unwrap_or(delivery.created_at);
        let started = Instant::now();
        let sent = match self.target(&delivery, now).await {
            Err(Unsendable::Dead(why)) => {
                state.push(Attempt {
                    at: now,
                    duration_ms: 0,
                    status: None,
                    error: Some(why),
                });
                self.mark(&delivery.id, MARK_DEAD).await;
                return self.settle(&delivery, state, Status::Dead);
            }
            Err(Unsendable::NotYet(why)) => crate::webhooks::Sent {
                status: None,
                error: Some(why),
                retry_after: None,
            },
            // The lease may have moved since the pass (or while a package
            // was composed): only its holder sends, so ask right before.
            Ok(_) if !self.sending() => {
                tracing::info!(delivery = %delivery.id, "not sent: this node no longer acts for the log");
                return Ok(());
            }
            Ok(Target::Peer { peer, body }) => self.env.axis.send(&peer, &delivery.id, body).await,
            Ok(Target::Webhook { url, secrets }) => {
                let message = crate::webhooks::Message {
                    url: &url,
                    id: &delivery.id,
                    timestamp: (self.env.system_now)().timestamp(),
                    secrets: &secrets,
                    content_type: "application/json",
                    headers: Vec::new(),
                    body: delivery.body.clone().into_bytes(),
                };
                crate::webhooks::post(&self.env.http, message, self.env.policy.timeout).await
            }
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let crate::webhooks::Sent {
            status,
            error,
            retry_after,
        } = sent;
        state.push(Attempt {
            at: now,
            duration_ms,
            status,
            error: error.clone(),
        });
        let outcome = match error {
            None => {
                tracing::info!(delivery = %delivery.id, webhook = %delivery.webhook, kind = %delivery.kind, tries = state.tries, "webhook delivered");
                metrics::counter!("vanthu_webhook_attempts_total", "outcome" => "delivered")
                    .increment(1);
                self.mark(&delivery.id, MARK_DELIVERED).await;
                Status::Delivered
            }
            Some(_) if status.is_some_and(crate::webhooks::refuses_for_good) => {
                metrics::counter!("vanthu_webhook_attempts_total", "outcome" => "failed")
                    .increment(1);
                tracing::error!(delivery = %delivery.id, webhook = %delivery.webhook, tries = state.tries, status, "webhook delivery dead: the receiver refused it for good (its answer is kept on the delivery)");
                self.mark(&delivery.id, MARK_DEAD).await;
                Status::Dead
            }
            Some(why) => {
                let why = loggable(status, &why);
                let jitter = f64::from(rand_u32()) / f64::from(u32::MAX);
                let mut delay = backoff(&self.env.policy, state.tries, jitter);
                if let Some(asked) = retry_after {
                    delay = delay.max(asked.min(self.env.policy.cap));
                }
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                metrics::counter!("vanthu_webhook_attempts_total", "outcome" => "failed")
                    .increment(1);
                if next - since > self.env.policy.max_age {
                    tracing::error!(delivery = %delivery.id, webhook = %delivery.webhook, tries = state.tries, error = %why, "webhook delivery dead: its next attempt would be past the maximum age");
                    self.mark(&delivery.id, MARK_DEAD).await;
                    Status::Dead
                } else {
                    tracing::warn!(delivery = %delivery.id, webhook = %delivery.webhook, tries = state.tries, error = %why, retry_in_ms = delay.as_millis() as u64, "webhook delivery failed; will retry");
                    state.next_at = Some(next);
                    Status::Pending
                }
            }
        };
        self.settle(&delivery, state, outcome)
    }

    /// Where `delivery` goes now: a webhook in force (its URL and the
    /// secrets that sign now), or a peer with the message composed.
    async fn target(
        &self,
        delivery: &crate::outbox::Delivery,
        now: DateTime<Utc>,
    ) -> Result<Target, Unsendable> {
        if let Some(peer) = delivery
            .webhook
            .strip_prefix(crate::interchange::PEER_PREFIX)
        {
            let body = match &delivery.compose {
                None => delivery.body.clone().into_bytes(),
                Some(_) => {
                    let Some(compose) = self.env.compose.get() else {
                        return Err(Unsendable::NotYet("the service is still starting".into()));
                    };
                    compose(delivery.clone()).await.map_err(|e| match e {
                        ComposeError::Permanent(why) => Unsendable::Dead(why),
                        ComposeError::Transient(why) => Unsendable::NotYet(why),
                    })?
                }
            };
            return Ok(Target::Peer {
                peer: peer.to_owned(),
                body,
            });
        }
        let org = (self.env.org)();
        let webhook = org.webhook_at(&delivery.webhook, now);
        match (webhook, webhook.and_then(|w| self.secrets(w, now))) {
            (Some(w), Some(secrets)) => Ok(Target::Webhook {
                url: w.url.clone(),
                secrets,
            }),
            (Some(_), None) => Err(Unsendable::NotYet("the service has no webhook key".into())),
            (None, _) => Err(Unsendable::Dead(
                "the webhook was unsubscribed, or its client revoked".into(),
            )),
        }
    }

    /// Writes a delivery's new state; a final one leaves the pending index.
    fn settle(
        &self,
        delivery: &crate::outbox::Delivery,
        mut state: State,
        status: Status,
    ) -> Result<(), OutboxError> {
        state.status = status;
        if status != Status::Pending {
            state.next_at = None;
        }
        let mut changes = Changes::new();
        changes.insert(
            format!("a/{}", delivery.id).into_bytes(),
            Some(serde_json::to_vec(&state).expect("a state serialises")),
        );
        let _counting = self.counting();
        if status != Status::Pending {
            changes.insert(delivery.pending_key().into_bytes(), None);
            // An attempt starts only on a pending delivery.
            let mut counts = sender_counts(&self.env.table, &delivery.webhook)?;
            counts.moved(Status::Pending, status);
            put_sender(&mut changes, &delivery.webhook, &counts);
        }
        self.env.table.write_outside(changes)?;
        Ok(())
    }

    /// Makes delivery `id` pending again, due now, its maximum age counted
    /// from now; returns it as it stands. Refused while an attempt is in
    /// flight, once its webhook has ended, and on a node that does not send.
    pub async fn redrive(&self, id: &str) -> Result<Report, RedriveError> {
        let Report {
            delivery,
            mut state,
        } = report(&self.env.table, id)?;
        let now = (self.env.now)();
        let is_peer = delivery
            .webhook
            .starts_with(crate::interchange::PEER_PREFIX);
        if !is_peer
            && (self.env.org)()
                .webhook_at(&delivery.webhook, now)
                .is_none()
        {
            return Err(RedriveError::Ended(delivery.webhook));
        }
        if !self.sending() {
            return Err(RedriveError::NotSending);
        }
        // Held in flight while written, so no pass starts an attempt on
        // the state it replaces.
        {
            let mut in_flight = self.lock();
            if in_flight.contains_key(id) {
                return Err(RedriveError::InFlight(id.into()));
            }
            in_flight.insert(id.to_owned(), delivery.webhook.clone());
        }
        let result = async {
            self.mark(id, MARK_PENDING).await;
            let Report {
                delivery: fresh,
                state: current,
            } = report(&self.env.table, id)?;
            let was = current.status;
            state = current;
            state.status = Status::Pending;
            state.next_at = Some(now);
            state.since = Some(now);
            state.redrives += 1;
            let mut changes = Changes::new();
            changes.insert(
                format!("a/{id}").into_bytes(),
                Some(serde_json::to_vec(&state).expect("a state serialises")),
            );
            changes.insert(
                fresh.pending_key().into_bytes(),
                Some(
                    serde_json::to_vec(&Pending { doc: fresh.doc })
                        .expect("a pending entry serialises"),
                ),
            );
            let _counting = self.counting();
            let mut counts = sender_counts(&self.env.table, &fresh.webhook)?;
            counts.moved(was, Status::Pending);
            put_sender(&mut changes, &fresh.webhook, &counts);
            self.env.table.write_outside(changes)?;
            Ok::<_, OutboxError>(Report {
                delivery: fresh,
                state: state.clone(),
            })
        }
        .await;
        self.lock().remove(id);
        self.wake.notify_one();
        Ok(result?)
    }
}

/// What a log line may say about a failed attempt: the receiver's status
/// only, never its words, which may echo the document back (its answer is
/// kept on the delivery, readable by the webhook's owner); a transport
/// error is ours and is said in full.
fn loggable(status: Option<u16>, why: &str) -> String {
    match status {
        Some(code) => format!("answered {code} (its answer is kept on the delivery)"),
        None => why.to_owned(),
    }
}
