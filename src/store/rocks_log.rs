//! `RocksLog`, the event log on RocksDB: open (tail verified, tree checked),
//! close (writer stopped, memtables flushed, clean-shutdown marker), reads,
//! tree tiles, checkpoints, positions, tables and memory. Appends go to the
//! single writer thread (`writer`); reads go straight to RocksDB.
//!
//! Must never: write the log's families itself (only `writer` does), or
//! show a reader a record before its batch was synced.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use rocksdb::{Direction, IteratorMode};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::codec::{self, keys};
use super::prepared::Prepared;
use super::rocks::{self, cf, Db, CF_CHECKPOINTS, CF_HEADS, CF_LEAVES, CF_LOG, CF_STREAMS};
use super::{
    space, tables, tree, writer, AppendError, Appended, EventLog, Health, LogOptions, Record,
    Stats, StoreError, StreamAppend, Subscription,
};
use crate::crypto::merkle;

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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) db: Arc<Db>,
    pub(super) memory: rocks::Memory,
    pub(super) tx: Option<mpsc::Sender<writer::Job>>,
    pub(super) replica: bool,
    /// `close` ran: the writer is stopped and the marker written.
    pub(super) closed: std::sync::atomic::AtomicBool,
    pub(super) head: watch::Receiver<u64>,
    pub(super) shared: Arc<writer::Shared>,
    pub(super) thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(super) clean_start: bool,
    pub(super) blob_lock: Mutex<()>,
    pub(super) space: space::Space,
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
        let memory = rocks::Memory::new(options.memory_mb << 20);
        let (mut policy, raised) = options.space.at_least(memory.write_buffer());
        for why in raised {
            tracing::warn!("{why} (docs/OPERATIONS.md, \"Disk space\")");
        }
        // The writer checks whole group commits: up to `max_batch_bytes`
        // and the request that passes it.
        if policy.min_free != 0 {
            policy.headroom = policy
                .headroom
                .saturating_add(options.max_batch_bytes as u64);
        }
        // One policy for the writer, the uploads and readiness alike.
        let options = LogOptions {
            space: policy,
            ..options
        };
        let space = space::Space::new(path, policy);
        space.release_reserve_if_short();
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
        let prepared = Prepared::new(streams, idempotency_key)?;
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
        Prepared::new(streams, Some(key))?.replay_from(&self.inner.db)
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
            head_cache_bytes: s.head_cache_bytes.load(Ordering::Relaxed),
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
