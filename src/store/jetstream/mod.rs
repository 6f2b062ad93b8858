//! The log on a NATS JetStream stream (docs/JETSTREAM.md): `JetStreamLog`
//! sends each append to the stream as one atomic batch (ADR-50) with a
//! per-subject expected sequence for every stream it writes, and follows
//! the stream into a local replica (a `RocksLog` opened with
//! `replica: true`) from which every read is served.
//!
//! Position = stream sequence; one subject per vanthu stream; a stream's
//! version and a record's time are assigned by the replica as it applies
//! the stream in order, so every node builds the same records, leaf hashes
//! and tree.
//!
//! Must never: re-send a batch whose commit got no answer before reading
//! back whether it landed; rely on `Nats-Msg-Id` for idempotency (an
//! in-memory window); skip or reorder a message while following (a foreign
//! or missing message stops the replica instead).

mod batch;
pub mod files;
mod follow;
pub mod lease;
pub mod marks;
mod stream;
mod subject;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::prepared::{summarise, Prepared};
use super::{
    AppendError, Appended, EventLog, ExpectedVersion, Metadata, NewEvent, Record, RocksLog,
    StoreError, StreamAppend, Subscription,
};
use batch::{ApiError, Sent};
pub use subject::{key_stream, stream_of, subject};

/// Oldest server release whose atomic batches are trusted: earlier ones
/// could commit part of a batch across a leader change (notes §1.6).
pub const MIN_SERVER: (u64, u64, u64) = (2, 14, 6);
/// Most messages in one atomic batch (the server's default `max_msgs`).
pub const MAX_BATCH_MESSAGES: usize = 1000;
/// Event type of the record that claims a log-level idempotency key.
pub const KEY_EVENT: &str = "log.key_used.v1";

const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";
/// On the first message of an append: how many messages it has.
const APPEND_HEADER: &str = "Vanthu-Append";
/// Times a batch refused only because another write on one of its
/// subjects was in flight is sent again.
const IN_FLIGHT_RETRIES: usize = 5;
/// A batch that reached no server (no stream leader, a reconnection) is
/// sent again this many times, this far apart, before the caller gets 503.
const UNSENT_RETRIES: usize = 15;
/// Most atomic batches one node has in flight. The server refuses more
/// than 50 per stream by default (10210, `max_inflight_per_stream`); past
/// this a node's appends queue here, and a refusal because other nodes
/// filled the server's limit is sent again like an unsent batch.
pub const MAX_INFLIGHT_BATCHES: usize = 32;
const UNSENT_PAUSE: Duration = Duration::from_millis(200);

/// Where the stream is and how to reach it (`store.jetstream`).
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    pub urls: Vec<String>,
    /// A NATS `.creds` file, if the cluster requires one.
    pub credentials: Option<PathBuf>,
    /// The stream's name; its subjects are `<lower-cased name>.ev.>`.
    pub stream: String,
    pub replicas: usize,
    /// One request to the cluster, and the bound on waiting for the replica.
    pub timeout: Duration,
    /// Test hook: commits whose answer is lost.
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

/// Test hook (`VANTHU_TEST_JETSTREAM_FAULT=lose-reply:N|lose-commit:N`):
/// every N-th commit is treated as unanswered, after it was stored
/// (`LoseReply`) or without sending it (`LoseCommit`), so the read-back of
/// an ambiguous outcome runs on demand.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    LoseReply(u64),
    LoseCommit(u64),
}

impl Fault {
    /// `lose-reply:N` or `lose-commit:N`.
    pub fn parse(s: &str) -> Option<Fault> {
        let (kind, n) = s.split_once(':')?;
        let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
        match kind {
            "lose-reply" => Some(Fault::LoseReply(n)),
            "lose-commit" => Some(Fault::LoseCommit(n)),
            _ => None,
        }
    }
}

/// Why the JetStream log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("NATS server {0} is too old: atomic batches need at least 2.14.6")]
    ServerTooOld(String),
    #[error("stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("the local replica cannot follow the stream: {0}")]
    Replica(String),
}

/// A message's body: the event without its position, version or time.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    payload: Value,
    #[serde(default)]
    metadata: Metadata,
}

/// What a key record holds: the content it was used for.
#[derive(Serialize, Deserialize)]
struct KeyUse {
    /// SHA-256 (hex) of the append's streams, types and payloads.
    fingerprint: String,
    /// Events of the append before this record.
    events: u64,
}

/// The log on a JetStream stream, read from its local replica.
pub struct JetStreamLog {
    replica: RocksLog,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    timeout: Duration,
    replicas: usize,
    follower: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    fault: Option<Fault>,
    commits: std::sync::atomic::AtomicU64,
    inflight: tokio::sync::Semaphore,
}

impl Drop for JetStreamLog {
    fn drop(&mut self) {
        if let Some(f) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            f.abort();
        }
    }
}

impl JetStreamLog {
    /// Connects, creates the stream or checks the one there, and starts
    /// following it into `replica` (a `RocksLog` opened as a replica).
    pub async fn open(
        replica: RocksLog,
        options: &JetStreamOptions,
    ) -> Result<Self, JetStreamError> {
        let urls = options.urls.join(",");
        let connect = |reason: String| JetStreamError::Connect {
            urls: urls.clone(),
            reason,
        };
        let mut connect_options = async_nats::ConnectOptions::new()
            .name("vanthu")
            .request_timeout(Some(options.timeout))
            .connection_timeout(options.timeout);
        if let Some(creds) = &options.credentials {
            connect_options = connect_options
                .credentials_file(creds)
                .await
                .map_err(|e| connect(format!("credentials {}: {e}", creds.display())))?;
        }
        let addrs: Vec<async_nats::ServerAddr> = options
            .urls
            .iter()
            .map(|u| u.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| connect(format!("{e}")))?;
        let client = connect_options
            .connect(addrs)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let version = client.server_info().version;
        match stream::parse_version(&version) {
            Some(v) if v >= MIN_SERVER => {}
            _ => return Err(JetStreamError::ServerTooOld(version)),
        }
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.timeout);
        let prefix = format!("{}.ev.", options.stream.to_ascii_lowercase());
        stream::ensure_stream(&js, &options.stream, &prefix, options.replicas).await?;
        super::jetstream_files::led(&js, &options.stream)
            .await
            .map_err(|e| JetStreamError::Stream {
                stream: options.stream.clone(),
                reason: e.to_string(),
            })?;
        stream::same_log(&replica, &js, &options.stream).await?;
        let follower = tokio::spawn(follow::follow(
            replica.clone(),
            js.clone(),
            options.stream.clone(),
            prefix.clone(),
        ));
        let log = Self {
            replica,
            client,
            js,
            stream: options.stream.clone(),
            prefix,
            timeout: options.timeout,
            replicas: options.replicas,
            follower: std::sync::Mutex::new(Some(follower)),
            fault: options.fault,
            commits: Default::default(),
            inflight: tokio::sync::Semaphore::new(MAX_INFLIGHT_BATCHES),
        };
        log.settle().await?;
        Ok(log)
    }

    /// Waits until the replica holds everything the stream held when
    /// asked: a node serves nothing (the organisation included) from a
    /// replica that is behind what it has already acknowledged elsewhere.
    async fn settle(&self) -> Result<(), JetStreamError> {
        loop {
            if let Some(why) = self.replica.health().error {
                return Err(JetStreamError::Replica(why));
            }
            match self.catch_up().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(head = self.replica.head(), error = %e, "catching up with the JetStream log");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Stops following the stream (the replica keeps what it has).
    pub async fn stop(&self) {
        let follower = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = follower {
            f.abort();
            let _ = f.await;
        }
    }

    /// The document files of this log (object store and uploads bucket).
    pub async fn files(&self) -> Result<files::JetStreamFiles, StoreError> {
        files::JetStreamFiles::open(&self.js, &self.stream, self.replicas).await
    }

    /// Who signs this log's checkpoints (`store::lease`), this node named
    /// `me` in the lease.
    pub async fn leadership(&self, me: String) -> Result<lease::JetStreamLeadership, StoreError> {
        lease::JetStreamLeadership::open(&self.js, &self.stream, self.replicas, me).await
    }

    /// The marks the nodes share (`<stream>_MARKS`).
    pub async fn marks(&self) -> Result<marks::JetStreamMarks, StoreError> {
        marks::JetStreamMarks::open(&self.js, &self.stream, self.replicas).await
    }

    /// The local replica every read is served from.
    pub fn replica(&self) -> &RocksLog {
        &self.replica
    }

    /// The stream's last sequence, asked of its leader.
    async fn stream_last(&self) -> Result<u64, AppendError> {
        let s = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| AppendError::Unavailable(format!("stream {}: {e}", self.stream)))?;
        Ok(s.cached_info().state.last_sequence)
    }

    /// Waits until the replica has applied `position`.
    async fn reach(&self, position: u64) -> Result<(), AppendError> {
        if self.replica.head() >= position {
            return Ok(());
        }
        match tokio::time::timeout(self.timeout, self.replica.wait_past(position - 1)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppendError::Unavailable("the replica closed".into())),
            Err(_) => Err(AppendError::Unavailable(format!(
                "the replica did not reach position {position} within {:?} (at {})",
                self.timeout,
                self.replica.head()
            ))),
        }
    }

    /// Brings the replica up to everything the stream has now.
    async fn catch_up(&self) -> Result<(), AppendError> {
        let last = self.stream_last().await?;
        self.reach(last).await
    }

    /// The expectation header of `s`'s first message, if any.
    async fn expectation(&self, s: &StreamAppend) -> Result<Option<u64>, AppendError> {
        let version = match s.expected {
            ExpectedVersion::Any => return Ok(None),
            ExpectedVersion::NoStream => return Ok(Some(0)),
            ExpectedVersion::Exact(v) => v,
        };
        if let Some(p) = self.replica.position_of(&s.stream, version)? {
            return Ok(Some(p));
        }
        // The replica may lag: ask again once it has what the stream has.
        self.catch_up().await?;
        match self.replica.position_of(&s.stream, version)? {
            Some(p) => Ok(Some(p)),
            None => Err(AppendError::WrongExpectedVersion {
                stream: s.stream.clone(),
                expected: s.expected,
                actual: self.replica.stream_version(&s.stream)?,
            }),
        }
    }

    /// The batch's messages: subject, headers, body.
    async fn messages(
        &self,
        streams: &[StreamAppend],
    ) -> Result<Vec<(String, HeaderMap, Bytes)>, AppendError> {
        let total: usize = streams.iter().map(|s| s.events.len()).sum();
        let mut out = Vec::with_capacity(total);
        for s in streams {
            let expected = self.expectation(s).await?;
            let subject = subject(&self.prefix, &s.stream);
            for (i, e) in s.events.iter().enumerate() {
                let mut headers = HeaderMap::new();
                if out.is_empty() {
                    headers.insert(APPEND_HEADER, total.to_string().as_str());
                }
                if let (0, Some(seq)) = (i, expected) {
                    headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, seq.to_string().as_str());
                }
                let body = serde_json_canonicalizer::to_vec(&Body {
                    id: e.id,
                    event_type: e.event_type.clone(),
                    payload: e.payload.clone(),
                    metadata: e.metadata.clone(),
                })
                .map_err(|e| AppendError::Invalid(e.to_string()))?;
                out.push((subject.clone(), headers, Bytes::from(body)));
            }
        }
        Ok(out)
    }

    /// The outcome of the append whose records are `first..=last` on the
    /// replica (the last `keyed` of them the key record), or `None` if they
    /// are not the append whose first event is `first_id`.
    fn summary(
        &self,
        first: u64,
        last: u64,
        first_id: Uuid,
        keyed: bool,
        replayed: bool,
    ) -> Result<Option<Appended>, AppendError> {
        let count = (last + 1 - first) as usize;
        let mut records = self.replica.read_all(first, count)?;
        if records.first().map(|r| r.event_id) != Some(first_id) || records.len() != count {
            return Ok(None);
        }
        if keyed {
            records.pop();
        }
        Ok(Some(Appended {
            replayed,
            ..summarise(&records, first)
        }))
    }

    /// The earlier append under log-level key `key`, if there was one.
    fn key_replay(&self, key: &str, fingerprint: &str) -> Result<Option<Appended>, AppendError> {
        let stream = key_stream(key);
        let Some(record) = self.replica.read_stream(&stream, 1, 1)?.into_iter().next() else {
            return Ok(None);
        };
        let used: KeyUse =
            serde_json::from_value(record.payload).map_err(|e| StoreError::Corrupt {
                position: record.position,
                reason: format!("a key record does not decode: {e}"),
            })?;
        if used.fingerprint != fingerprint {
            return Err(AppendError::IdempotencyConflict {
                key: key.to_owned(),
            });
        }
        let first = record.position - used.events;
        let records = self.replica.read_all(first, used.events as usize)?;
        Ok(Some(Appended {
            replayed: true,
            ..summarise(&records, first)
        }))
    }

    /// The first stream whose expectation the replica (caught up) refutes.
    fn refuted(&self, streams: &[StreamAppend]) -> Result<Option<AppendError>, AppendError> {
        for s in streams {
            let actual = self.replica.stream_version(&s.stream)?;
            if !s.expected.admits(actual) {
                return Ok(Some(AppendError::WrongExpectedVersion {
                    stream: s.stream.clone(),
                    expected: s.expected,
                    actual,
                }));
            }
        }
        Ok(None)
    }

    async fn append_inner(
        &self,
        streams: Vec<StreamAppend>,
        key: Option<&str>,
    ) -> Result<Appended, AppendError> {
        if let Some(why) = self.replica.health().error {
            return Err(AppendError::Unavailable(format!(
                "this node's replica stopped: {why}"
            )));
        }
        // The RocksDB log's rules for what an append may hold.
        let prepared = Prepared::new(streams.clone(), key)?;
        let fingerprint = hex::encode(prepared.content_fingerprint());
        let events = prepared.event_count() as u64;
        if let Some(key) = key {
            if let Some(done) = self.key_replay(key, &fingerprint)? {
                return Ok(done);
            }
        }
        let first_id = streams[0].events[0].id;
        // As the RocksDB writer: the same events again are answered from
        // the log, any other reuse of an event id is refused. Checked on
        // this node's replica, so two nodes sending the same ids at the
        // same instant are not caught (vanthu's commands use fresh ids).
        if let Some(done) = prepared.replay_by_ids(&self.replica.inner.db)? {
            return Ok(done);
        }
        for s in &streams {
            for e in &s.events {
                if let Some(position) = self.replica.event_position(&e.id)? {
                    return Err(AppendError::DuplicateEventId { id: e.id, position });
                }
            }
        }
        let mut all = streams;
        if let Some(key) = key {
            let used = KeyUse {
                fingerprint: fingerprint.clone(),
                events,
            };
            all.push(StreamAppend::new(
                key_stream(key),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    KEY_EVENT,
                    serde_json::to_value(&used).expect("key records serialise"),
                )],
            ));
        }
        // Every replica applies exactly this, with the RocksDB log's rules:
        // whatever they would refuse is refused here, before it is sent.
        Prepared::new(all.clone(), None)?;
        let total = all.iter().map(|s| s.events.len()).sum::<usize>();
        if total > MAX_BATCH_MESSAGES {
            return Err(AppendError::Invalid(format!(
                "{total} events in one append; the JetStream log takes at most {MAX_BATCH_MESSAGES} (one atomic batch)"
            )));
        }
        let (mut busy, mut unsent) = (0, 0);
        while busy < IN_FLIGHT_RETRIES {
            let messages = self.messages(&all).await?;
            match self.send(messages).await {
                Sent::Stored { last, count } => {
                    self.reach(last).await.map_err(|e| {
                        AppendError::Indeterminate(format!("stored at {last}, but {e}"))
                    })?;
                    let first = last + 1 - count;
                    return self
                        .summary(first, last, first_id, key.is_some(), false)?
                        .ok_or_else(|| {
                            AppendError::Store(StoreError::Replica(format!(
                                "the stream acknowledged positions {first}..={last}, but the replica holds other records there"
                            )))
                        });
                }
                Sent::Refused(e) if e.err_code == 10071 || e.err_code == 10164 => {
                    self.catch_up().await?;
                    if let Some(key) = key {
                        if let Some(done) = self.key_replay(key, &fingerprint)? {
                            return Ok(done);
                        }
                    }
                    if let Some(refusal) = self.refuted(&all)? {
                        return Err(refusal);
                    }
                    // Another write on one of the subjects was in flight:
                    // nothing of this batch was stored; send it again.
                    busy += 1;
                    tracing::debug!(code = e.err_code, error = %e.description, "batch refused with no stale expectation: sending it again");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Nothing was stored: ride out a leader election, a
                // reconnection or a full in-flight limit for a while before
                // answering 503.
                Sent::Refused(ApiError {
                    err_code: 10210, ..
                })
                | Sent::Unsent(_)
                    if unsent < UNSENT_RETRIES =>
                {
                    unsent += 1;
                    tokio::time::sleep(UNSENT_PAUSE).await;
                }
                Sent::Unsent(why) => {
                    return Err(AppendError::Unavailable(format!(
                        "the batch did not reach JetStream: {why}"
                    )))
                }
                Sent::Refused(e) => {
                    return Err(AppendError::Unavailable(format!(
                        "JetStream refused the batch: {} ({})",
                        e.description, e.err_code
                    )))
                }
                Sent::Ambiguous(why) => return self.read_back(first_id, events, key, why).await,
            }
        }
        Err(AppendError::Unavailable(
            "the streams stayed busy with writes in flight; retry".into(),
        ))
    }
}

impl EventLog for JetStreamLog {
    fn append<'a>(
        &'a self,
        streams: Vec<StreamAppend>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, AppendError>> {
        Box::pin(self.append_inner(streams, idempotency_key))
    }
    fn replay_of(
        &self,
        streams: Vec<StreamAppend>,
        key: &str,
    ) -> Result<Option<Appended>, AppendError> {
        let prepared = Prepared::new(streams, Some(key))?;
        self.key_replay(key, &hex::encode(prepared.content_fingerprint()))
    }
    fn read_all(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.replica.read_all(from, limit)
    }
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.replica.read_stream(stream, from_version, limit)
    }
    fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.replica.stream_version(stream)
    }
    fn head(&self) -> u64 {
        self.replica.head()
    }
    fn follow(&self, from: u64) -> Subscription {
        self.replica.subscribe(from)
    }
}
