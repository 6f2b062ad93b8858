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

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::writer::{summarise, Prepared, Replicated};
use super::{
    AppendError, Appended, EventLog, ExpectedVersion, Metadata, NewEvent, Record, RocksLog,
    StoreError, StreamAppend, Subscription,
};

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

/// The subject of vanthu stream `stream` under `prefix` (`vanthu.ev.`):
/// `%` and `.` escaped, so the stream id is exactly one subject token.
pub fn subject(prefix: &str, stream: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + stream.len() + 8);
    s.push_str(prefix);
    for c in stream.chars() {
        match c {
            '%' => s.push_str("%25"),
            '.' => s.push_str("%2E"),
            c => s.push(c),
        }
    }
    s
}

/// The vanthu stream of `subject`, if it is one `subject` made.
pub fn stream_of(prefix: &str, subject: &str) -> Option<String> {
    let token = subject.strip_prefix(prefix)?;
    if token.is_empty() || token.contains('.') {
        return None;
    }
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3)? {
            "%25" => out.push('%'),
            "%2E" => out.push('.'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The stream that records the use of log-level idempotency key `key`.
pub fn key_stream(key: &str) -> String {
    format!("key-{}", hex::encode(Sha256::digest(key.as_bytes())))
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

/// The server's answer to a publish.
#[derive(Deserialize)]
struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize, Debug)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// How a batch went.
enum Sent {
    /// Stored: the last message's sequence and the message count.
    Stored { last: u64, count: u64 },
    /// The server refused it: nothing was stored.
    Refused(ApiError),
    /// It never reached the commit: nothing can be stored.
    Unsent(String),
    /// The commit was sent and no answer came: it may or may not be stored.
    Ambiguous(String),
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

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
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
        match parse_version(&version) {
            Some(v) if v >= MIN_SERVER => {}
            _ => return Err(JetStreamError::ServerTooOld(version)),
        }
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.timeout);
        let prefix = format!("{}.ev.", options.stream.to_ascii_lowercase());
        ensure_stream(&js, &options.stream, &prefix, options.replicas).await?;
        super::jetstream_files::led(&js, &options.stream)
            .await
            .map_err(|e| JetStreamError::Stream {
                stream: options.stream.clone(),
                reason: e.to_string(),
            })?;
        same_log(&replica, &js, &options.stream).await?;
        let follower = tokio::spawn(follow(
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
    pub async fn files(&self) -> Result<super::jetstream_files::JetStreamFiles, StoreError> {
        super::jetstream_files::JetStreamFiles::open(&self.js, &self.stream, self.replicas).await
    }

    /// Who signs this log's checkpoints (`store::lease`), this node named
    /// `me` in the lease.
    pub async fn leadership(
        &self,
        me: String,
    ) -> Result<super::lease::JetStreamLeadership, StoreError> {
        super::lease::JetStreamLeadership::open(&self.js, &self.stream, self.replicas, me).await
    }

    /// The marks the nodes share (`<stream>_MARKS`).
    pub async fn marks(&self) -> Result<super::marks::JetStreamMarks, StoreError> {
        super::marks::JetStreamMarks::open(&self.js, &self.stream, self.replicas).await
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

    /// Sends one batch: the first message as a request (the server stages
    /// it or refuses), the middle ones as publishes, the last with
    /// `Nats-Batch-Commit: 1` as a request answered by the PubAck. A single
    /// message is an ordinary publish with its expectation.
    async fn send(&self, messages: Vec<(String, HeaderMap, Bytes)>) -> Sent {
        let n = messages.len();
        let _slot = if n > 1 {
            match self.inflight.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => return Sent::Unsent("the log is closing".into()),
            }
        } else {
            None
        };
        let batch = Uuid::now_v7().simple().to_string();
        for (i, (subject, mut headers, body)) in messages.into_iter().enumerate() {
            let last = i + 1 == n;
            if n > 1 {
                headers.insert(BATCH_ID, batch.as_str());
                headers.insert(BATCH_SEQUENCE, (i + 1).to_string().as_str());
                if last {
                    headers.insert(BATCH_COMMIT, "1");
                }
            }
            let subject = Subject::from(subject);
            if last {
                let nth = self
                    .commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if let Some(Fault::LoseCommit(every)) = self.fault {
                    if nth.is_multiple_of(every) {
                        return Sent::Ambiguous("test hook: the commit was lost".into());
                    }
                }
                let sent = match self
                    .client
                    .request_with_headers(subject, headers, body)
                    .await
                {
                    Ok(reply) => match serde_json::from_slice::<PubAck>(&reply.payload) {
                        Ok(PubAck { error: Some(e), .. }) => Sent::Refused(e),
                        // Exactly the messages sent, or it is not known what.
                        Ok(ack) if ack.seq > 0 && ack.count.unwrap_or(1) == n as u64 => {
                            Sent::Stored {
                                last: ack.seq,
                                count: n as u64,
                            }
                        }
                        Ok(_) | Err(_) => Sent::Ambiguous(format!(
                            "the commit was answered with {:?}",
                            String::from_utf8_lossy(&reply.payload)
                        )),
                    },
                    // Nobody took the commit: not stored, safe to send again.
                    Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                        Sent::Unsent(e.to_string())
                    }
                    Err(e) => Sent::Ambiguous(e.to_string()),
                };
                return match (self.fault, sent) {
                    (Some(Fault::LoseReply(every)), Sent::Stored { .. })
                        if nth.is_multiple_of(every) =>
                    {
                        Sent::Ambiguous("test hook: the answer was lost".into())
                    }
                    (_, sent) => sent,
                };
            }
            if i == 0 {
                match self
                    .client
                    .request_with_headers(subject, headers, body)
                    .await
                {
                    Ok(reply) if reply.payload.is_empty() => {}
                    Ok(reply) => match serde_json::from_slice::<PubAck>(&reply.payload) {
                        Ok(PubAck { error: Some(e), .. }) => return Sent::Refused(e),
                        // A store acknowledged for a batch's start: not the
                        // protocol; whether anything landed is not known.
                        Ok(PubAck { seq, .. }) if seq > 0 => {
                            return Sent::Ambiguous(format!(
                                "the batch's start was acknowledged as stored at {seq}"
                            ))
                        }
                        _ => {
                            return Sent::Unsent(format!(
                                "the batch's start was answered with {:?}",
                                String::from_utf8_lossy(&reply.payload)
                            ))
                        }
                    },
                    Err(e) => return Sent::Unsent(e.to_string()),
                }
            } else if let Err(e) = self
                .client
                .publish_with_headers(subject, headers, body)
                .await
            {
                return Sent::Unsent(e.to_string());
            }
        }
        Sent::Unsent("an append needs at least one event".into())
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

    /// After a commit without an answer: whether the append landed, read
    /// from the replica once it has everything the stream has. Never sends
    /// the batch again.
    async fn read_back(
        &self,
        first_id: Uuid,
        events: u64,
        key: Option<&str>,
        why: String,
    ) -> Result<Appended, AppendError> {
        tracing::warn!(error = %why, "a commit got no answer: reading back whether it landed");
        let mut settled = false;
        for _ in 0..3 {
            if self.catch_up().await.is_ok() {
                settled = true;
                break;
            }
        }
        if settled {
            if let Some(p) = self.replica.event_position(&first_id)? {
                if let Some(done) = self.summary(
                    p,
                    p + events - 1 + u64::from(key.is_some()),
                    first_id,
                    key.is_some(),
                    false,
                )? {
                    return Ok(done);
                }
            }
        }
        Err(AppendError::Indeterminate(format!(
            "the commit got no answer ({why}) and the append is not in the stream yet; retry with the same idempotency key"
        )))
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

/// Refuses a replica that is not a prefix of the stream: its last record
/// must be the stream's message at that sequence (another stream, or a
/// stream deleted and created again, would otherwise be followed from the
/// middle).
async fn same_log(
    replica: &RocksLog,
    js: &jetstream::Context,
    name: &str,
) -> Result<(), JetStreamError> {
    let head = replica.head();
    if head == 0 {
        return Ok(());
    }
    let differs = |why: String| {
        JetStreamError::Replica(format!(
            "the data directory holds {head} records that are not stream {name}'s ({why}): point it at its own stream, or start this node on an empty data directory"
        ))
    };
    let stream = js
        .get_stream(name)
        .await
        .map_err(|e| differs(e.to_string()))?;
    let message = stream
        .direct_get(head)
        .await
        .map_err(|e| differs(format!("message {head}: {e}")))?;
    let body: Body = serde_json::from_slice(&message.payload)
        .map_err(|e| differs(format!("message {head}: {e}")))?;
    let ours = replica
        .read_all(head, 1)
        .map_err(|e| JetStreamError::Replica(e.to_string()))?;
    match ours.first() {
        Some(r) if r.event_id == body.id => Ok(()),
        _ => Err(differs(format!("event {} at {head}", body.id))),
    }
}

/// How long a node keeps asking a busy cluster to create the log's stream.
const CREATE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Creates the stream, or checks that the one there keeps history.
async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    prefix: &str,
    replicas: usize,
) -> Result<(), JetStreamError> {
    let refuse = |reason: String| JetStreamError::Stream {
        stream: name.to_owned(),
        reason,
    };
    let wanted = stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}>")],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    };
    // A cluster busy electing or placing other streams may refuse or time
    // out a creation for a while: asked again (another node may create it
    // meanwhile) until CREATE_WITHIN has passed.
    let deadline = std::time::Instant::now() + CREATE_WITHIN;
    let config = loop {
        let not_found = match js.get_stream(name).await {
            Ok(s) => break s.cached_info().config.clone(),
            Err(e) => {
                if !matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) {
                    return Err(refuse(e.to_string()));
                }
                e
            }
        };
        match js.create_stream(wanted.clone()).await {
            Ok(s) => break s.cached_info().config.clone(),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(stream = name, error = %e, "the stream could not be created yet; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(refuse(format!("{not_found}, and creating it failed: {e}"))),
        }
    };
    let mut wrong = Vec::new();
    if !config.deny_delete {
        wrong.push("deny_delete is off");
    }
    if !config.deny_purge {
        wrong.push("deny_purge is off");
    }
    if config.allow_rollup {
        wrong.push("rollups are allowed");
    }
    if !config.allow_atomic_publish {
        wrong.push("atomic publish is off");
    }
    if config.max_messages > 0
        || config.max_bytes > 0
        || config.max_messages_per_subject > 0
        || !config.max_age.is_zero()
    {
        wrong.push("it has a limit that deletes messages");
    }
    if config.retention != stream::RetentionPolicy::Limits {
        wrong.push("its retention deletes consumed messages");
    }
    if config.subjects != [format!("{prefix}>")] {
        wrong.push("its subjects are not exactly the log's");
    }
    if config.storage != stream::StorageType::File {
        wrong.push("it is not on disk (file storage)");
    }
    if !config.allow_direct {
        wrong.push("direct gets are off");
    }
    let copies;
    if config.num_replicas != replicas {
        copies = format!(
            "it has {} replicas, store.jetstream.replicas says {replicas}",
            config.num_replicas
        );
        wrong.push(&copies);
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(refuse(format!(
            "it would not keep the log whole: {}",
            wrong.join(", ")
        )))
    }
}

/// An append whose messages have not all arrived.
struct Partial {
    first: u64,
    recorded_at: DateTime<Utc>,
    expected: usize,
    received: usize,
    streams: Vec<StreamAppend>,
}

/// Why following stopped.
enum FollowError {
    /// The stream holds something the replica must not skip: stop.
    Fatal(String),
    /// The connection or consumer failed: start again from the replica's head.
    Retry(String),
    /// A message came at another sequence than the next one (a consumer
    /// the client recreated from the stream's start): start again from the
    /// replica's head; stop if it keeps happening without progress.
    Misplaced(String),
}

/// Consecutive `Misplaced` restarts without progress before the replica
/// stops.
const MISPLACED_LIMIT: usize = 20;

/// Follows the stream into the replica for as long as the log is open.
async fn follow(replica: RocksLog, js: jetstream::Context, stream: String, prefix: String) {
    let mut misplaced = (0, replica.head());
    loop {
        match follow_once(&replica, &js, &stream, &prefix).await {
            Err(FollowError::Misplaced(why)) => {
                if misplaced.1 != replica.head() {
                    misplaced = (0, replica.head());
                }
                misplaced.0 += 1;
                if misplaced.0 >= MISPLACED_LIMIT {
                    let why = format!("{why}, {MISPLACED_LIMIT} times without progress");
                    tracing::error!(error = %why, "the replica stopped following the JetStream log");
                    replica.fail(why);
                    return;
                }
                tracing::warn!(error = %why, head = replica.head(), "following the JetStream log again from the replica's head");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(FollowError::Fatal(why)) => {
                tracing::error!(error = %why, "the replica stopped following the JetStream log");
                replica.fail(why);
                return;
            }
            Err(FollowError::Retry(why)) => {
                tracing::warn!(error = %why, head = replica.head(), "following the JetStream log again shortly");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(()) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn follow_once(
    replica: &RocksLog,
    js: &jetstream::Context,
    stream: &str,
    prefix: &str,
) -> Result<(), FollowError> {
    let retry = |e: &dyn std::fmt::Display| FollowError::Retry(e.to_string());
    let from = replica.head() + 1;
    let s = js.get_stream(stream).await.map_err(|e| retry(&e))?;
    let consumer = s
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| retry(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| retry(&e))?;
    let mut next = from;
    let mut partial: Option<Partial> = None;
    loop {
        let Some(first) = messages.next().await else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        let mut taken = 0;
        let mut item = Some(first);
        while let Some(m) = item.take() {
            let m = m.map_err(|e| retry(&e))?;
            let info = m.info().map_err(|e| FollowError::Fatal(e.to_string()))?;
            let seq = info.stream_sequence;
            if seq != next {
                return Err(FollowError::Misplaced(format!(
                    "the stream delivered sequence {seq} where {next} was due"
                )));
            }
            next += 1;
            let foreign = |why: &str| {
                FollowError::Fatal(format!(
                    "the message at sequence {seq} (subject {}) is not a vanthu event: {why}; restrict publishing on {prefix}> to vanthu",
                    m.subject
                ))
            };
            let target = stream_of(prefix, m.subject.as_str()).ok_or_else(|| foreign("subject"))?;
            let body: Body =
                serde_json::from_slice(&m.payload).map_err(|e| foreign(&e.to_string()))?;
            let count = m
                .headers
                .as_ref()
                .and_then(|h| h.get(APPEND_HEADER))
                .map(|v| v.as_str().parse::<usize>());
            let p = match (partial.take(), count) {
                (None, Some(Ok(n))) if n >= 1 => Partial {
                    first: seq,
                    recorded_at: info.published,
                    expected: n,
                    received: 0,
                    streams: Vec::new(),
                },
                (Some(p), None) => p,
                _ => return Err(foreign("an append's start or length is wrong")),
            };
            let mut p = p;
            let event = NewEvent {
                id: body.id,
                event_type: body.event_type,
                payload: body.payload,
                metadata: body.metadata,
            };
            match p.streams.last_mut() {
                Some(s) if s.stream == target => s.events.push(event),
                _ => p
                    .streams
                    .push(StreamAppend::new(target, ExpectedVersion::Any, vec![event])),
            }
            p.received += 1;
            if p.received == p.expected {
                let prepared =
                    Prepared::new(p.streams, None).map_err(|e| foreign(&e.to_string()))?;
                chunk.push(Replicated {
                    first_position: p.first,
                    recorded_at: p.recorded_at,
                    prepared,
                });
            } else {
                partial = Some(p);
            }
            taken += 1;
            if taken < MAX_BATCH_MESSAGES {
                item = messages.next().now_or_never().flatten();
            }
        }
        if !chunk.is_empty() {
            replica.replicate(chunk).await.map_err(|e| match e {
                // Nothing applied: the disk may have room again later.
                StoreError::Closed | StoreError::StorageFull(_) => {
                    FollowError::Retry(e.to_string())
                }
                e => FollowError::Fatal(e.to_string()),
            })?;
        }
        if partial.is_none() && next != replica.head() + 1 {
            return Err(FollowError::Fatal(format!(
                "the replica is at {} after applying up to {}",
                replica.head(),
                next - 1
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_token_and_map_back() {
        let prefix = "vanthu.ev.";
        for (stream, expected) in [
            ("doc-0192", "vanthu.ev.doc-0192"),
            (
                "register-UBND.X-out-2026",
                "vanthu.ev.register-UBND%2EX-out-2026",
            ),
            ("a..b", "vanthu.ev.a%2E%2Eb"),
            (".lead", "vanthu.ev.%2Elead"),
            ("org", "vanthu.ev.org"),
            ("x:y_z", "vanthu.ev.x:y_z"),
        ] {
            let s = subject(prefix, stream);
            assert_eq!(s, expected);
            assert_eq!(s.matches('.').count(), 2, "{s}");
            assert_eq!(stream_of(prefix, &s).as_deref(), Some(stream));
        }
    }

    #[test]
    fn foreign_subjects_are_not_streams() {
        let prefix = "vanthu.ev.";
        for subject in [
            "vanthu.ev.",
            "vanthu.ev.a.b",
            "vanthu.other.a",
            "other.ev.a",
            "vanthu.ev.a%2",
            "vanthu.ev.a%41",
        ] {
            assert_eq!(stream_of(prefix, subject), None, "{subject}");
        }
    }

    #[test]
    fn server_versions_are_compared_as_numbers() {
        for (v, ok) in [
            ("2.15.1", true),
            ("v2.14.6", true),
            ("2.14.5", false),
            ("2.12.15", false),
            ("2.9.10", false),
            ("2.16.0-dev", true),
            ("3.0.0", true),
            ("garbage", false),
        ] {
            assert_eq!(parse_version(v).is_some_and(|p| p >= MIN_SERVER), ok, "{v}");
        }
    }
}
