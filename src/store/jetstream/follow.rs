//! Following the stream into the local replica: messages applied in order,
//! an append's messages gathered (`Partial`) until all have arrived, and the
//! consumer started again from the replica's head when it fails.
//!
//! Must never: skip or reorder a message, or apply part of an append; a
//! foreign or missing message stops the replica instead.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, StreamExt};

use super::subject::stream_of;
use super::{Body, RocksLog, APPEND_HEADER, MAX_BATCH_MESSAGES};
use crate::store::prepared::Prepared;
use crate::store::writer::Replicated;
use crate::store::{ExpectedVersion, NewEvent, StoreError, StreamAppend};

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
pub(super) async fn follow(
    replica: RocksLog,
    js: jetstream::Context,
    stream: String,
    prefix: String,
) {
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
