//! The single writer: the one thread that writes the log's families.
//!
//! Loop: take everything queued (up to `max_batch_events`), check each
//! request on its own against stream heads, idempotency keys and event ids
//! (a refused request does not affect the others), assign gapless positions,
//! write ONE WriteBatch with `sync=true`, publish the new head, then reply.
//! Under load one fsync covers every request that queued during the previous
//! one; with one client the latency is one fsync.
//!
//! On a write error the writer fails every request of the batch, refuses all
//! later ones, and never reuses or skips a position: the service turns
//! not-ready and the heads are re-read from disk when the log is reopened.
//!
//! Must never: acknowledge before the sync write returned, or let a request's
//! partial effects reach the batch when that request is refused.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rocksdb::WriteBatch;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::codec::{self, keys, PreEncoded};
use super::rocks::{self, cf, Db, TailReport, CF_HEADS, CF_IDS, CF_LEAVES, CF_LOG, CF_STREAMS};
use super::{
    fingerprint, AppendError, Appended, ExpectedVersion, LogOptions, StoreError, StreamAppend,
    StreamAppended, MAX_APPEND_BYTES, MAX_EVENTS_PER_APPEND,
};

/// State the writer shares with readers of `EventLog::health` and `stats`.
#[derive(Default)]
pub(super) struct Shared {
    failed: Mutex<Option<String>>,
    pub(super) batches: AtomicU64,
    pub(super) appends: AtomicU64,
    pub(super) events: AtomicU64,
}

impl Shared {
    pub(super) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fail(&self, why: String) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
}

/// An append validated and canonicalised on the caller's thread.
pub(super) struct Prepared {
    streams: Vec<PreparedStream>,
    /// Explicit idempotency key, if any.
    key: Option<String>,
    fingerprint: [u8; 32],
    event_count: usize,
}

struct PreparedStream {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<PreEncoded>,
}

impl Prepared {
    pub(super) fn new(streams: Vec<StreamAppend>, key: Option<&str>) -> Result<Self, AppendError> {
        if let Some(k) = key {
            codec::validate_idempotency_key(k)?;
        }
        if streams.is_empty() {
            return Err(AppendError::Invalid(
                "an append needs at least one stream".into(),
            ));
        }
        let mut seen_streams = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut bytes = 0usize;
        let mut event_count = 0usize;
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            codec::validate_stream_id(&s.stream)?;
            if !seen_streams.insert(s.stream.clone()) {
                return Err(AppendError::Invalid(format!(
                    "stream {} appears twice in one append",
                    s.stream
                )));
            }
            if s.events.is_empty() {
                return Err(AppendError::Invalid(format!(
                    "no events for stream {}",
                    s.stream
                )));
            }
            if let ExpectedVersion::Exact(0) = s.expected {
                return Err(AppendError::Invalid(
                    "versions start at 1; use NoStream for a new stream".into(),
                ));
            }
            let mut events = Vec::with_capacity(s.events.len());
            for e in s.events {
                if !seen_ids.insert(e.id) {
                    return Err(AppendError::Invalid(format!(
                        "event id {} appears twice",
                        e.id
                    )));
                }
                let pre = PreEncoded::new(e.id, &e.event_type, &e.payload, &e.metadata)?;
                bytes += pre.payload.len() + pre.metadata.len();
                event_count += 1;
                events.push(pre);
            }
            out.push(PreparedStream {
                stream: s.stream,
                expected: s.expected,
                events,
            });
        }
        if event_count > MAX_EVENTS_PER_APPEND {
            return Err(AppendError::Invalid(format!(
                "{event_count} events in one append; at most {MAX_EVENTS_PER_APPEND}"
            )));
        }
        if bytes > MAX_APPEND_BYTES {
            return Err(AppendError::Invalid(format!(
                "{bytes} bytes in one append; at most {MAX_APPEND_BYTES}"
            )));
        }
        let fingerprint = fingerprint(out.iter().flat_map(|s| {
            s.events.iter().map(|e| {
                (
                    s.stream.as_str(),
                    e.event_type.as_str(),
                    e.payload.as_slice(),
                )
            })
        }));
        Ok(Self {
            streams: out,
            key: key.map(str::to_owned),
            fingerprint,
            event_count,
        })
    }

    fn first_event_id(&self) -> Uuid {
        // `new` refuses appends without events, so there is a first one.
        self.streams[0].events[0].event_id
    }

    fn event_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.streams
            .iter()
            .flat_map(|s| s.events.iter().map(|e| e.event_id))
    }
}

pub(super) struct Request {
    pub(super) prepared: Prepared,
    pub(super) reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// Starts the writer thread.
pub(super) fn spawn(
    db: Arc<Db>,
    rx: mpsc::Receiver<Request>,
    head: watch::Sender<u64>,
    shared: Arc<Shared>,
    tail: TailReport,
    options: LogOptions,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut w = Writer {
        db,
        head,
        shared,
        heads: HashMap::new(),
        next_position: tail.head + 1,
        last_recorded_at: tail.last_recorded_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
        batch_no: 0,
        options,
    };
    std::thread::Builder::new()
        .name("vanthu-log-writer".into())
        .spawn(move || w.run(rx))
}

/// Most stream heads cached in memory before the cache is dropped and
/// refilled from the `heads` family on demand.
const HEAD_CACHE_LIMIT: usize = 1 << 20;

struct Writer {
    db: Arc<Db>,
    head: watch::Sender<u64>,
    shared: Arc<Shared>,
    /// Committed stream heads (a cache of the `heads` family).
    heads: HashMap<String, u64>,
    next_position: u64,
    last_recorded_at: DateTime<Utc>,
    batch_no: u64,
    options: LogOptions,
}

/// Verdict on one request.
enum Checked {
    /// It repeats an earlier append: answer with that outcome, write nothing.
    Replay(Appended),
    /// It is new and admissible; `bases` are its streams' current versions.
    New { bases: Vec<u64> },
}

/// What the requests already accepted into the current batch changed.
#[derive(Default)]
struct Overlay {
    heads: HashMap<String, u64>,
    event_ids: HashMap<Uuid, u64>,
    /// Dedup key (explicit key or first event id) → outcome, fingerprint.
    outcomes: HashMap<Vec<u8>, (Appended, [u8; 32])>,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            let mut events = batch[0].prepared.event_count;
            while events < self.options.max_batch_events {
                match rx.try_recv() {
                    Ok(r) => {
                        events += r.prepared.event_count;
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        if let Some(why) = self.shared.failure() {
            for r in batch {
                let _ = r.reply.send(Err(AppendError::Unavailable(why.clone())));
            }
            return;
        }
        let now = codec::log_time(Utc::now()).max(self.last_recorded_at);
        let mut wb = WriteBatch::default();
        let mut overlay = Overlay::default();
        let mut position = self.next_position;
        let mut results = Vec::with_capacity(batch.len());
        let mut written = 0u64;
        for r in &batch {
            let outcome = self
                .check(&r.prepared, &overlay)
                .map(|checked| match checked {
                    Checked::Replay(prior) => prior,
                    Checked::New { bases } => {
                        let appended =
                            self.stage(&r.prepared, &bases, position, now, &mut overlay, &mut wb);
                        position = appended.last_position + 1;
                        written += r.prepared.event_count as u64;
                        appended
                    }
                });
            results.push(outcome);
        }

        if written > 0 {
            self.batch_no += 1;
            if let Err(e) = self.write(wb) {
                let why = format!(
                    "write of positions {}..{} failed: {e}",
                    self.next_position,
                    position - 1
                );
                tracing::error!(error = %why, "event log writer stopped");
                self.shared.fail(why.clone());
                for r in batch {
                    let _ = r.reply.send(Err(AppendError::Unavailable(why.clone())));
                }
                return;
            }
            if self.heads.len() + overlay.heads.len() > HEAD_CACHE_LIMIT {
                self.heads.clear();
            }
            self.heads.extend(overlay.heads);
            self.next_position = position;
            self.last_recorded_at = now;
            self.head.send_replace(position - 1);
            self.shared.batches.fetch_add(1, Ordering::Relaxed);
            self.shared.events.fetch_add(written, Ordering::Relaxed);
        }
        for (r, outcome) in batch.into_iter().zip(results) {
            if outcome.is_ok() {
                self.shared.appends.fetch_add(1, Ordering::Relaxed);
            }
            let _ = r.reply.send(outcome);
        }
    }

    fn write(&self, wb: WriteBatch) -> Result<(), StoreError> {
        if self.options.fail_write_at_batch == Some(self.batch_no) {
            return Err(StoreError::Io(
                "injected write failure".into(),
                std::io::Error::other("injected"),
            ));
        }
        Ok(self.db.write_opt(wb, &rocks::sync_write())?)
    }

    /// Decides whether `p` may be written, given what the batch accepted so far.
    fn check(&self, p: &Prepared, overlay: &Overlay) -> Result<Checked, AppendError> {
        if let Some(prior) = self.prior_outcome(p, overlay)? {
            return Ok(Checked::Replay(prior));
        }
        for id in p.event_ids() {
            let known = match overlay.event_ids.get(&id) {
                Some(pos) => Some(*pos),
                None => self.get_position(CF_IDS, &keys::event_id(&id))?,
            };
            if let Some(position) = known {
                return Err(AppendError::DuplicateEventId { id, position });
            }
        }
        let mut bases = Vec::with_capacity(p.streams.len());
        for s in &p.streams {
            let current = self.current_version(&s.stream, overlay)?;
            if !s.expected.admits(current) {
                return Err(AppendError::WrongExpectedVersion {
                    stream: s.stream.clone(),
                    expected: s.expected,
                    actual: current,
                });
            }
            bases.push(current.unwrap_or(0));
        }
        Ok(Checked::New { bases })
    }

    /// The outcome of an earlier append this one repeats, by explicit key or
    /// else by its first event id.
    fn prior_outcome(
        &self,
        p: &Prepared,
        overlay: &Overlay,
    ) -> Result<Option<Appended>, AppendError> {
        let dedup = dedup_key(p);
        let found = match overlay.outcomes.get(&dedup) {
            Some((appended, fp)) => Some((appended.clone(), *fp)),
            None => match &p.key {
                Some(_) => self.stored_key_outcome(&dedup)?,
                None => self.stored_event_outcome(p)?,
            },
        };
        match found {
            None => Ok(None),
            Some((appended, fp)) if fp == p.fingerprint => Ok(Some(Appended {
                replayed: true,
                ..appended
            })),
            Some((appended, _)) => Err(match &p.key {
                Some(key) => AppendError::IdempotencyConflict { key: key.clone() },
                None => AppendError::DuplicateEventId {
                    id: p.first_event_id(),
                    position: appended.first_position,
                },
            }),
        }
    }

    /// Outcome stored under an explicit idempotency key:
    /// `first position (8) ‖ event count (4) ‖ fingerprint (32)`.
    fn stored_key_outcome(&self, dedup: &[u8]) -> Result<Option<(Appended, [u8; 32])>, StoreError> {
        let Some(v) = self.db.get_pinned_cf(&cf(&self.db, CF_IDS), dedup)? else {
            return Ok(None);
        };
        if v.len() != 44 {
            return Err(codec::CodecError::BadKey(v.len()).into());
        }
        let first = keys::parse_position(&v[..8])?;
        let count = u32::from_be_bytes(v[8..12].try_into().expect("4 bytes")) as u64;
        let fp: [u8; 32] = v[12..44].try_into().expect("32 bytes");
        Ok(Some((self.outcome_from_log(first, count)?, fp)))
    }

    /// Outcome of the append whose first event has `p`'s first event id, if
    /// the log holds it and the following records carry `p`'s ids in order.
    fn stored_event_outcome(
        &self,
        p: &Prepared,
    ) -> Result<Option<(Appended, [u8; 32])>, StoreError> {
        let Some(first) = self.get_position(CF_IDS, &keys::event_id(&p.first_event_id()))? else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = p.event_ids().collect();
        let records = self.read_range(first, ids.len() as u64)?;
        let same_ids =
            records.len() == ids.len() && records.iter().zip(&ids).all(|(r, id)| r.event_id == *id);
        if !same_ids {
            // Not a retry of the same append: report the reused id.
            return Ok(Some((
                summarise(&records[..1.min(records.len())], first),
                [0; 32],
            )));
        }
        let payloads = records
            .iter()
            .map(|r| codec::canonical(&r.payload))
            .collect::<Result<Vec<_>, _>>()?;
        let fp = fingerprint(
            records
                .iter()
                .zip(&payloads)
                .map(|(r, pl)| (r.stream.as_str(), r.event_type.as_str(), pl.as_slice())),
        );
        Ok(Some((summarise(&records, first), fp)))
    }

    fn outcome_from_log(&self, first: u64, count: u64) -> Result<Appended, StoreError> {
        let records = self.read_range(first, count)?;
        if records.len() as u64 != count {
            return Err(StoreError::Corrupt {
                position: first,
                reason: format!("an idempotency record covers {count} events but fewer exist"),
            });
        }
        Ok(summarise(&records, first))
    }

    fn read_range(&self, first: u64, count: u64) -> Result<Vec<codec::Record>, StoreError> {
        let log = cf(&self.db, CF_LOG);
        let mut out = Vec::with_capacity(count as usize);
        for pos in first..first + count {
            match self.db.get_pinned_cf(&log, keys::position(pos))? {
                Some(bytes) => out.push(codec::decode(&bytes)?),
                None => break,
            }
        }
        Ok(out)
    }

    fn current_version(&self, stream: &str, overlay: &Overlay) -> Result<Option<u64>, StoreError> {
        if let Some(v) = overlay.heads.get(stream).or_else(|| self.heads.get(stream)) {
            return Ok(Some(*v));
        }
        self.get_position(CF_HEADS, stream.as_bytes())
    }

    fn get_position(&self, family: &str, key: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.db.get_pinned_cf(&cf(&self.db, family), key)? {
            None => Ok(None),
            Some(v) => Ok(Some(keys::parse_position(&v)?)),
        }
    }

    /// Puts `p`'s records and index entries into the batch from `first_position`
    /// on; `bases` are the streams' current versions as `check` found them.
    fn stage(
        &self,
        p: &Prepared,
        bases: &[u64],
        first_position: u64,
        now: DateTime<Utc>,
        overlay: &mut Overlay,
        wb: &mut WriteBatch,
    ) -> Appended {
        let (log, leaves, streams, heads, ids) = (
            cf(&self.db, CF_LOG),
            cf(&self.db, CF_LEAVES),
            cf(&self.db, CF_STREAMS),
            cf(&self.db, CF_HEADS),
            cf(&self.db, CF_IDS),
        );
        let mut position = first_position;
        let mut summary = Vec::with_capacity(p.streams.len());
        for (s, &base) in p.streams.iter().zip(bases) {
            let mut version = base;
            for e in &s.events {
                version += 1;
                let bytes = e.encode(position, &s.stream, version, &now);
                let pos_key = keys::position(position);
                wb.put_cf(&leaves, pos_key, codec::leaf_hash(&bytes));
                wb.put_cf(&log, pos_key, bytes);
                wb.put_cf(&streams, keys::stream_version(&s.stream, version), pos_key);
                wb.put_cf(&ids, keys::event_id(&e.event_id), pos_key);
                overlay.event_ids.insert(e.event_id, position);
                position += 1;
            }
            wb.put_cf(&heads, s.stream.as_bytes(), version.to_be_bytes());
            overlay.heads.insert(s.stream.clone(), version);
            summary.push(StreamAppended {
                stream: s.stream.clone(),
                first_version: base + 1,
                last_version: version,
            });
        }
        let appended = Appended {
            first_position,
            last_position: position - 1,
            streams: summary,
            replayed: false,
        };
        if p.key.is_some() {
            let mut v = Vec::with_capacity(44);
            v.extend_from_slice(&first_position.to_be_bytes());
            v.extend_from_slice(&(p.event_count as u32).to_be_bytes());
            v.extend_from_slice(&p.fingerprint);
            wb.put_cf(&ids, dedup_key(p), v);
        }
        overlay
            .outcomes
            .insert(dedup_key(p), (appended.clone(), p.fingerprint));
        appended
    }
}

/// The key an append is deduplicated under: its explicit idempotency key, or
/// else its first event id (kept only in the batch overlay; across batches
/// the `ids` family's event-id entries serve).
fn dedup_key(p: &Prepared) -> Vec<u8> {
    match &p.key {
        Some(k) => keys::dedup(k),
        None => keys::event_id(&p.first_event_id()).to_vec(),
    }
}

/// Rebuilds an append's outcome from its records (consecutive, request order).
fn summarise(records: &[codec::Record], first: u64) -> Appended {
    let mut streams: Vec<StreamAppended> = Vec::new();
    for r in records {
        match streams.last_mut() {
            Some(s) if s.stream == r.stream => s.last_version = r.version,
            _ => streams.push(StreamAppended {
                stream: r.stream.clone(),
                first_version: r.version,
                last_version: r.version,
            }),
        }
    }
    Appended {
        first_position: first,
        last_position: first + records.len().max(1) as u64 - 1,
        streams,
        replayed: false,
    }
}
