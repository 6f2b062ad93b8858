//! Marks shared by the nodes of one log: small values by key that every
//! node reads and any may write, for outcomes that happen outside the log
//! (the outbox's "delivered" and "dead", so that a node taking the sending
//! over does not send again what another node already delivered).
//!
//! On JetStream they live in the key-value bucket `<stream>_MARKS` (one
//! value per key, kept 90 days). A single-node log has none: its own
//! tables are the whole truth.
//!
//! Must never: hold anything the log must prove, or anything secret.

use async_nats::jetstream::{self, kv};
use futures_util::future::BoxFuture;

use crate::store::StoreError;

/// Values by key, shared among nodes.
pub trait Marks: Send + Sync {
    /// Sets `key` to `value`.
    fn put<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
    /// The value of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>>;
}

/// How long a mark is kept.
pub const KEPT: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// `Marks` on a JetStream key-value bucket.
pub struct JetStreamMarks {
    kv: kv::Store,
}

impl JetStreamMarks {
    /// The bucket `<stream>_MARKS`, created when missing.
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let bucket = format!("{stream}_MARKS");
        let kv = super::files::key_value(
            js,
            kv::Config {
                bucket,
                description: "vanthu: outcomes shared by the nodes (outbox deliveries)".into(),
                history: 1,
                max_age: KEPT,
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self { kv })
    }
}

impl Marks for JetStreamMarks {
    fn put<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.kv
                .put(key, value.to_vec().into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            self.kv
                .get(key)
                .await
                .map(|v| v.map(|b| b.to_vec()))
                .map_err(|e| e.to_string())
        })
    }
}
