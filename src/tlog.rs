//! The log as a transparency log: the checkpoint signer. At start it checks
//! the newest stored checkpoint against the tree (same origin, a size the
//! log still has, the same root) and co-signs it with a new log key; then,
//! off the request path, it signs a checkpoint of the durable head at most
//! every `tlog.checkpoint_interval_ms` when the tree grew. Every checkpoint
//! is kept; handlers read the newest from a watch.
//!
//! Must never: sign a checkpoint whose root was not computed from the
//! stored tree at that size, sign two checkpoints that disagree, or sign on
//! a request's behalf (requests wait for the signer instead).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::crypto::note::{self, Checkpoint, LogSigner, NoteError};
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
}

impl Checkpoints {
    /// Checks the newest stored checkpoint against the tree, co-signs it if
    /// the log key changed, and signs the head if the tree grew since.
    pub fn open(log: RocksLog, signer: Arc<dyn LogSigner>) -> Result<Self, TlogError> {
        let stored = match log.latest_checkpoint()? {
            Some((size, bytes)) => Some(Self::recheck(&log, &*signer, size, bytes)?),
            None => None,
        };
        let initial = stored.clone().unwrap_or(Signed {
            size: 0,
            note: Arc::new(Vec::new()),
        });
        let this = Self {
            log,
            signer,
            latest: watch::Sender::new(initial),
        };
        if stored.is_none() || this.latest().size < this.log.head() {
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
        self.latest.send_replace(Signed {
            size,
            note: Arc::new(bytes),
        });
        Ok(true)
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

    /// Signs a checkpoint every `interval` when the tree grew, for as long as
    /// the runtime lives. A failure is logged and retried at the next tick.
    pub fn spawn(self: &Arc<Self>, interval: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if this.latest().size >= this.log.head() {
                    continue;
                }
                let signer = Arc::clone(&this);
                match tokio::task::spawn_blocking(move || signer.sign_head()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot sign a checkpoint"),
                    Err(e) => tracing::error!(error = %e, "the checkpoint signer panicked"),
                }
            }
        });
    }
}
