//! `append_racing` against a replica that lags (D4): the winner of a race
//! is in the store but not yet on this node, as on a JetStream replica.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::json;

use super::*;
use crate::store::{Appended, LogOptions, Record, RocksLog, Subscription};

/// A log whose reads of stream `doc` show one version less than it holds
/// until `until`: the last append is not on this replica yet.
struct Lagging {
    inner: RocksLog,
    until: Instant,
}

impl Lagging {
    fn behind(&self) -> bool {
        Instant::now() < self.until
    }
}

impl EventLog for Lagging {
    fn append<'a>(
        &'a self,
        streams: Vec<StreamAppend>,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, AppendError>> {
        EventLog::append(&self.inner, streams, key)
    }
    fn replay_of(
        &self,
        streams: Vec<StreamAppend>,
        key: &str,
    ) -> Result<Option<Appended>, AppendError> {
        EventLog::replay_of(&self.inner, streams, key)
    }
    fn read_all(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        EventLog::read_all(&self.inner, from, limit)
    }
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        EventLog::read_stream(&self.inner, stream, from_version, limit)
    }
    fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let v = EventLog::stream_version(&self.inner, stream)?;
        Ok(if self.behind() {
            v.and_then(|v| v.checked_sub(1)).filter(|v| *v > 0)
        } else {
            v
        })
    }
    fn head(&self) -> u64 {
        EventLog::head(&self.inner)
    }
    fn follow(&self, from: u64) -> Subscription {
        EventLog::follow(&self.inner, from)
    }
}

fn one(expected: ExpectedVersion, n: u64) -> Vec<StreamAppend> {
    vec![StreamAppend::new(
        "doc",
        expected,
        vec![NewEvent::new("test.happened.v1", json!({ "n": n }))],
    )]
}

#[tokio::test]
async fn a_racing_append_waits_for_the_lagging_replica_to_hold_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let inner = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    inner
        .append(one(ExpectedVersion::NoStream, 1), None)
        .await
        .unwrap();
    // Another node's append won; this replica shows it only 300 ms later.
    inner
        .append(one(ExpectedVersion::Exact(1), 2), None)
        .await
        .unwrap();
    let log = Lagging {
        inner,
        until: Instant::now() + Duration::from_millis(300),
    };
    let mut tries = 0;
    let raced = append_racing(&log, || {
        tries += 1;
        let seen = log.stream_version("doc")?.unwrap_or(0);
        Ok::<_, StoreError>(Attempt::<()>::Append(one(expected(seen), 3)))
    })
    .await;
    assert!(
        matches!(raced, Ok(Raced::Appended(_))),
        "the append went through: {:?}",
        raced.err()
    );
    // Three immediate tries (the interchange's loops before D4) all lose
    // inside a millisecond; waiting for the winner takes one more.
    assert_eq!(tries, 2, "one lost race, one try once the winner is here");
    assert_eq!(log.stream_version("doc").unwrap(), Some(3));
}

#[tokio::test]
async fn a_racing_append_answers_without_writing_and_gives_up_after_races() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let done = append_racing(&log, || Ok::<_, StoreError>(Attempt::Done(7)))
        .await
        .unwrap();
    assert!(matches!(done, Raced::Done(7)));
    assert_eq!(log.head(), 0, "nothing written");
    log.append(one(ExpectedVersion::NoStream, 1), None)
        .await
        .unwrap();
    let mut tries = 0;
    // Always the stale version: it never wins.
    let raced = append_racing(&log, || {
        tries += 1;
        Ok::<_, StoreError>(Attempt::<()>::Append(one(ExpectedVersion::NoStream, 2)))
    })
    .await;
    assert!(matches!(raced, Err(RaceError::KeptChanging(s)) if s == "doc"));
    assert_eq!(tries, RACES);
}
