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
//! node holding the checkpoint signer's lease sends (asked right before
//! each post, not once per pass); a node that takes over sends again what
//! its table does not know delivered (same ids).
//!
//! Must never: follow a redirect, send without a signature, log a secret,
//! or block a command.
//!
//! Files: this one holds the settings, the handle and the loop;
//! [`pass`](pass.rs) finds what may go now; [`deadlines`](deadlines.rs)
//! makes the deadline messages; [`attempt`](attempt.rs) sends one delivery,
//! records its answer, and re-drives.

mod attempt;
mod deadlines;
mod pass;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use super::{OutboxError, Report};
use crate::domain::org::Org;
use crate::store::tables::Table;
use crate::webhooks::WebhookSecret;

/// The webhook key's type, now beside the signatures it derives
/// (`crate::webhooks::SecretKey`); named here for callers not yet moved.
pub use crate::webhooks::SecretKey;

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
    /// The last outbox row found that does not decode: `/readyz` reports
    /// the outbox until the service restarts (kept like a view's
    /// `view-unreadable`).
    unreadable: Mutex<Option<String>>,
    /// Held while the sender's counts (`outbox::counters`) are read and
    /// written with the change they count.
    counting: Mutex<()>,
    /// Passes that read every webhook's pending entries, and deadline
    /// checks, completed since start (`/readyz`: a test waits for one
    /// after its action rather than sleeping).
    passes: AtomicU64,
    deadline_checks: AtomicU64,
}

/// What the sender has done since start, as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    /// Complete passes over the pending deliveries.
    pub passes: u64,
    /// Complete checks of the open reply deadlines.
    pub deadline_checks: u64,
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
            unreadable: Mutex::new(None),
            counting: Mutex::new(()),
            passes: AtomicU64::new(0),
            deadline_checks: AtomicU64::new(0),
        })
    }

    pub fn table(&self) -> &Table {
        &self.env.table
    }

    /// How far the fold is (for `/readyz`, beside the projections), with
    /// the last row found unreadable as its error.
    pub fn progress(&self) -> Vec<crate::projections::Progress> {
        let mut progress = self.env.fold.progress();
        if let Some(what) = self
            .unreadable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            for p in progress.iter_mut().filter(|p| p.name == super::NAME) {
                p.error = Some(what.clone());
            }
        }
        progress
    }

    /// How many passes and deadline checks completed since start.
    pub fn activity(&self) -> Activity {
        Activity {
            passes: self.passes.load(Ordering::SeqCst),
            deadline_checks: self.deadline_checks.load(Ordering::SeqCst),
        }
    }

    /// Reports a row of the outbox that does not decode (`e`, when it is
    /// one): logged as an error, counted, and on `/readyz` from now on. The
    /// row is never skipped silently.
    pub fn unreadable(&self, e: &OutboxError) {
        if let OutboxError::Decode(key, why) = e {
            let what = format!("outbox row {key:?} does not decode ({why})");
            tracing::error!(error = %what, "unreadable outbox row");
            metrics::counter!("vanthu_outbox_unreadable_rows_total").increment(1);
            *self.unreadable.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
        }
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

    /// Whether this node sends now: it acts for the log (on JetStream, it
    /// holds the lease: `Leadership::holds`, through `Env::sends`). Asked
    /// at each pass and again right before each post; the one place that
    /// asks.
    fn sending(&self) -> bool {
        (self.env.sends)()
    }

    fn counting(&self) -> std::sync::MutexGuard<'_, ()> {
        self.counting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a table's deliveries from before the counters, once.
    fn backfill_counts(&self) -> Result<(), OutboxError> {
        let _counting = self.counting();
        let changes = super::counters::backfill_sender(&self.env.table)?;
        if !changes.is_empty() {
            self.env.table.write_outside(changes)?;
        }
        Ok(())
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
            let me = Arc::clone(&this);
            match tokio::task::spawn_blocking(move || me.backfill_counts()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the outbox could not count its deliveries; the admin's counts read them all")
                }
                Err(e) => tracing::error!(error = %e, "counting the outbox's deliveries panicked"),
            }
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
                        Ok(Ok(n)) => {
                            this.deadline_checks.fetch_add(1, Ordering::SeqCst);
                            if n > 0 {
                                tracing::info!(deliveries = n, "reply deadlines came due or passed")
                            }
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
mod tests;
