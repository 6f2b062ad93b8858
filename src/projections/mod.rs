//! Projections: read models folded from the log (inboxes, deadlines,
//! registers, signature reports, the issued-documents feed, blob citations).
//!
//! Each projection owns a table (`store::tables::Table`, its own RocksDB
//! family) and a checkpoint. One runner thread reads the log after the
//! lowest checkpoint, decodes each record once, applies the batch to each
//! projection through a [`Tx`] (which sees its own writes), and commits
//! each projection's rows with its new checkpoint in one `WriteBatch`: a
//! crash never double-applies or skips a record. Any projection can be
//! dropped and rebuilt from the log (`vanthu rebuild`, which folds the log
//! in memory on a thread per projection: [`Projections::fold`]).
//!
//! Queries may wait (≤ 2 s) for a projection to pass a log position, which
//! gives read-your-writes without locking the writer.
//!
//! Must never: write to the log, read the clock inside `apply` (rows hold
//! facts; time-dependent states like "overdue" are computed at query time),
//! or depend on anything but the records it is given and its own rows.

pub mod arrivals;
pub mod citations;
pub mod deadlines;
pub mod feed;
pub mod inbox;
pub mod rebuild;
pub mod registers;
pub mod signatures;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::codec::Record;
use crate::store::tables::{Changes, Table};
use crate::store::{RocksLog, StoreError};

/// Records applied per commit.
pub const BATCH: usize = 2000;

/// Why a projection could not apply a record.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("record {position}: {reason}")]
    Decode { position: u64, reason: String },
}

/// A read model folded from the log.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the table is `p.<name>`, the CLI and `/readyz` use it.
    fn name(&self) -> &'static str;
    /// Applies one record; reads and writes go through `tx`.
    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError>;
}

/// A record with its document event decoded once for all projections.
pub struct Applied<'r> {
    pub record: &'r Record,
    /// For `doc-…` streams: the document id and its event.
    pub doc: Option<(uuid::Uuid, &'r crate::domain::document::DocumentEvent)>,
}

impl<'r> Applied<'r> {
    fn new(record: &'r Record, doc: &'r DocEvent) -> Self {
        Self {
            record,
            doc: doc.as_ref().map(|(id, e)| (*id, e)),
        }
    }
}

/// A record's document event, decoded (see [`document_event`]).
type DocEvent = Option<(uuid::Uuid, crate::domain::document::DocumentEvent)>;

/// Records read from the log with their document events decoded, owned, so
/// one reader can hand a batch to every projection's thread.
struct Batch {
    records: Vec<Record>,
    docs: Vec<DocEvent>,
}

impl Batch {
    /// Decodes every record's document event; the first that fails names
    /// its record.
    fn decode(records: Vec<Record>) -> Result<Self, ProjectionError> {
        let docs = records
            .iter()
            .map(document_event)
            .collect::<Result<_, _>>()?;
        Ok(Self { records, docs })
    }

    /// The last position in the batch (0 when empty).
    fn last(&self) -> u64 {
        self.records.last().map_or(0, |r| r.position)
    }

    /// The records, in log order.
    fn applied(&self) -> impl Iterator<Item = Applied<'_>> {
        self.records
            .iter()
            .zip(&self.docs)
            .map(|(record, doc)| Applied::new(record, doc))
    }
}

/// A batch of changes to one table; reads see the batch's own writes.
pub struct Tx<'a> {
    table: &'a Table,
    changes: Changes,
    /// Memory taken by the rows put, estimated (an overwrite counts again).
    written: usize,
}

impl<'a> Tx<'a> {
    pub fn new(table: &'a Table) -> Self {
        Self::on(table, Changes::new())
    }

    /// A batch that goes on from `changes` not yet committed.
    fn on(table: &'a Table, changes: Changes) -> Self {
        Self {
            table,
            changes,
            written: 0,
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.changes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.table.get(key),
        }
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        let key = key.into();
        // Two allocations and a map slot besides the bytes themselves.
        self.written += key.len() + value.len() + 128;
        self.changes.insert(key, Some(value));
    }

    /// Deletes `key`. A key the table does not hold (one put earlier in
    /// this batch, or never there) leaves no tombstone: tombstones are what
    /// a later page read must step over, one by one, until compaction.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        let key = key.into();
        if matches!(self.table.get(&key), Ok(None)) {
            self.changes.remove(&key);
        } else {
            self.changes.insert(key, None);
        }
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ProjectionError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| ProjectionError::Decode {
                        position: 0,
                        reason: format!("row {}: {e}", String::from_utf8_lossy(key)),
                    })
            }
        }
    }

    pub fn put_json<T: Serialize>(&mut self, key: impl Into<Vec<u8>>, value: &T) {
        self.put(key, serde_json::to_vec(value).expect("rows serialise"));
    }

    /// Keeps `c/{doc}` while a document's draft is confidential (mật and
    /// above), from its `drafted` and `revised` events.
    pub fn note_confidentiality(
        &mut self,
        doc: uuid::Uuid,
        event: &crate::domain::document::DocumentEvent,
    ) {
        use crate::domain::document::{Confidentiality, DocumentEvent};
        let level = match event {
            DocumentEvent::Drafted(e) => e.draft.confidentiality,
            DocumentEvent::Revised(e) => e.draft.confidentiality,
            _ => return,
        };
        if level == Confidentiality::Normal {
            self.delete(format!("c/{doc}"));
        } else {
            self.put(format!("c/{doc}"), b"1".to_vec());
        }
    }

    /// Whether the document's draft is confidential (see `note_confidentiality`).
    pub fn is_confidential(&self, doc: uuid::Uuid) -> Result<bool, StoreError> {
        Ok(self.get(format!("c/{doc}").as_bytes())?.is_some())
    }

    /// Rows under `prefix`, committed or in this batch, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<crate::store::tables::Rows, StoreError> {
        let mut rows: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = self
            .table
            .scan(prefix, None, usize::MAX)?
            .into_iter()
            .collect();
        for (k, v) in self.changes.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => rows.insert(k.clone(), v.clone()),
                None => rows.remove(k),
            };
        }
        Ok(rows.into_iter().collect())
    }

    fn into_changes(self) -> Changes {
        self.changes
    }

    /// The changes and how many bytes were put into them.
    fn into_parts(self) -> (Changes, usize) {
        (self.changes, self.written)
    }
}

/// The document event of a `doc-…` record, if it is one.
fn document_event(
    record: &Record,
) -> Result<Option<(uuid::Uuid, crate::domain::document::DocumentEvent)>, ProjectionError> {
    let id = record
        .stream
        .strip_prefix(crate::domain::document::STREAM_PREFIX)
        .and_then(|s| uuid::Uuid::parse_str(s).ok());
    match id {
        Some(id) if record.event_type.starts_with("document.") => Ok(Some((id, payload(record)?))),
        _ => Ok(None),
    }
}

/// Decodes a record's payload, naming the record on failure.
pub fn payload<T: DeserializeOwned>(record: &Record) -> Result<T, ProjectionError> {
    T::deserialize(&record.payload).map_err(|e| ProjectionError::Decode {
        position: record.position,
        reason: format!("{}: {e}", record.event_type),
    })
}

/// One projection with its table and progress.
struct Entry {
    projection: Arc<dyn Projection>,
    table: Table,
    position: watch::Sender<u64>,
    error: Mutex<Option<String>>,
    /// A row a query could not decode: the view is not to be trusted until
    /// rebuilt (kept until restart; the runner's progress does not clear it).
    unreadable: Mutex<Option<String>>,
}

/// Every projection of the service, their tables and progress.
pub struct Projections {
    log: RocksLog,
    entries: Vec<Entry>,
    /// Set once to stop the runners (`stop`).
    stop: watch::Sender<bool>,
    runners: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// How far one projection is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub name: &'static str,
    pub position: u64,
    pub lag: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The service's projections, in a fixed order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(registers::Registers),
        Arc::new(signatures::Signatures),
        Arc::new(feed::Feed),
        Arc::new(inbox::Inbox),
        Arc::new(deadlines::Deadlines),
        Arc::new(citations::Citations),
        Arc::new(arrivals::Arrivals),
    ]
}

impl Projections {
    /// Opens the tables of `list` on `log` (nothing runs yet).
    pub fn open(log: &RocksLog, list: Vec<Arc<dyn Projection>>) -> Result<Arc<Self>, StoreError> {
        let mut entries = Vec::new();
        for projection in list {
            let table = log.table(projection.name())?;
            let (position, _) = watch::channel(table.checkpoint()?);
            entries.push(Entry {
                projection,
                table,
                position,
                error: Mutex::new(None),
                unreadable: Mutex::new(None),
            });
        }
        Ok(Arc::new(Self {
            stop: watch::channel(false).0,
            runners: Mutex::new(Vec::new()),
            log: log.clone(),
            entries,
        }))
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.projection.name() == name)
    }

    /// Names of the projections, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.projection.name()).collect()
    }

    /// The table of projection `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.entry(name).map(|e| &e.table)
    }

    /// Applies the rest of the log to every projection (all at the same
    /// checkpoint, as after `clear`) in one pass: this thread reads and
    /// decodes batches of `batch` records while each projection applies
    /// them on its own thread, folding rows in memory and writing them out
    /// (without the write-ahead log, then flushed) whenever its share of
    /// `memory` bytes fills, and at the end; background compaction is held
    /// off meanwhile. `progress` hears each position read. Returns
    /// the last position applied.
    ///
    /// A crash mid-way leaves each table at a checkpoint its rows match
    /// (a family's memtable flushes whole, its checkpoint with its rows).
    pub fn fold(
        &self,
        memory: usize,
        batch: usize,
        progress: &dyn Fn(u64),
    ) -> Result<u64, ProjectionError> {
        let Some(first) = self.entries.first() else {
            return Ok(0);
        };
        let start = first.table.checkpoint()?;
        for e in &self.entries {
            if e.table.checkpoint()? != start {
                return Err(ProjectionError::Decode {
                    position: start + 1,
                    reason: format!("{} is not at the same checkpoint", e.projection.name()),
                });
            }
        }
        let share = memory / self.entries.len();
        let fold_into = |e: &Entry, batches: mpsc::Receiver<Arc<Batch>>| {
            let mut pending = Changes::new();
            let mut written = 0;
            let mut last = start;
            for batch in batches {
                let mut tx = Tx::on(&e.table, std::mem::take(&mut pending));
                for a in batch.applied() {
                    e.projection.apply(&a, &mut tx)?;
                }
                let (changes, bytes) = tx.into_parts();
                (pending, written, last) = (changes, written + bytes, batch.last());
                if written > share {
                    e.table
                        .commit_unlogged(std::mem::take(&mut pending), last)?;
                    written = 0;
                }
            }
            e.table.commit_unlogged(pending, last)?;
            e.table.flush()?;
            e.position.send_replace(last);
            Ok::<_, ProjectionError>(())
        };
        // Compaction comes back however the fold ends.
        let apply = |e: &Entry, batches| {
            e.table.set_auto_compaction(false)?;
            let folded = fold_into(e, batches);
            let resumed = e.table.set_auto_compaction(true);
            folded.and(resumed.map_err(ProjectionError::from))
        };
        std::thread::scope(|s| {
            let (senders, threads): (Vec<_>, Vec<_>) = self
                .entries
                .iter()
                .map(|e| {
                    // Two batches queued per projection: the reader stays
                    // one batch ahead of the slowest without holding more.
                    let (send, receive) = mpsc::sync_channel(2);
                    let thread = std::thread::Builder::new()
                        .name(format!("fold {}", e.projection.name()))
                        .spawn_scoped(s, move || apply(e, receive));
                    (send, thread)
                })
                .unzip();
            let threads = threads
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Io("starting a projection's thread".into(), e))?;
            let mut at = start;
            let read = loop {
                let batch = match self
                    .log
                    .read_all(at + 1, batch)
                    .map_err(ProjectionError::from)
                    .and_then(Batch::decode)
                {
                    Ok(b) if b.last() == 0 => break Ok(at),
                    Ok(b) => Arc::new(b),
                    Err(e) => break Err(e),
                };
                // A projection that failed has dropped its receiver: stop
                // reading; its error is reported below.
                if senders.iter().any(|s| s.send(Arc::clone(&batch)).is_err()) {
                    break Ok(at);
                }
                at = batch.last();
                progress(at);
            };
            drop(senders);
            let applied = threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>, _>>();
            read.and_then(|at| applied.map(|_| at))
        })
    }

    /// Compacts every projection's table (after a rebuild).
    pub fn compact(&self) {
        for e in &self.entries {
            e.table.compact();
        }
    }

    /// Drops `name`'s rows and checkpoint.
    pub fn clear(&self, name: &str) -> Result<(), StoreError> {
        if let Some(e) = self.entry(name) {
            e.table.clear()?;
            e.position.send_replace(0);
        }
        Ok(())
    }

    /// Starts the runner: one thread that catches every projection up, then
    /// follows the log, reading and decoding each record once for all of
    /// them (each still commits its own rows and checkpoint).
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<()> {
        let handle = tokio::runtime::Handle::current();
        let mut runners = self.runners.lock().unwrap_or_else(|e| e.into_inner());
        let this = Arc::clone(self);
        runners.push(
            std::thread::Builder::new()
                .name("projections".into())
                .spawn(move || this.run(&handle))?,
        );
        Ok(())
    }

    /// Stops the runners after the batch each is applying (its rows and
    /// checkpoint land together or not at all) and waits for them; after
    /// this they hold no reference to the log. Blocks: call it off the
    /// async workers.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        let runners = std::mem::take(&mut *self.runners.lock().unwrap_or_else(|e| e.into_inner()));
        for runner in runners {
            let _ = runner.join();
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn run(&self, handle: &tokio::runtime::Handle) {
        let mut stopped = vec![false; self.entries.len()];
        let mut backoff = Duration::from_millis(100);
        let mut stop = self.stop.subscribe();
        while !self.stopping() && stopped.iter().any(|s| !s) {
            match self.step_live(BATCH, &mut stopped) {
                Ok(n) => {
                    backoff = Duration::from_millis(100);
                    if n == 0 {
                        let at = self
                            .entries
                            .iter()
                            .zip(&stopped)
                            .filter(|(_, s)| !**s)
                            .map(|(e, _)| *e.position.borrow())
                            .min()
                            .unwrap_or(0);
                        let more = handle.block_on(async {
                            tokio::select! {
                                more = self.log.wait_past(at) => more,
                                _ = stop.wait_for(|s| *s) => false,
                            }
                        });
                        if !more {
                            return; // stopped, or the log closed
                        }
                    }
                }
                // Storage trouble may pass: retry, and say so on /readyz meanwhile.
                Err(e) => {
                    tracing::warn!(error = %e, "projections retrying");
                    for (entry, _) in self.entries.iter().zip(&stopped).filter(|(_, s)| !**s) {
                        *entry.error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("retrying: {e}"));
                    }
                    let _ = handle.block_on(async {
                        tokio::time::timeout(backoff, stop.wait_for(|s| *s)).await
                    });
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Applies up to `max` records after the lowest checkpoint to every
    /// projection not `stopped`, reading and decoding each record once;
    /// returns how many records were read. A projection whose record does
    /// not apply stops (it will not read better later) and the others go
    /// on; a storage error is returned for the caller to retry.
    fn step_live(&self, max: usize, stopped: &mut [bool]) -> Result<usize, StoreError> {
        let mut live = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !stopped[i] {
                live.push((i, e.table.checkpoint()?));
            }
        }
        let Some(from) = live.iter().map(|(_, cp)| cp + 1).min() else {
            return Ok(0);
        };
        let records = self.log.read_all(from, max)?;
        let Some(last) = records.last().map(|r| r.position) else {
            return Ok(0);
        };
        let decoded: Vec<_> = records.iter().map(document_event).collect();
        for (i, checkpoint) in live {
            let e = &self.entries[i];
            let name = e.projection.name();
            let _span =
                tracing::debug_span!("projection_apply", projection = name, from, last).entered();
            let mut tx = Tx::new(&e.table);
            let applied = decoded
                .iter()
                .zip(&records)
                .filter(|(_, r)| r.position > checkpoint)
                .try_for_each(|(doc, record)| match doc {
                    Ok(doc) => e.projection.apply(&Applied::new(record, doc), &mut tx),
                    // Decoding reads nothing from storage: its error names the record.
                    Err(err) => Err(ProjectionError::Decode {
                        position: record.position,
                        reason: match err {
                            ProjectionError::Decode { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        },
                    }),
                });
            match applied {
                Ok(()) => {
                    e.table.commit(tx.into_changes(), last)?;
                    e.position.send_replace(last);
                    *e.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(ProjectionError::Store(err)) => return Err(err),
                Err(err) => {
                    tracing::error!(projection = name, error = %err, "projection stopped");
                    *e.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
                    stopped[i] = true;
                }
            }
        }
        Ok(records.len())
    }

    /// The last position `name` applied.
    pub fn position(&self, name: &str) -> u64 {
        self.entry(name).map_or(0, |e| *e.position.borrow())
    }

    /// `name`'s position as it moves (position 0 for no such projection).
    pub fn watch(&self, name: &str) -> watch::Receiver<u64> {
        match self.entry(name) {
            Some(e) => e.position.subscribe(),
            None => watch::channel(0).1,
        }
    }

    /// Waits up to `timeout` for `name` to reach `min`; whether it did.
    pub async fn wait(&self, name: &str, min: u64, timeout: Duration) -> bool {
        let Some(e) = self.entry(name) else {
            return false;
        };
        let mut rx = e.position.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= min))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Every projection's position and lag behind the log's head.
    /// Records that a query found a row of `name` it cannot decode (at
    /// `key`): `/readyz` reports the view as broken until it is rebuilt.
    pub fn mark_unreadable(&self, name: &str, key: &[u8], why: &str) {
        if let Some(e) = self.entry(name) {
            let what = format!(
                "row {:?} does not decode ({why}); rebuild with `vanthu rebuild --projection {name}`",
                String::from_utf8_lossy(key)
            );
            tracing::error!(projection = name, error = %what, "unreadable view row");
            *e.unreadable.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
        }
    }

    pub fn progress(&self) -> Vec<Progress> {
        let head = self.log.head();
        self.entries
            .iter()
            .map(|e| {
                let position = *e.position.borrow();
                Progress {
                    name: e.projection.name(),
                    position,
                    lag: head.saturating_sub(position),
                    error: e
                        .unreadable
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                        .or_else(|| e.error.lock().unwrap_or_else(|p| p.into_inner()).clone()),
                }
            })
            .collect()
    }
}

/// Fixed-width decimal for keys that must sort by number.
pub fn padded(n: u64) -> String {
    format!("{n:020}")
}
