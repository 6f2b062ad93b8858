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

use super::{json, report, Attempt, OutboxError, Pending, Report, State, Status};
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
    /// Outcomes shared with the other nodes of a JetStream log.
    pub marks: Option<Arc<dyn crate::store::marks::Marks>>,
    /// Where deliveries to `peer:{id}` go.
    pub axis: Arc<dyn crate::interchange::Axis>,
    /// Composes packages at send time.
    pub compose: Arc<std::sync::OnceLock<Composer>>,
}

/// The sender: the task's handle, for re-drives and reads.
pub struct Sender {
    env: Env,
    wake: Notify,
    /// Delivery id → webhook, while an attempt is out (or a re-drive writes).
    in_flight: Mutex<HashMap<String, String>>,
    /// Set once to stop (`stop`).
    stop: watch::Sender<bool>,
    /// Passes completed since start (`GET /readyz` `outbox.passes`), so a
    /// test can wait for one whole pass after an action.
    passes: std::sync::atomic::AtomicU64,
}

/// Pending entries read per webhook per pass.
const PASS: usize = 1_000;
/// A pass runs at least this often (a lease gained, a clock moved).
const IDLE: Duration = Duration::from_secs(5);

/// Why a delivery could not be re-driven.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("an attempt at {0} is in flight; ask again when it has an answer")]
    InFlight(String),
    #[error("webhook {0} has ended; its deliveries cannot be sent")]
    Ended(String),
    #[error("this node does not send now (another node of the log holds the lease)")]
    NotSending,
}

/// What the marks shared among nodes say of a delivery.
const MARK_DELIVERED: &[u8] = b"delivered";
const MARK_DEAD: &[u8] = b"dead";
const MARK_PENDING: &[u8] = b"pending";

impl Sender {
    pub fn new(env: Env) -> Arc<Self> {
        Arc::new(Self {
            env,
            wake: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            stop: watch::channel(false).0,
            passes: Default::default(),
        })
    }

    pub fn table(&self) -> &Table {
        &self.env.table
    }

    /// How far the fold is (for `/readyz`, beside the projections).
    pub fn progress(&self) -> Vec<crate::projections::Progress> {
        self.env.fold.progress()
    }

    /// How many passes over the pending deliveries completed since start.
    pub fn passes(&self) -> u64 {
        self.passes.load(std::sync::atomic::Ordering::Relaxed)
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

    /// Whether webhook secrets can be given out and messages signed.
    pub fn has_key(&self) -> bool {
        self.env.key.is_some()
    }

    /// Whether this node sends now: it acts for the log.
    fn sending(&self) -> bool {
        (self.env.sends)()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the sender until [`stop`](Self::stop), woken when the fold
    /// wrote new deliveries.
    pub fn spawn(self: &Arc<Self>) {
        let mut enqueued = self.env.fold.watch(super::NAME);
        let mut stop = self.stop.subscribe();
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut checked: Option<tokio::time::Instant> = None;
            loop {
                let stopping = *stop.borrow();
                if stopping {
                    break;
                }
                if this.sending()
                    && checked.is_none_or(|t| t.elapsed() >= this.env.policy.deadline_check)
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
                let me = Arc::clone(&this);
                let wait = match tokio::task::spawn_blocking(move || me.pass()).await {
                    Ok(Ok((wait, due))) => {
                        for r in due {
                            this.start(r);
                        }
                        wait
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "the outbox could not read its deliveries; retrying");
                        IDLE
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the outbox's pass panicked");
                        IDLE
                    }
                };
                this.passes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = this.wake.notified() => {}
                    changed = enqueued.changed() => {
                        if changed.is_err() {
                            // The fold stopped: the service is stopping.
                            stopped(&mut stop).await;
                        }
                    }
                    _ = stopped(&mut stop) => {}
                    _ = tokio::time::sleep(wait.min(this.env.policy.deadline_check)) => {}
                }
            }
        });
    }

    /// Stops starting attempts and waits (at most one attempt's timeout)
    /// for those in flight to record their answers.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let until = tokio::time::Instant::now() + self.env.policy.timeout + Duration::from_secs(1);
        while !self.lock().is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `r` on its own task; it leaves the in-flight set when answered.
    fn start(self: &Arc<Self>, r: Report) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let id = r.delivery.id.clone();
            if let Err(e) = this.attempt(r).await {
                tracing::error!(delivery = %id, error = %e, "could not record a delivery attempt");
            }
            this.lock().remove(&id);
            this.wake.notify_one();
        });
    }

    /// Finds every delivery that may go now, and marks it in flight;
    /// returns them and how long until the next one is due. Each webhook's
    /// pending entries are read apart (up to [`PASS`] each), so one
    /// receiver's backlog never hides another's.
    fn pass(&self) -> Result<(Duration, Vec<Report>), OutboxError> {
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
                let p: Pending = json(&key, &value)?;
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
                let r = report(table, id)?;
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
        Ok((wait, due))
    }

    /// Makes a delivery for each open reply deadline that is now due soon
    /// or overdue, to each webhook that wants it and has none for that
    /// deadline and kind yet, and stops watching deadlines told overdue;
    /// returns how many deliveries it made. Watches are read in deadline
    /// order and the reading stops at the first neither due soon nor
    /// overdue.
    fn deadlines(&self) -> Result<usize, OutboxError> {
        let now = (self.env.now)();
        let table = &self.env.table;
        let calendar = &self.env.calendar;
        let mut watches = Vec::new();
        for (key, value) in table.scan(b"w/", None, usize::MAX)? {
            let w: super::Watch = json(&key, &value)?;
            if calendar.is_overdue(w.deadline, now) {
                watches.push((w, "deadline.overdue"));
            } else if calendar.is_due_soon(w.deadline, now, self.env.due_soon_days) {
                watches.push((w, "deadline.due_soon"));
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
        let subscribers = super::subscribers(table)?;
        let mut changes = Changes::new();
        let mut made = 0;
        for (w, kind) in watches {
            let concerned = [w.agency.as_str(), w.issuer.as_str()];
            let passed_at = calendar.deadline_end(w.deadline);
            let document = match table.get(format!("m/{}", w.doc).as_bytes())? {
                Some(bytes) => json::<serde_json::Value>(w.key().as_bytes(), &bytes)?,
                None => continue,
            };
            let body = serde_json::json!({
                "type": kind,
                "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": {
                    "document": document,
                    "deadline": { "agency": w.agency, "reply_due": w.deadline, "status": &kind["deadline.".len()..] },
                },
            })
            .to_string();
            for s in &subscribers {
                let wants = crate::domain::org::wants(&s.events, &s.agencies, kind, &concerned);
                // A deadline that passed before the subscription is not news.
                if !wants || (kind == "deadline.overdue" && passed_at < s.since) {
                    continue;
                }
                let id =
                    super::deadline_delivery_id(&s.webhook, w.doc, &w.agency, kind, w.deadline);
                if table.get(format!("q/{id}").as_bytes())?.is_some() {
                    continue;
                }
                let delivery = super::Delivery {
                    id,
                    webhook: s.webhook.clone(),
                    client: s.client.clone(),
                    kind: kind.into(),
                    doc: w.doc,
                    position,
                    created_at: now,
                    body: body.clone(),
                    compose: None,
                };
                for (k, v) in super::made(&delivery) {
                    changes.insert(k.into_bytes(), Some(v));
                }
                made += 1;
            }
            if kind == "deadline.overdue" {
                changes.insert(w.key().into_bytes(), None);
            }
        }
        if !changes.is_empty() {
            table.write_outside(changes)?;
            self.wake.notify_one();
        }
        Ok(made)
    }

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
    async fn attempt(&self, r: Report) -> Result<(), OutboxError> {
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
        delivery: &super::Delivery,
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
        delivery: &super::Delivery,
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
        if status != Status::Pending {
            changes.insert(delivery.pending_key().into_bytes(), None);
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

/// Where one attempt goes.
enum Target {
    Webhook {
        url: String,
        secrets: Vec<WebhookSecret>,
    },
    Peer {
        peer: String,
        body: Vec<u8>,
    },
}

/// Why a delivery cannot go.
enum Unsendable {
    /// Never will: a dead letter now.
    Dead(String),
    /// Not now: a failed attempt, retried.
    NotYet(String),
}

/// Why a message could not be composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// The facts say it cannot be (a confidential document, an agency
    /// without an identifier): a dead letter.
    Permanent(String),
    /// Storage or the log's signer not ready: tried again later.
    Transient(String),
}

/// Composes a delivery's message at send time (set once the service's
/// state exists).
pub type Composer = Box<
    dyn Fn(
            super::Delivery,
        ) -> futures_util::future::BoxFuture<'static, Result<Vec<u8>, ComposeError>>
        + Send
        + Sync,
>;

/// Resolves once `stop` says so (holding nothing across the wait).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
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
