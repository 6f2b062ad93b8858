//! One writer among many nodes: a lease that at most one node holds at a
//! time, and a register of the newest value that holder published, which
//! every node watches. The checkpoint signer (`tlog`) uses them so that on
//! a JetStream log exactly one node signs and every node serves what it
//! signed (docs/JETSTREAM.md, "Checkpoints: one signer").
//!
//! On JetStream the lease is the key `holder` of the bucket
//! `<stream>_HOLDER`, whose entries the NATS server expires [`LEASE`] after
//! it stored them (the bucket's `max_age`): taken with create-if-absent,
//! renewed with compare-and-set at the revision held. Only the server's
//! clock decides when a lease ends; a node never compares a time another
//! node wrote with its own clock. The holder counts its lease from the
//! moment it sent the write that took or renewed it, on its monotonic
//! clock: the server stored that write later, so it expires it later.
//! The published value is the key `latest` of the bucket `<stream>_LEASE`
//! (no expiry), written with compare-and-set at the revision the writer
//! last saw, so a deposed holder's late write is refused (fenced).
//!
//! Must never: report the lease held later than [`LEASE`] minus [`MARGIN`]
//! after the write that took or renewed it was sent, read a wall clock, or
//! overwrite a value published after the one this node saw.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a taken or renewed lease lasts (the holder bucket's `max_age`).
pub const LEASE: Duration = Duration::from_secs(6);
/// A holder stops acting this long before its lease runs out by its own
/// count (the margin covers a slow renewal and the rates at which the
/// server's and the node's clocks run; the vanthu nodes' clock settings do
/// not matter, but a step of the NATS servers' clocks does).
pub const MARGIN: Duration = Duration::from_secs(2);

/// `Leadership` on a JetStream key-value bucket.
pub struct JetStreamLeadership {
    /// `latest`, the published value.
    kv: kv::Store,
    /// `holder`, expired by the server.
    holder: kv::Store,
    me: String,
    /// Until when this node holds, by its monotonic clock: [`LEASE`] after
    /// it sent the write that took or renewed the lease.
    held: Mutex<Option<Instant>>,
    /// The revision of `latest` this node last saw (watching) or wrote.
    seen: std::sync::Arc<Mutex<u64>>,
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
        let bucket = format!("{stream}_HOLDER");
        let holder = super::files::key_value(
            js,
            kv::Config {
                bucket: bucket.clone(),
                description:
                    "vanthu: the node that signs checkpoints and sends, until the server expires it"
                        .into(),
                history: 1,
                max_age: LEASE,
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        super::files::answering(&bucket, || async { holder.get("probe").await.is_ok() }).await?;
        Ok(Self {
            kv,
            holder,
            me,
            held: Mutex::new(None),
            seen: Default::default(),
        })
    }

    /// Takes the lease when the server holds no live one, renews it when
    /// it is this node's: true when this node holds it now.
    async fn try_hold(&self) -> Result<bool, String> {
        let sent = Instant::now();
        let me = Bytes::from(self.me.clone());
        let entry = self
            .holder
            .entry("holder")
            .await
            .map_err(|e| e.to_string())?;
        match entry {
            // Live on the server, and another node's: whatever its clock says.
            Some(e) if e.operation == kv::Operation::Put && e.value != me => return Ok(false),
            // This node's, or deleted: renew or take it at that revision.
            Some(e) => {
                self.holder
                    .update("holder", me, e.revision)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            None => {
                self.holder
                    .create("holder", me)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent + LEASE);
        Ok(true)
    }

    fn holds_now(&self) -> bool {
        let held = *self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.is_some_and(|until| Instant::now() + MARGIN < until)
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
