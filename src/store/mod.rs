//! The event log: an append-only, gapless, durable, tamper-evident sequence of
//! records, grouped into streams with optimistic concurrency. This module
//! holds what every backend shares: the `EventLog` and `BlobStore` seams,
//! the public types and errors, and `Subscription`.
//!
//! Backends: `RocksLog` (`rocks_log`; appends go to a single writer thread
//! that group-commits, see `writer`; reads go straight to RocksDB; a record
//! is visible only once its WriteBatch was written with `sync=true`, so
//! whatever a reader sees is durable and gapless) and `jetstream::JetStreamLog`.
//! Both validate appends with `prepared::Prepared`.
//!
//! Must never: know what a document, register or official is; rewrite or
//! delete a record; let anything but `writer` write the log's families.

pub mod backup;
mod blobs;
pub use blobs::{BlobStore, Upload};
mod check;
pub use check::{check, CheckReport};
pub mod codec;
pub mod jetstream;
// The JetStream backend's files, lease and marks keep their old paths.
pub use jetstream::files as jetstream_files;
pub use jetstream::{lease, marks};
mod prepared;
pub mod rocks;
mod rocks_log;
pub use rocks_log::{RocksLog, CLEAN_SHUTDOWN_MARKER};
pub mod space;
pub mod tables;
pub mod tree;
mod writer;

/// Names of the metrics the writer records through the `metrics` facade
/// (nothing is recorded unless the service installed a recorder).
pub mod metric_names {
    pub const LOG_COMMITS: &str = "vanthu_log_group_commits_total";
    pub const LOG_EVENTS: &str = "vanthu_log_events_total";
    pub const LOG_EVENTS_PER_COMMIT: &str = "vanthu_log_events_per_commit";
    pub const LOG_FSYNC_SECONDS: &str = "vanthu_log_fsync_seconds";
}

use std::collections::VecDeque;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

pub use codec::{CodecError, Metadata, Record};

/// Most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Most canonical payload bytes one append may carry.
pub const MAX_APPEND_BYTES: usize = 16 << 20;
/// Most bytes one record may have: C2SP tlog-tiles entry bundles prefix
/// each entry with a 16-bit length. Appends that could produce a longer
/// record are refused before the writer sees them; documents' files never
/// make records long, as events cite them by digest (`store::blobs`).
pub const MAX_RECORD_BYTES: usize = 65_535;

/// What a stream must look like for an append to it to proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// The stream has no event yet.
    NoStream,
    /// The stream's last version is exactly this (versions start at 1).
    Exact(u64),
    /// No check.
    Any,
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
            ExpectedVersion::Any => f.write_str("any version"),
        }
    }
}

impl ExpectedVersion {
    pub(crate) fn admits(self, current: Option<u64>) -> bool {
        match (self, current) {
            (ExpectedVersion::Any, _) => true,
            (ExpectedVersion::NoStream, None) => true,
            (ExpectedVersion::Exact(v), Some(c)) => v == c,
            _ => false,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Event id; a retried append that reuses it is answered from the log.
    pub id: Uuid,
    /// Versioned event name, e.g. `document.drafted.v1`.
    pub event_type: String,
    /// The event body (JSON; integers must fit in ±(2^53-1)).
    pub payload: Value,
    /// Actor, causation, correlation.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id and empty metadata.
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// The events for one stream within an append.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// Versions one stream took in an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAppended {
    pub stream: String,
    pub first_version: u64,
    pub last_version: u64,
}

/// Outcome of an append. Positions are contiguous, in request order: the
/// streams in the order given, each stream's events in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    pub first_position: u64,
    pub last_position: u64,
    pub streams: Vec<StreamAppended>,
    /// True when this is the stored outcome of an earlier identical append
    /// (same idempotency key or same event ids): nothing was written.
    pub replayed: bool,
}

impl Appended {
    /// Every position, in request order.
    pub fn positions(&self) -> std::ops::RangeInclusive<u64> {
        self.first_position..=self.last_position
    }
}

/// Why an append was refused. Nothing of a refused append was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream} was expected at {expected} but is at {}", match .actual { Some(v) => format!("version {v}"), None => "no stream".into() })]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("idempotency key {key:?} was already used for a different append")]
    IdempotencyConflict { key: String },
    #[error("event id {id} is already in the log at position {position}")]
    DuplicateEventId { id: Uuid, position: u64 },
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("the log is not accepting writes: {0}")]
    Unavailable(String),
    /// Refused before anything was written: the disk is nearly full.
    #[error("the disk is nearly full: {0}")]
    StorageFull(String),
    /// The write failed after the append was handed to RocksDB: it may or
    /// may not be in the log. Retry with the same idempotency key (or the
    /// same event ids) once the service is back; the retry is answered
    /// correctly either way.
    #[error("the outcome is unknown, retry with the same idempotency key: {0}")]
    Indeterminate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CodecError> for AppendError {
    fn from(e: CodecError) -> Self {
        AppendError::Invalid(e.to_string())
    }
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("stored data: {0}")]
    Codec(#[from] CodecError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("the log is corrupt at position {position}: {reason}. Refusing to start; restore from a backup or inspect with `vanthu check`")]
    Corrupt { position: u64, reason: String },
    #[error("the log is closed")]
    Closed,
    /// A cluster the store lives on did not answer (no leader yet, a
    /// leader change, a timeout): retry.
    #[error("the store's cluster did not answer: {0}")]
    Unavailable(String),
    /// A replica could not apply what its source log committed.
    #[error("the replica cannot follow its source log: {0}")]
    Replica(String),
    /// Refused before anything was written: the disk is nearly full.
    #[error("the disk is nearly full: {0}")]
    StorageFull(String),
}

/// How the log is opened.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// How many of the last records to re-hash on open.
    pub verify_tail: u64,
    /// Most events one group commit may take.
    pub max_batch_events: usize,
    /// Most payload bytes one group commit may take (one append may exceed it).
    pub max_batch_bytes: usize,
    /// Test hook: the writer waits for this many requests before a commit.
    #[doc(hidden)]
    pub min_batch_requests: usize,
    /// Test hook: the n-th group commit (1-based) fails as if RocksDB did.
    #[doc(hidden)]
    pub fail_write_at_batch: Option<u64>,
    /// Free space kept on the data directory's file system.
    pub space: space::SpacePolicy,
    /// Benchmark hook: keep the Merkle tree (always, except to measure
    /// its cost; a log written without it gets it built at its next open).
    #[doc(hidden)]
    pub maintain_tree: bool,
    /// RocksDB's memory: block cache and memtables together
    /// (`store.memory_mb`).
    pub memory_mb: usize,
    /// A replica of another log (`store::jetstream`): `append` refuses, and
    /// records arrive only through `replicate`.
    pub replica: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            verify_tail: 1000,
            max_batch_events: 8192,
            max_batch_bytes: 32 << 20,
            min_batch_requests: 1,
            fail_write_at_batch: None,
            space: space::SpacePolicy::default(),
            maintain_tree: true,
            memory_mb: rocks::DEFAULT_MEMORY_MB,
            replica: false,
        }
    }
}

/// Whether the log takes writes, and where it is.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub writable: bool,
    pub head: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counters of the writer since open.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// WriteBatches written (one fsync each).
    pub batches: u64,
    /// Appends acknowledged (replays included).
    pub appends: u64,
    /// Events written.
    pub events: u64,
    /// Bytes the writer's cache of stream heads holds (at most
    /// `writer::HEAD_CACHE_BYTES`).
    pub head_cache_bytes: u64,
}

/// The seam between the application and a log backend: what the command
/// service needs, and nothing of RocksDB. `RocksLog` implements it with its
/// own writer; `jetstream::JetStreamLog` sends appends to a JetStream stream
/// and reads from its local replica.
pub trait EventLog: Send + Sync {
    /// One atomic append across streams, each checked against its expected
    /// version; durable when the future resolves, and visible to this
    /// node's reads.
    fn append<'a>(
        &'a self,
        streams: Vec<StreamAppend>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, AppendError>>;
    /// What `append(streams, Some(key))` would replay, without writing
    /// (see `RocksLog::replay_of`).
    fn replay_of(
        &self,
        streams: Vec<StreamAppend>,
        key: &str,
    ) -> Result<Option<Appended>, AppendError>;
    /// Up to `limit` records from position `from` on.
    fn read_all(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError>;
    /// Up to `limit` records of `stream` from version `from_version` (inclusive).
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
    /// The stream's last version, or `None` if it has no event.
    fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError>;
    /// The position of the last durable record (0 when empty).
    fn head(&self) -> u64;
    /// Every record from `from` on, in order, waiting at the head.
    fn follow(&self, from: u64) -> Subscription;
}

/// A reader that follows the log: history first, then new records as they
/// become durable. Never skips or repeats a position.
pub struct Subscription {
    log: RocksLog,
    next: u64,
    buf: VecDeque<Record>,
    head: watch::Receiver<u64>,
}

impl Subscription {
    /// Records fetched per read while catching up.
    const CHUNK: usize = 512;

    /// The next record, waiting for one if the subscriber is at the head.
    pub async fn next(&mut self) -> Result<Record, StoreError> {
        loop {
            if let Some(r) = self.buf.pop_front() {
                self.next = r.position + 1;
                return Ok(r);
            }
            let head = *self.head.borrow_and_update();
            if head >= self.next {
                let log = self.log.clone();
                let from = self.next;
                let chunk = tokio::task::spawn_blocking(move || log.read_all(from, Self::CHUNK))
                    .await
                    .map_err(|_| StoreError::Closed)??;
                self.buf.extend(chunk);
                continue;
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Closed);
            }
        }
    }

    /// Position of the next record this subscription will deliver.
    pub fn position(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests;
