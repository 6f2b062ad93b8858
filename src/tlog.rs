//! The log as a transparency log: the checkpoint signer. At start it checks
//! the newest stored checkpoint against the tree (same origin, a size the
//! log still has, the same root) and co-signs it with a new log key; then,
//! off the request path, it signs a checkpoint of the durable head at most
//! every `tlog.checkpoint_interval_ms` when the tree grew. Every checkpoint
//! is kept; handlers read the newest from a watch.
//!
//! With several nodes on one log (JetStream), only the node holding the
//! `store::lease` signs, and publishes each checkpoint; every node adopts
//! what is published once its own tree has that size and states the same
//! root under the log key.
//!
//! Must never: sign a checkpoint whose root was not computed from the
//! stored tree at that size, sign two checkpoints that disagree, or sign on
//! a request's behalf (requests wait for the signer instead).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use futures_util::StreamExt;

use crate::crypto::note::{self, Checkpoint, LogSigner, NoteError};
use crate::store::lease::Leadership;
use crate::store::{RocksLog, StoreError};

/// Why the signer refused to start or to sign.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the stored checkpoints disagree with the log: {0}. Refusing to sign; restore the data directory from a backup or inspect it with `vanthu check`")]
    Inconsistent(String),
}

/// A signed checkpoint as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The tree size it states.
    pub size: u64,
    /// The note, verbatim.
    pub note: Arc<Vec<u8>>,
}

/// The signer and the newest checkpoint.
pub struct Checkpoints {
    log: RocksLog,
    signer: Arc<dyn LogSigner>,
    latest: watch::Sender<Signed>,
    /// Present when other nodes share the log: who may sign.
    leadership: Option<Arc<dyn Leadership>>,
    /// The largest checkpoint size the register is known to have held
    /// (published by this node, or seen published by another).
    published: std::sync::atomic::AtomicU64,
}

impl Checkpoints {
    /// Checks the newest stored checkpoint against the tree, co-signs it if
    /// the log key changed, and signs the head if the tree grew since.
    /// With `leadership` (nodes sharing a log) it signs nothing here: the
    /// holder of the lease signs, from `spawn`.
    pub fn open(
        log: RocksLog,
        signer: Arc<dyn LogSigner>,
        leadership: Option<Arc<dyn Leadership>>,
    ) -> Result<Self, TlogError> {
        let stored = match log.latest_checkpoint()? {
            Some((size, bytes)) => Some(Self::recheck(&log, &*signer, size, bytes)?),
            None => None,
        };
        let initial = stored.clone().unwrap_or(Signed {
            size: 0,
            note: Arc::new(Vec::new()),
        });
        let shared = leadership.is_some();
        let this = Self {
            log,
            signer,
            latest: watch::Sender::new(initial),
            leadership,
            published: Default::default(),
        };
        if !shared && (stored.is_none() || this.latest().size < this.log.head()) {
            this.sign_head()?;
        }
        Ok(this)
    }

    /// The stored checkpoint of `size`: its origin is ours, the log still
    /// has `size` records and their root is the one it states. Returned
    /// co-signed by the current key if that key had not signed it.
    fn recheck(
        log: &RocksLog,
        signer: &dyn LogSigner,
        size: u64,
        bytes: Vec<u8>,
    ) -> Result<Signed, TlogError> {
        let parsed = signed_note::Note::from_bytes(&bytes)
            .map_err(|e| TlogError::Inconsistent(format!("checkpoint {size}: {e}")))?;
        let stated = Checkpoint::parse_body(parsed.text())?;
        if stated.origin != signer.name() {
            return Err(TlogError::Inconsistent(format!(
                "the log's origin is {:?} but tlog.origin is {:?}; the origin of a published log never changes",
                stated.origin,
                signer.name()
            )));
        }
        let tree = log.tree_at(size).ok_or_else(|| {
            TlogError::Inconsistent(format!(
                "a checkpoint of {size} records was signed but the log has {}: records were lost",
                log.head()
            ))
        })?;
        if stated.size != size || tree.root()? != stated.root {
            return Err(TlogError::Inconsistent(format!(
                "the checkpoint of {size} records states another root than the stored tree"
            )));
        }
        let note = match note::open(&bytes, &signer.verifier_key()) {
            Ok(_) => bytes,
            Err(_) => {
                let cosigned = note::cosign(&bytes, signer)?;
                log.put_checkpoint(size, &cosigned)?;
                tracing::info!(
                    size,
                    key = %signer.verifier_key(),
                    "a new log key co-signed the newest checkpoint"
                );
                cosigned
            }
        };
        Ok(Signed {
            size,
            note: Arc::new(note),
        })
    }

    /// Signs a checkpoint of the durable head unless the newest one already
    /// covers it; true if it signed. Blocking (reads the tree).
    pub fn sign_head(&self) -> Result<bool, TlogError> {
        let size = self.log.head();
        let current = self.latest();
        if size == current.size && !current.note.is_empty() {
            return Ok(false);
        }
        let tree = self
            .log
            .tree_at(size)
            .ok_or_else(|| TlogError::Inconsistent("the head moved back".into()))?;
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root: tree.root()?,
        };
        let bytes = note::sign(&checkpoint, &*self.signer)?;
        self.log.put_checkpoint(size, &bytes)?;
        // Never back: a checkpoint adopted meanwhile may be newer.
        Ok(self.latest.send_if_modified(|latest| {
            let newer = size > latest.size || latest.note.is_empty();
            if newer {
                *latest = Signed {
                    size,
                    note: Arc::new(bytes),
                };
            }
            newer
        }))
    }

    /// The newest checkpoint.
    pub fn latest(&self) -> Signed {
        self.latest.borrow().clone()
    }

    /// The first checkpoint that covers `size` records, waiting at most
    /// `wait` for the signer; `None` if none came in time.
    pub async fn covering(&self, size: u64, wait: Duration) -> Option<Signed> {
        let mut rx = self.latest.subscribe();
        let found = tokio::time::timeout(wait, rx.wait_for(|s| s.size >= size)).await;
        match found {
            Ok(Ok(signed)) => Some(signed.clone()),
            _ => None,
        }
    }

    /// The log key's note verifier key.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// Whether this node acts for the log: always when it is the only one;
    /// with leadership, while it holds the lease (the outbox sends only then).
    pub fn leads(&self) -> bool {
        self.leadership.as_ref().is_none_or(|l| l.holds())
    }

    /// Signs a checkpoint every `interval` when the tree grew, for as long as
    /// the runtime lives (with leadership: while this node holds the lease,
    /// publishing each; and adopts what the holder publishes). A failure is
    /// logged and retried at the next tick.
    pub fn spawn(self: &Arc<Self>, interval: Duration) {
        let this = Arc::clone(self);
        let interval = interval.max(Duration::from_millis(10));
        // The lease is renewed more often than it runs out, whatever the
        // signing interval.
        let tick_every = match self.leadership {
            Some(_) => interval.min(crate::store::lease::LEASE / 4),
            None => interval,
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tick_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut signed_at: Option<tokio::time::Instant> = None;
            loop {
                tick.tick().await;
                if let Some(l) = &this.leadership {
                    // A node whose replica stopped neither holds the lease
                    // nor signs: another takes over.
                    if this.log.health().error.is_some() || !l.hold().await {
                        continue;
                    }
                    this.republish(&**l).await;
                }
                if signed_at.is_some_and(|t| t.elapsed() < interval) {
                    continue;
                }
                let head = this.log.head();
                // With several nodes: never below what was published (this
                // node's replica may lag; it adopts that one instead).
                if this.latest().size >= head
                    || head <= this.published.load(std::sync::atomic::Ordering::SeqCst)
                {
                    continue;
                }
                signed_at = Some(tokio::time::Instant::now());
                let signer = Arc::clone(&this);
                match tokio::task::spawn_blocking(move || signer.sign_head()).await {
                    Ok(Ok(true)) => {
                        if let Some(l) = &this.leadership {
                            this.republish(&**l).await;
                        }
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot sign a checkpoint"),
                    Err(e) => tracing::error!(error = %e, "the checkpoint signer panicked"),
                }
            }
        });
        if let Some(l) = &self.leadership {
            let (this, l) = (Arc::clone(self), Arc::clone(l));
            tokio::spawn(async move {
                loop {
                    match l.watch().await {
                        Ok(mut published) => {
                            while let Some(bytes) = published.next().await {
                                this.adopt(bytes).await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot watch the published checkpoints")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }

    /// Publishes this node's newest checkpoint if the register does not
    /// hold it yet (a failed publication is tried again next tick).
    async fn republish(&self, l: &dyn Leadership) {
        let latest = self.latest();
        let published = self.published.load(std::sync::atomic::Ordering::SeqCst);
        if latest.note.is_empty() || latest.size <= published {
            return;
        }
        match l.publish(&latest.note).await {
            Ok(()) => {
                self.published
                    .fetch_max(latest.size, std::sync::atomic::Ordering::SeqCst);
            }
            Err(e) => {
                tracing::warn!(error = %e, size = latest.size, "a signed checkpoint was not published yet")
            }
        }
    }

    /// Takes a checkpoint another node signed, once this node's tree has
    /// its size: same origin, signed by the log key, same root. A root that
    /// differs is a fork of this node's replica, reported and not served.
    async fn adopt(self: &Arc<Self>, bytes: Vec<u8>) {
        let checkpoint = match note::open(&bytes, &self.signer.verifier_key()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "a published checkpoint is not signed by the log key; ignored");
                return;
            }
        };
        if checkpoint.origin != self.signer.name() {
            return;
        }
        self.published
            .fetch_max(checkpoint.size, std::sync::atomic::Ordering::SeqCst);
        if checkpoint.size <= self.latest().size {
            return;
        }
        if checkpoint.size > 0
            && !matches!(
                tokio::time::timeout(
                    Duration::from_secs(60),
                    self.log.wait_past(checkpoint.size - 1)
                )
                .await,
                Ok(true)
            )
        {
            tracing::warn!(
                size = checkpoint.size,
                head = self.log.head(),
                "a published checkpoint is ahead of this node's replica; not adopted"
            );
            return;
        }
        let this = Arc::clone(self);
        let adopted = tokio::task::spawn_blocking(move || -> Result<(), TlogError> {
            let tree = this.log.tree_at(checkpoint.size).ok_or_else(|| {
                TlogError::Inconsistent(format!("no tree of size {}", checkpoint.size))
            })?;
            if tree.root()? != checkpoint.root {
                return Err(TlogError::Inconsistent(format!(
                    "the published checkpoint of {} records states another root than this node's tree: its replica forked",
                    checkpoint.size
                )));
            }
            this.log.put_checkpoint(checkpoint.size, &bytes)?;
            this.latest.send_if_modified(|latest| {
                let newer = checkpoint.size > latest.size;
                if newer {
                    *latest = Signed {
                        size: checkpoint.size,
                        note: Arc::new(bytes),
                    };
                }
                newer
            });
            Ok(())
        })
        .await;
        match adopted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "a published checkpoint was not adopted"),
            Err(e) => tracing::error!(error = %e, "adopting a checkpoint panicked"),
        }
    }
}
