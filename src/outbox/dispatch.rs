//! Sending the outbox's pending deliveries: signed per Standard Webhooks,
//! at least once, in log order per (webhook, document), with exponential
//! backoff and jitter between attempts, up to a maximum age.
//!
//! One task per service. Each pass reads the pending index in log order;
//! a delivery goes out when it is due, no earlier delivery of the same
//! document to the same webhook is pending, and its webhook has fewer than
//! `concurrency` in flight. Every answer is written before the next
//! attempt of that delivery is considered, so after a crash (kill -9
//! included) a delivery is at worst sent once more, with the same
//! `webhook-id`. Commands never wait for any of this.
//!
//! On a JetStream log every node folds the same deliveries, and only the
//! node holding the checkpoint signer's lease sends; a node that takes
//! over sends again what its table does not know delivered (same ids).
//!
//! Must never: follow a redirect, send without a signature, log a secret,
//! or block a command.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use super::{json, pending_key, report, Attempt, OutboxError, Pending, Report, State, Status};
use crate::domain::org::Org;
use crate::store::tables::{Changes, Table};
use crate::webhooks::WebhookSecret;

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The first retry's delay; each next one doubles, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// A delivery still failing this long after its event (or its last
    /// re-drive) is dead.
    pub max_age: chrono::Duration,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in flight per webhook.
    pub concurrency: usize,
    /// How often open reply deadlines are checked for due-soon and overdue.
    pub deadline_check: Duration,
}

/// The delay before retry number `tries` (1 = the first retry): `base ·
/// 2^(tries-1)` capped, of which a random part (`jitter` in [0, 1)) up to
/// half is taken off, so receivers that failed together are not retried
/// together.
pub fn backoff(policy: &Policy, tries: u32, jitter: f64) -> Duration {
    let exp = tries.saturating_sub(1).min(30);
    let full = policy
        .base
        .saturating_mul(1u32 << exp)
        .min(policy.cap)
        .max(Duration::from_millis(1));
    full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// The key webhook secrets are derived from (`keys_dir/webhooks/webhooks.key`).
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Reads the file: the base64 of 32 random bytes, on one line.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        use base64::Engine;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("{}: not base64: {e}", path.display()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{}: the key must be 32 bytes", path.display()))?;
        Ok(Self(key))
    }

    /// The bytes (for the development-key check).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret webhook `id` signs with at `generation` (0, then one
    /// more per rotation): the same on every node sharing the key, never
    /// stored.
    pub fn secret(&self, webhook: &str, generation: u32) -> WebhookSecret {
        WebhookSecret::derive(&self.0, webhook, generation)
    }
}

/// What the sender needs from the rest of the service.
pub struct Env {
    /// The outbox's fold (its runner, table and progress).
    pub fold: Arc<crate::projections::Projections>,
    pub table: Table,
    /// The organisation now (webhooks: URL, secrets' generations).
    pub org: Box<dyn Fn() -> Arc<Org> + Send + Sync>,
    /// The service clock: attempts, backoff, maximum age.
    pub now: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// System time, for `webhook-timestamp` (receivers check it against
    /// their own clocks, whatever a development clock says).
    pub system_now: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Whether this node sends (always, on RocksDB; the lease holder on JetStream).
    pub sends: Box<dyn Fn() -> bool + Send + Sync>,
    pub key: Option<SecretKey>,
    pub http: reqwest::Client,
    pub policy: Policy,
    /// What "due soon" and "overdue" mean (the deadlines view's definition).
    pub calendar: crate::domain::calendar::Calendar,
    pub due_soon_days: u32,
}

/// The sender: the task's handle, for re-drives and reads.
pub struct Sender {
    env: Env,
    wake: Notify,
    /// Delivery id → webhook, while an attempt is out.
    in_flight: Mutex<HashMap<String, String>>,
}

/// Pending entries read per pass.
const PASS: usize = 10_000;
/// A pass runs at least this often (a lease gained, a clock moved).
const IDLE: Duration = Duration::from_secs(5);

impl Sender {
    pub fn new(env: Env) -> Arc<Self> {
        Arc::new(Self {
            env,
            wake: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    pub fn table(&self) -> &Table {
        &self.env.table
    }

    /// The secrets webhook `id` signs with at `t` (current first), if the
    /// service has a webhook key.
    pub fn secrets(
        &self,
        webhook: &crate::domain::org::Webhook,
        t: DateTime<Utc>,
    ) -> Option<Vec<WebhookSecret>> {
        let key = self.env.key.as_ref()?;
        Some(
            webhook
                .generations_at(t)
                .into_iter()
                .map(|g| key.secret(&webhook.id, g))
                .collect(),
        )
    }

    /// How far the fold is (for `/readyz`, beside the projections).
    pub fn progress(&self) -> Vec<crate::projections::Progress> {
        self.env.fold.progress()
    }

    /// Whether webhook secrets can be given out and messages signed.
    pub fn has_key(&self) -> bool {
        self.env.key.is_some()
    }

    /// Runs the sender for as long as the runtime lives, woken when the
    /// fold wrote new deliveries.
    pub fn spawn(self: &Arc<Self>) {
        let mut enqueued = self.env.fold.watch(super::NAME);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut checked: Option<tokio::time::Instant> = None;
            loop {
                if checked.is_none_or(|t| t.elapsed() >= this.env.policy.deadline_check)
                    && (this.env.sends)()
                {
                    checked = Some(tokio::time::Instant::now());
                    let me = Arc::clone(&this);
                    match tokio::task::spawn_blocking(move || me.deadlines()).await {
                        Ok(Ok(0)) => {}
                        Ok(Ok(n)) => {
                            tracing::info!(deliveries = n, "reply deadlines came due or passed")
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "the outbox could not check deadlines")
                        }
                        Err(e) => tracing::error!(error = %e, "the deadline check panicked"),
                    }
                }
                let wait = match this.pass() {
                    Ok(wait) => wait,
                    Err(e) => {
                        tracing::warn!(error = %e, "the outbox could not read its deliveries; retrying");
                        IDLE
                    }
                };
                tokio::select! {
                    _ = this.wake.notified() => {}
                    changed = enqueued.changed() => {
                        if changed.is_err() {
                            // The fold stopped (shutdown): keep sending what is there.
                            enqueued = watch::channel(0).1;
                        }
                    }
                    _ = tokio::time::sleep(wait.min(this.env.policy.deadline_check)) => {}
                }
            }
        });
    }

    /// Makes a delivery for each open reply deadline that is now due soon
    /// or overdue, to each webhook that wants it and has none for that
    /// deadline and kind yet; returns how many it made.
    fn deadlines(&self) -> Result<usize, OutboxError> {
        let now = (self.env.now)();
        let table = &self.env.table;
        let subscribers = super::subscribers(table)?;
        let wanted = ["deadline.due_soon", "deadline.overdue"];
        if !subscribers
            .iter()
            .any(|s| s.events.iter().any(|e| wanted.contains(&e.as_str())))
        {
            return Ok(0);
        }
        // After every message the fold made so far (order per document).
        let position = table.checkpoint()?;
        let mut changes = Changes::new();
        for (key, value) in table.scan(b"w/", None, usize::MAX)? {
            let w: super::Watch = json(&key, &value)?;
            let kind = if self.env.calendar.is_overdue(w.deadline, now) {
                "deadline.overdue"
            } else if self
                .env
                .calendar
                .is_due_soon(w.deadline, now, self.env.due_soon_days)
            {
                "deadline.due_soon"
            } else {
                continue;
            };
            let concerned = [w.agency.as_str(), w.issuer.as_str()];
            let mut body = None;
            for s in &subscribers {
                if !crate::domain::org::wants(&s.events, &s.agencies, kind, &concerned) {
                    continue;
                }
                let id =
                    super::deadline_delivery_id(&s.webhook, w.doc, &w.agency, kind, w.deadline);
                if table.get(format!("q/{id}").as_bytes())?.is_some() {
                    continue;
                }
                let body = match &body {
                    Some(b) => b,
                    None => {
                        let Some(document) = table.get(format!("m/{}", w.doc).as_bytes())? else {
                            break;
                        };
                        let document: serde_json::Value = json(&key, &document)?;
                        body.insert(
                            serde_json::json!({
                                "type": kind,
                                "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                                "data": {
                                    "document": document,
                                    "deadline": { "agency": w.agency, "reply_due": w.deadline, "status": &kind["deadline.".len()..] },
                                },
                            })
                            .to_string(),
                        )
                    }
                };
                let delivery = super::Delivery {
                    id: id.clone(),
                    webhook: s.webhook.clone(),
                    client: s.client.clone(),
                    kind: kind.into(),
                    doc: w.doc,
                    position,
                    created_at: now,
                    body: body.clone(),
                };
                changes.insert(
                    format!("q/{id}").into_bytes(),
                    Some(serde_json::to_vec(&delivery).expect("a delivery serialises")),
                );
                changes.insert(
                    format!(
                        "i/{}/{}/{id}",
                        s.webhook,
                        crate::projections::padded(position)
                    )
                    .into_bytes(),
                    Some(Vec::new()),
                );
                changes.insert(
                    pending_key(position, &id).into_bytes(),
                    Some(
                        serde_json::to_vec(&Pending {
                            webhook: s.webhook.clone(),
                            doc: w.doc,
                        })
                        .expect("a pending entry serialises"),
                    ),
                );
            }
        }
        let made = changes.len() / 3;
        if made > 0 {
            table.write_outside(changes)?;
            self.wake.notify_one();
        }
        Ok(made)
    }

    /// Starts every delivery that may go now; returns how long until the
    /// next one is due.
    fn pass(self: &Arc<Self>) -> Result<Duration, OutboxError> {
        if !(self.env.sends)() {
            return Ok(IDLE);
        }
        let now = (self.env.now)();
        let mut wait = IDLE;
        let mut heads: HashSet<(String, uuid::Uuid)> = HashSet::new();
        let pending = self.env.table.scan(b"p/", None, PASS)?;
        for (key, value) in pending {
            let p: Pending = json(&key, &value)?;
            // Only the first pending delivery of a document to a webhook.
            if !heads.insert((p.webhook.clone(), p.doc)) {
                continue;
            }
            let Some(id) = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| k.rsplit('/').next())
            else {
                continue;
            };
            {
                let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if in_flight.contains_key(id)
                    || in_flight.values().filter(|w| **w == p.webhook).count()
                        >= self.env.policy.concurrency
                {
                    continue;
                }
            }
            let r = report(&self.env.table, id)?;
            let due = r.state.next_at.unwrap_or(r.delivery.created_at);
            if due > now {
                wait = wait.min((due - now).to_std().unwrap_or_default());
                continue;
            }
            self.in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.to_owned(), p.webhook.clone());
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let id = r.delivery.id.clone();
                if let Err(e) = this.attempt(r).await {
                    tracing::error!(delivery = %id, error = %e, "could not record a delivery attempt");
                }
                this.in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                this.wake.notify_one();
            });
        }
        Ok(wait)
    }

    /// Sends `r` once and records the answer.
    async fn attempt(&self, r: Report) -> Result<(), OutboxError> {
        let Report {
            delivery,
            mut state,
        } = r;
        let now = (self.env.now)();
        let org = (self.env.org)();
        let since = state.since.unwrap_or(delivery.created_at);
        let webhook = org.webhook_at(&delivery.webhook, now);
        let secrets = webhook.and_then(|w| self.secrets(w, now));
        let (Some(webhook), Some(secrets)) = (webhook, secrets) else {
            let why = if self.env.key.is_none() {
                "the service has no webhook key (keys_dir/webhooks/webhooks.key)"
            } else {
                "the webhook was unsubscribed, or its client revoked"
            };
            state.push(Attempt {
                at: now,
                duration_ms: 0,
                status: None,
                error: Some(why.into()),
            });
            return self.settle(&delivery.id, delivery.position, state, Status::Dead);
        };
        let timestamp = (self.env.system_now)().timestamp();
        let body = delivery.body.as_bytes();
        let signature = crate::webhooks::signature_header(&secrets, &delivery.id, timestamp, body);
        let started = Instant::now();
        let sent = self
            .env
            .http
            .post(&webhook.url)
            .timeout(self.env.policy.timeout)
            .header("content-type", "application/json")
            .header("user-agent", concat!("vanthu/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error, retry_after) = match sent {
            Ok(resp) => {
                let code = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let error = (!code.is_success()).then(|| format!("answered {code}"));
                (Some(code.as_u16()), error, retry_after)
            }
            Err(e) => (None, Some(describe(&e)), None),
        };
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
                Status::Delivered
            }
            Some(why) => {
                let jitter = f64::from(rand_u32()) / f64::from(u32::MAX);
                let mut delay = backoff(&self.env.policy, state.tries, jitter);
                if let Some(asked) = retry_after {
                    delay = delay.max(asked.min(self.env.policy.cap));
                }
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                metrics::counter!("vanthu_webhook_attempts_total", "outcome" => "failed")
                    .increment(1);
                if next - since > self.env.policy.max_age {
                    tracing::error!(delivery = %delivery.id, webhook = %delivery.webhook, tries = state.tries, error = %why, "webhook delivery dead: past the maximum age");
                    Status::Dead
                } else {
                    tracing::warn!(delivery = %delivery.id, webhook = %delivery.webhook, tries = state.tries, error = %why, retry_in_ms = delay.as_millis() as u64, "webhook delivery failed; will retry");
                    state.next_at = Some(next);
                    Status::Pending
                }
            }
        };
        self.settle(&delivery.id, delivery.position, state, outcome)
    }

    /// Writes a delivery's new state; a final one leaves the pending index.
    fn settle(
        &self,
        id: &str,
        position: u64,
        mut state: State,
        status: Status,
    ) -> Result<(), OutboxError> {
        state.status = status;
        if status != Status::Pending {
            state.next_at = None;
        }
        let mut changes = Changes::new();
        changes.insert(
            format!("a/{id}").into_bytes(),
            Some(serde_json::to_vec(&state).expect("a state serialises")),
        );
        if status != Status::Pending {
            changes.insert(pending_key(position, id).into_bytes(), None);
        }
        self.env.table.write_outside(changes)?;
        Ok(())
    }

    /// Makes delivery `id` pending again, due now, its maximum age counted
    /// from now; returns it as it stands.
    pub fn redrive(&self, id: &str) -> Result<Report, OutboxError> {
        let Report {
            delivery,
            mut state,
        } = report(&self.env.table, id)?;
        let now = (self.env.now)();
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
            pending_key(delivery.position, id).into_bytes(),
            Some(
                serde_json::to_vec(&Pending {
                    webhook: delivery.webhook.clone(),
                    doc: delivery.doc,
                })
                .expect("a pending entry serialises"),
            ),
        );
        self.env.table.write_outside(changes)?;
        self.wake.notify_one();
        Ok(Report { delivery, state })
    }
}

/// A failed request in a few words (reqwest's own text names the URL).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "answered with a redirect (not followed)".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("the system's random source");
    u32::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_age: chrono::Duration::hours(72),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            deadline_check: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_takes_off_at_most_half() {
        let p = policy();
        let cases = [
            (1, 0.0, 5_000),
            (2, 0.0, 10_000),
            (3, 0.0, 20_000),
            (4, 0.999_999, 20_000),
            (10, 0.0, 2_560_000),
            (11, 0.0, 3_600_000),
            (40, 0.0, 3_600_000),
            (40, 0.5, 2_700_000),
            (u32::MAX, 0.0, 3_600_000),
            (0, 0.0, 5_000),
        ];
        for (tries, jitter, ms) in cases {
            let got = backoff(&p, tries, jitter).as_millis() as i64;
            assert!(
                (got - ms).abs() <= 1,
                "try {tries}, jitter {jitter}: {got} ms, want {ms}"
            );
        }
    }

    #[test]
    fn jitter_spreads_retries_between_half_and_all_of_the_delay() {
        let p = policy();
        let delays: Vec<_> = (0..200)
            .map(|_| backoff(&p, 3, f64::from(rand_u32()) / f64::from(u32::MAX)))
            .collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_secs(10) && *d <= Duration::from_secs(20)));
        let distinct: HashSet<_> = delays.iter().map(|d| d.as_millis()).collect();
        assert!(
            distinct.len() > 100,
            "jitter varies: {} distinct delays",
            distinct.len()
        );
    }

    #[test]
    fn the_key_derives_one_secret_per_webhook_and_generation() {
        let key = SecretKey([7; 32]);
        let a0 = key.secret("portal", 0).expose();
        assert_eq!(a0, key.secret("portal", 0).expose(), "stable");
        assert_ne!(a0, key.secret("portal", 1).expose(), "rotation changes it");
        assert_ne!(a0, key.secret("archive", 0).expose(), "per webhook");
        assert_ne!(
            a0,
            SecretKey([8; 32]).secret("portal", 0).expose(),
            "per key"
        );
        assert!(WebhookSecret::parse(&a0).is_ok());
    }
}
