//! The event log: an append-only, gapless, durable, tamper-evident sequence of
//! records on RocksDB, grouped into streams with optimistic concurrency.
//!
//! `RocksLog` is the only way in. Appends go to a single writer thread that
//! group-commits (see `writer`); reads go straight to RocksDB. A record is
//! visible only once its WriteBatch was written with `sync=true`, so whatever
//! a reader sees is durable and gapless.
//!
//! Must never: know what a document, register or official is; rewrite or
//! delete a record; let anything but `writer` write the log's families.

pub mod backup;
mod blobs;
pub use blobs::{BlobStore, Upload};
pub mod codec;
pub mod jetstream;
pub mod jetstream_files;
pub mod lease;
pub mod marks;
pub mod rocks;
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
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use rocksdb::{Direction, IteratorMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::crypto::merkle;
use codec::keys;
pub use codec::{CodecError, Metadata, Record};
use rocks::{cf, Db, CF_CHECKPOINTS, CF_HEADS, CF_LEAVES, CF_LOG, CF_STREAMS};

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

impl EventLog for RocksLog {
    fn append<'a>(
        &'a self,
        streams: Vec<StreamAppend>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, AppendError>> {
        Box::pin(RocksLog::append(self, streams, idempotency_key))
    }
    fn replay_of(
        &self,
        streams: Vec<StreamAppend>,
        key: &str,
    ) -> Result<Option<Appended>, AppendError> {
        RocksLog::replay_of(self, streams, key)
    }
    fn read_all(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        RocksLog::read_all(self, from, limit)
    }
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        RocksLog::read_stream(self, stream, from_version, limit)
    }
    fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        RocksLog::stream_version(self, stream)
    }
    fn head(&self) -> u64 {
        RocksLog::head(self)
    }
    fn follow(&self, from: u64) -> Subscription {
        RocksLog::subscribe(self, from)
    }
}

/// Handle to the log. Cheap to clone; the writer stops and the database
/// closes when the last clone is dropped.
#[derive(Clone)]
pub struct RocksLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Db>,
    memory: rocks::Memory,
    tx: Option<mpsc::Sender<writer::Job>>,
    replica: bool,
    /// `close` ran: the writer is stopped and the marker written.
    closed: std::sync::atomic::AtomicBool,
    head: watch::Receiver<u64>,
    shared: Arc<writer::Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    clean_start: bool,
    blob_lock: Mutex<()>,
    space: space::Space,
}

/// Written into the data directory after a clean close (writer stopped,
/// every memtable flushed), removed at the next open: its presence then
/// says nothing is left in the WAL to replay.
pub const CLEAN_SHUTDOWN_MARKER: &str = "VANTHU-CLEAN-SHUTDOWN";

impl Drop for Inner {
    fn drop(&mut self) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        // Closing the channel ends the writer after its current batch.
        self.tx.take();
        self.finish();
    }
}

impl Inner {
    /// Joins the (stopping) writer, flushes every memtable and writes the
    /// clean-shutdown marker, unless the writer failed.
    fn finish(&self) {
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        if self.shared.failure().is_some() {
            return; // a failed writer: the next start recovers from the WAL
        }
        let head = *self.head.borrow();
        match rocks::flush_all(&self.db) {
            Ok(()) => {
                let marker = self.db.path().join(CLEAN_SHUTDOWN_MARKER);
                if let Err(e) = std::fs::write(&marker, format!("{head}\n")) {
                    tracing::warn!(error = %e, "cannot write the clean-shutdown marker");
                } else {
                    tracing::info!(head, "event log closed cleanly: memtables flushed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "flush at close failed; the next start replays the WAL")
            }
        }
    }
}

impl RocksLog {
    /// Opens the log at `path`, verifying the last records' hashes and
    /// refusing a corrupt tail.
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, StoreError> {
        let marker = path.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        let space = space::Space::new(path, options.space);
        space.release_reserve_if_short();
        let memory = rocks::Memory::new(options.memory_mb << 20);
        let db = rocks::open(path, &memory)?;
        space.ensure_reserve();
        if clean {
            std::fs::remove_file(&marker)
                .map_err(|e| StoreError::Io(marker.display().to_string(), e))?;
        }
        let tail = rocks::verify_tail(&db, options.verify_tail)?;
        let tree = if options.maintain_tree {
            tree::check_at_open(&db, tail.head)?;
            Some(tree::Frontier::load(&db, tail.head)?)
        } else {
            None
        };
        let (head_tx, head_rx) = watch::channel(tail.head);
        let shared = Arc::new(writer::Shared::default());
        let (tx, rx) = mpsc::channel(4096);
        let replica = options.replica;
        let thread = writer::spawn(
            Arc::clone(&db),
            rx,
            head_tx,
            Arc::clone(&shared),
            tail,
            tree,
            options,
        )
        .map_err(|e| StoreError::Io("spawning the log writer".into(), e))?;
        tracing::info!(
            path = %path.display(),
            head = tail.head,
            verified = tail.verified,
            "event log open"
        );
        if clean {
            tracing::info!("the last run shut down cleanly: nothing was left to recover");
        } else if tail.head > 0 {
            tracing::warn!(
                "the last run did not shut down cleanly: RocksDB recovered from its WAL"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                memory,
                tx: Some(tx),
                replica,
                closed: Default::default(),
                head: head_rx,
                shared,
                thread: Mutex::new(Some(thread)),
                clean_start: clean,
                blob_lock: Mutex::new(()),
                space,
            }),
        })
    }

    /// The data directory's free space against the policy.
    pub fn space(&self) -> space::SpaceStatus {
        self.inner.space.status()
    }

    /// Whether this open followed a clean shutdown (the marker was there).
    pub fn clean_start(&self) -> bool {
        self.inner.clean_start
    }

    /// Appends events to one or more streams, atomically: either every
    /// stream's expected version holds and all events are written durably,
    /// or nothing is written.
    ///
    /// With an idempotency key (or when the first event's id is already in
    /// the log) a repeat of an earlier identical append returns its original
    /// outcome with `replayed: true`; a different append under the same key
    /// is `IdempotencyConflict`.
    #[tracing::instrument(name = "append", level = "debug", skip_all, fields(streams = streams.len()))]
    pub async fn append(
        &self,
        streams: Vec<StreamAppend>,
        idempotency_key: Option<&str>,
    ) -> Result<Appended, AppendError> {
        if self.inner.replica {
            return Err(AppendError::Unavailable(
                "this log is a replica: appends go to its source (store.backend)".into(),
            ));
        }
        let prepared = writer::Prepared::new(streams, idempotency_key)?;
        let (reply, rx) = oneshot::channel();
        self.send(writer::Job::Append(writer::Request { prepared, reply }))
            .await
            .map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?
    }

    /// Closes the log now, whatever other handles remain: the writer stops
    /// after its current group commit, every memtable is flushed and the
    /// clean-shutdown marker written; appends through any handle are
    /// refused from then on. Blocking; the service's last step.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(tx) = &self.inner.tx {
            let _ = tx.blocking_send(writer::Job::Stop);
        }
        self.inner.finish();
    }

    async fn send(&self, job: writer::Job) -> Result<(), StoreError> {
        let tx = self.inner.tx.as_ref().ok_or(StoreError::Closed)?;
        tx.send(job).await.map_err(|_| StoreError::Closed)
    }

    /// A replica's follower: writes `appends`, committed and ordered by the
    /// source log, as they are; the new head. Refused on a log that is not
    /// a replica.
    pub(in crate::store) async fn replicate(
        &self,
        appends: Vec<writer::Replicated>,
    ) -> Result<u64, StoreError> {
        if !self.inner.replica {
            return Err(StoreError::Replica(
                "this log is not a replica and takes no replicated records".into(),
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.send(writer::Job::Replicate(writer::Replication {
            appends,
            reply,
        }))
        .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// The outcome an `append(streams, Some(key))` would replay, without
    /// writing: `Ok(Some(outcome))` if `key` already carried this content,
    /// `IdempotencyConflict` if it carried other content, `Ok(None)` if it is
    /// unused. Lets a caller answer a retry before re-checking rules that
    /// the first attempt already changed.
    pub fn replay_of(
        &self,
        streams: Vec<StreamAppend>,
        key: &str,
    ) -> Result<Option<Appended>, AppendError> {
        writer::Prepared::new(streams, Some(key))?.replay_from(&self.inner.db)
    }

    /// Last durable position (0 when the log is empty).
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Whether the writer accepts appends.
    pub fn health(&self) -> Health {
        let stopped = self.inner.tx.as_ref().is_none_or(|tx| tx.is_closed());
        let error = self
            .inner
            .shared
            .failure()
            .or_else(|| stopped.then(|| "the writer thread has stopped".to_owned()));
        Health {
            writable: error.is_none(),
            head: self.head(),
            error,
        }
    }

    /// Writer counters since open.
    pub fn stats(&self) -> Stats {
        let s = &self.inner.shared;
        Stats {
            batches: s.batches.load(Ordering::Relaxed),
            appends: s.appends.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
        }
    }

    /// Up to `limit` records from position `from` (inclusive), in order.
    pub fn read_all(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let head = self.head();
        let from = from.max(1);
        if from > head || limit == 0 {
            return Ok(Vec::new());
        }
        let db = &self.inner.db;
        let start = keys::position(from);
        let mut out = Vec::with_capacity(limit.min(4096).min((head - from + 1) as usize));
        let mut expected = from;
        for item in db.iterator_cf(
            &cf(db, CF_LOG),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = item?;
            let pos = keys::parse_position(&k)?;
            if pos > head || out.len() == limit {
                break;
            }
            if pos != expected {
                return Err(StoreError::Corrupt {
                    position: pos,
                    reason: format!("gap: expected position {expected}"),
                });
            }
            out.push(codec::decode(&v)?);
            expected += 1;
        }
        if out.len() < limit && expected <= head {
            return Err(StoreError::Corrupt {
                position: expected,
                reason: format!("record missing below the head {head}"),
            });
        }
        Ok(out)
    }

    /// Up to `limit` records of `stream` from version `from_version` (inclusive).
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        // A point lookup first (the heads family has a bloom filter): a
        // stream that does not exist, or has nothing from `from_version`
        // on, costs no iterator. New documents and new idempotency keys,
        // the common case on the command path, end here.
        match self.stream_version(stream)? {
            Some(last) if last >= from_version.max(1) && limit > 0 => {}
            _ => return Ok(Vec::new()),
        }
        let db = &self.inner.db;
        let prefix = keys::stream_prefix(stream);
        let start = keys::stream_version(stream, from_version.max(1));
        let mut positions = Vec::new();
        for item in db.iterator_cf(
            &cf(db, CF_STREAMS),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || positions.len() == limit {
                break;
            }
            positions.push(keys::parse_position(&v)?);
        }
        let log = cf(db, CF_LOG);
        let mut out = Vec::with_capacity(positions.len());
        for pos in positions {
            let bytes =
                db.get_pinned_cf(&log, keys::position(pos))?
                    .ok_or(StoreError::Corrupt {
                        position: pos,
                        reason: format!("stream {stream} points at a missing record"),
                    })?;
            out.push(codec::decode(&bytes)?);
        }
        Ok(out)
    }

    /// The stream's last version, or `None` if it has no event.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        codec::validate_stream_id(stream)?;
        let db = &self.inner.db;
        match db.get_pinned_cf(&cf(db, CF_HEADS), stream.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(keys::parse_position(&v)?)),
        }
    }

    /// The record at `position` exactly as stored (its leaf hash is over these bytes).
    pub fn record_bytes(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if position == 0 || position > self.head() {
            return Ok(None);
        }
        let db = &self.inner.db;
        Ok(db.get_cf(&cf(db, CF_LOG), keys::position(position))?)
    }

    /// The stored leaf hash of the record at `position`.
    pub fn leaf_hash(&self, position: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let db = &self.inner.db;
        Ok(db
            .get_pinned_cf(&cf(db, CF_LEAVES), keys::position(position))?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok()))
    }

    /// The Merkle tree of the first `size` records; `None` beyond the head.
    pub fn tree_at(&self, size: u64) -> Option<tree::TreeReader<'_>> {
        (size <= self.head()).then(|| tree::reader(&self.inner.db, size))
    }

    /// Tile `level/index` of `width` hashes (C2SP tlog-tiles), if the
    /// tree at the durable head has it.
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Option<Vec<u8>>, StoreError> {
        tree::tile(&self.inner.db, self.head(), level, index, width)
    }

    /// Entry bundle `index` of `width` records (C2SP tlog-tiles): each
    /// record's bytes after its big-endian 16-bit length; `None` if the
    /// log does not have them (yet).
    pub fn entry_bundle(&self, index: u64, width: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let tile = merkle::TILE_WIDTH;
        if width == 0 || width > tile {
            return Ok(None);
        }
        let Some(first) = index.checked_mul(tile).and_then(|f| f.checked_add(1)) else {
            return Ok(None);
        };
        if first.saturating_add(width - 1) > self.head() {
            return Ok(None);
        }
        let db = &self.inner.db;
        let log = cf(db, CF_LOG);
        let mut out = Vec::new();
        for position in first..first + width {
            let bytes =
                db.get_pinned_cf(&log, keys::position(position))?
                    .ok_or(StoreError::Corrupt {
                        position,
                        reason: "record missing below the head".into(),
                    })?;
            let len = u16::try_from(bytes.len()).map_err(|_| StoreError::Corrupt {
                position,
                reason: format!("a record of {} bytes cannot be a tile entry", bytes.len()),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        Ok(Some(out))
    }

    /// Keeps a signed checkpoint of the tree of `size` records (every one
    /// is kept, so any old checkpoint can be proven consistent with a new one).
    pub fn put_checkpoint(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        let db = &self.inner.db;
        db.put_cf_opt(
            &cf(db, CF_CHECKPOINTS),
            keys::position(size),
            note,
            &rocks::sync_write(),
        )?;
        Ok(())
    }

    /// The newest signed checkpoint and its tree size.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let db = &self.inner.db;
        match db
            .iterator_cf(&cf(db, CF_CHECKPOINTS), IteratorMode::End)
            .next()
        {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((keys::parse_position(&k)?, v.to_vec())))
            }
        }
    }

    /// The signed checkpoint of the tree of exactly `size` records, if one was made.
    pub fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let db = &self.inner.db;
        Ok(db.get_cf(&cf(db, CF_CHECKPOINTS), keys::position(size))?)
    }

    /// RocksDB's memory: bytes its shared cache holds (blocks and charged
    /// memtables), and its capacity.
    pub fn memory(&self) -> (usize, usize) {
        (self.inner.memory.usage(), self.inner.memory.capacity())
    }

    /// The table of projection `name` (its family is created if missing).
    /// Bytes RocksDB's memory may hold (`store.memory_mb`).
    pub fn memory_capacity(&self) -> usize {
        self.inner.memory.capacity()
    }

    pub fn table(&self, name: &str) -> Result<tables::Table, StoreError> {
        tables::Table::open(Arc::clone(&self.inner.db), &self.inner.memory, name)
    }

    /// The position of `stream`'s event at `version`, if the log has it.
    pub fn position_of(&self, stream: &str, version: u64) -> Result<Option<u64>, StoreError> {
        let db = &self.inner.db;
        match db.get_pinned_cf(&cf(db, CF_STREAMS), keys::stream_version(stream, version))? {
            None => Ok(None),
            Some(v) => Ok(Some(keys::parse_position(&v)?)),
        }
    }

    /// The position of the event with id `id`, if the log has it.
    pub fn event_position(&self, id: &Uuid) -> Result<Option<u64>, StoreError> {
        let db = &self.inner.db;
        match db.get_pinned_cf(&cf(db, rocks::CF_IDS), keys::event_id(id))? {
            None => Ok(None),
            Some(v) => Ok(Some(keys::parse_position(&v)?)),
        }
    }

    /// Stops the log taking records (`health` reports `why`): a replica
    /// whose source cannot be followed any more.
    pub(in crate::store) fn fail(&self, why: String) {
        self.inner.shared.fail(why);
    }

    /// Waits until the durable head passes `position`; false if the log
    /// closed first.
    pub async fn wait_past(&self, position: u64) -> bool {
        let mut head = self.inner.head.clone();
        let reached = head.wait_for(|h| *h > position).await.is_ok();
        reached
    }

    /// Catch-up then live delivery of every record from `from` on, in order.
    pub fn subscribe(&self, from: u64) -> Subscription {
        Subscription {
            log: self.clone(),
            next: from.max(1),
            buf: VecDeque::new(),
            head: self.inner.head.clone(),
        }
    }
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Records re-hashed, the head, the last record's time.
    pub tail: rocks::TailReport,
    /// The Merkle tree recomputed from the leaves and compared with every
    /// stored hash (`None`: the log predates the tree and was not opened
    /// by a version that builds it yet).
    pub tree: Option<tree::Recomputed>,
    /// The newest signed checkpoint's tree size, if any; its root was
    /// found equal to the recomputed tree's at that size.
    pub checkpoint: Option<u64>,
}

/// Verifies every record of the log at `path`: positions gapless, records
/// decodable, leaf hashes intact; then recomputes the Merkle tree from the
/// leaves and compares every stored hash, and the newest checkpoint's root
/// (its signature is not checked: that needs the log's verifier key). The
/// service must not be running.
pub fn check(path: &Path) -> Result<CheckReport, StoreError> {
    if !path.join("CURRENT").exists() {
        return Err(StoreError::Io(
            path.display().to_string(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no event log here"),
        ));
    }
    let db = rocks::open_read_only(path)?;
    if [rocks::CF_LOG, rocks::CF_LEAVES]
        .iter()
        .any(|name| db.cf_handle(name).is_none())
    {
        // Killed before the first open created the log's families: no record
        // was ever written (families come before any append).
        return Ok(CheckReport {
            tail: rocks::TailReport {
                head: 0,
                verified: 0,
                last_recorded_at: None,
            },
            tree: None,
            checkpoint: None,
        });
    }
    let tail = rocks::verify_tail(&db, u64::MAX)?;
    let tree = match db.cf_handle(rocks::CF_TREE) {
        Some(_) => Some(tree::verify(&db, tail.head)?),
        None => None,
    };
    let mut checkpoint = None;
    if let Some(family) = db.cf_handle(CF_CHECKPOINTS) {
        if let Some(item) = db.iterator_cf(&family, IteratorMode::End).next() {
            let (k, note) = item?;
            let size = keys::parse_position(&k)?;
            let corrupt = |reason: String| StoreError::Corrupt {
                position: size,
                reason,
            };
            let stated = signed_note::Note::from_bytes(&note)
                .map_err(|e| corrupt(format!("the newest checkpoint is not a note: {e}")))
                .and_then(|n| {
                    crate::crypto::note::Checkpoint::parse_body(n.text())
                        .map_err(|e| corrupt(format!("the newest checkpoint: {e}")))
                })?;
            if size > tail.head {
                return Err(corrupt(format!(
                    "a checkpoint of {size} records was signed but the log has {}",
                    tail.head
                )));
            }
            if stated.size != size || tree::reader(&db, size).root()? != stated.root {
                return Err(corrupt(
                    "the newest checkpoint's root is not the tree's at its size".into(),
                ));
            }
            checkpoint = Some(size);
        }
    }
    Ok(CheckReport {
        tail,
        tree,
        checkpoint,
    })
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

/// Content fingerprint of an append: streams, types and canonical payloads,
/// in order (ids, metadata and expected versions excluded, so a client's
/// retry with fresh ids still matches).
fn fingerprint<'a>(items: impl Iterator<Item = (&'a str, &'a str, &'a [u8])>) -> [u8; 32] {
    let mut h = Sha256::new();
    for (stream, event_type, payload) in items {
        for part in [stream.as_bytes(), event_type.as_bytes(), payload] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests;
