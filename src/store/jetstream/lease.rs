//! One writer among many nodes: a lease that at most one node holds at a
//! time, and a register of the newest value that holder published, which
//! every node watches. The checkpoint signer (`tlog`) uses them so that on
//! a JetStream log exactly one node signs and every node serves what it
//! signed (docs/JETSTREAM.md, "Checkpoints: one signer").
//!
//! On JetStream both live in the key-value bucket `<stream>_LEASE`: key
//! `holder` = `<node id> <expiry, Unix ms>`, taken with create-if-absent
//! and renewed with compare-and-set at the revision held; key `latest` =
//! the published value, written with compare-and-set at the revision the
//! writer last saw, so a deposed holder's late write is refused (fenced).
//!
//! Must never: report the lease held after its expiry as this node last
//! wrote it, or overwrite a value published after the one this node saw.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::store::StoreError;

/// A lease and a fenced register shared by the nodes of one log.
pub trait Leadership: Send + Sync {
    /// Takes or renews the lease; true while this node holds it.
    fn hold(&self) -> BoxFuture<'_, bool>;
    /// Publishes `value` as the newest, if this node still holds the lease
    /// and nobody published since this node last saw the register.
    fn publish<'a>(&'a self, value: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
    /// The register's current value, then every value published after it.
    fn watch(&self) -> BoxFuture<'_, Result<BoxStream<'static, Vec<u8>>, String>>;
    /// Whether this node holds the lease now, as it last took or renewed it
    /// (false within the margin before it runs out).
    fn holds(&self) -> bool;
}

/// How long a taken or renewed lease lasts.
pub const LEASE: Duration = Duration::from_secs(6);
/// A holder stops acting this long before its lease runs out (the margin
/// covers clock differences between nodes and a slow renewal).
pub const MARGIN: Duration = Duration::from_secs(2);

/// `Leadership` on a JetStream key-value bucket.
pub struct JetStreamLeadership {
    kv: kv::Store,
    me: String,
    /// The revision of `holder` this node wrote, and until when it holds.
    held: Mutex<Option<(u64, u128)>>,
    /// The revision of `latest` this node last saw (watching) or wrote.
    seen: std::sync::Arc<Mutex<u64>>,
}

fn now_ms() -> u128 {
    // Lease expiry is wall-clock time shared by nodes, not the service
    // clock (which a development run may move).
    #[allow(clippy::disallowed_methods)]
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

impl JetStreamLeadership {
    /// The bucket `<stream>_LEASE`, created when missing; `me` names this
    /// node in the lease.
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        replicas: usize,
        me: String,
    ) -> Result<Self, StoreError> {
        let bucket = format!("{stream}_LEASE");
        let kv = super::files::key_value(
            js,
            kv::Config {
                bucket: bucket.clone(),
                description: "vanthu: who signs checkpoints, and the newest one".into(),
                history: 1,
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        super::files::answering(&bucket, || async { kv.get("probe").await.is_ok() }).await?;
        Ok(Self {
            kv,
            me,
            held: Mutex::new(None),
            seen: Default::default(),
        })
    }

    async fn try_hold(&self) -> Result<bool, String> {
        let now = now_ms();
        let value = |until: u128| Bytes::from(format!("{} {until}", self.me));
        let until = now + LEASE.as_millis();
        let entry = self.kv.entry("holder").await.map_err(|e| e.to_string())?;
        let taken = match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let text = String::from_utf8_lossy(&e.value).into_owned();
                let (holder, expiry) = text.split_once(' ').unwrap_or(("", "0"));
                let expiry: u128 = expiry.parse().unwrap_or(0);
                if holder != self.me && expiry > now {
                    return Ok(false);
                }
                self.kv
                    .update("holder", value(until), e.revision)
                    .await
                    .map_err(|e| e.to_string())?
            }
            Some(e) => self
                .kv
                .update("holder", value(until), e.revision)
                .await
                .map_err(|e| e.to_string())?,
            None => self
                .kv
                .create("holder", value(until))
                .await
                .map_err(|e| e.to_string())?,
        };
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some((taken, until));
        Ok(true)
    }

    fn holds_now(&self) -> bool {
        let held = *self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.is_some_and(|(_, until)| now_ms() + MARGIN.as_millis() < until)
    }
}

impl Leadership for JetStreamLeadership {
    fn holds(&self) -> bool {
        self.holds_now()
    }

    fn hold(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            match self.try_hold().await {
                Ok(true) => true,
                Ok(false) => {
                    *self.held.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    false
                }
                // Unreachable cluster, or another node renewed in between:
                // hold on only while the lease last written still runs.
                Err(_) => self.holds_now(),
            }
        })
    }

    fn publish<'a>(&'a self, value: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.holds_now() {
                return Err("this node does not hold the lease".into());
            }
            let seen = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let value = Bytes::copy_from_slice(value);
            let written = if seen == 0 {
                self.kv
                    .create("latest", value)
                    .await
                    .map_err(|e| e.to_string())?
            } else {
                self.kv
                    .update("latest", value, seen)
                    .await
                    .map_err(|e| e.to_string())?
            };
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = written;
            Ok(())
        })
    }

    fn watch(&self) -> BoxFuture<'_, Result<BoxStream<'static, Vec<u8>>, String>> {
        Box::pin(async move {
            let watch = self
                .kv
                .watch_with_history("latest")
                .await
                .map_err(|e| e.to_string())?;
            let seen = std::sync::Arc::clone(&self.seen);
            Ok(watch
                .filter_map(move |e| {
                    let seen = std::sync::Arc::clone(&seen);
                    async move {
                        match e {
                            Ok(e) if e.operation == kv::Operation::Put => {
                                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                                *s = (*s).max(e.revision);
                                Some(e.value.to_vec())
                            }
                            _ => None,
                        }
                    }
                })
                .boxed())
        })
    }
}
