//! The event log through its public API: concurrent writers, multi-stream
//! atomicity, idempotency across a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;
use vanthu::store::{AppendError, ExpectedVersion, NewEvent, StreamAppend};

use crate::helpers::open_log;

fn expected_for(v: Option<u64>) -> ExpectedVersion {
    v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
}

#[derive(Debug, Clone)]
struct Ack {
    stream: String,
    version: u64,
    position: u64,
    id: Uuid,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_writers_one_winner_per_version_no_loss_no_gap() {
    let _limit = crate::helpers::time_limit();
    const TASKS: usize = 64;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let barrier = Arc::new(Barrier::new(TASKS));
    let race_wins = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (log, acks, barrier, race_wins) = (
                log.clone(),
                acks.clone(),
                barrier.clone(),
                race_wins.clone(),
            );
            tokio::spawn(async move {
                // Race: all 64 try to write version 1, then version 2, of one stream
                // at the same moment; exactly one may win each.
                for (v, expected) in [
                    (1u64, ExpectedVersion::NoStream),
                    (2, ExpectedVersion::Exact(1)),
                ] {
                    barrier.wait().await;
                    let e = NewEvent::new("race.won.v1", json!({ "task": t, "v": v }));
                    let id = e.id;
                    match log
                        .append(vec![StreamAppend::new("race", expected, vec![e])], None)
                        .await
                    {
                        Ok(a) => {
                            *race_wins.lock().unwrap().entry(v).or_default() += 1;
                            acks.lock().unwrap().push(Ack {
                                stream: "race".into(),
                                version: a.streams[0].first_version,
                                position: a.first_position,
                                id,
                            });
                        }
                        Err(AppendError::WrongExpectedVersion { .. }) => {}
                        Err(e) => panic!("race append failed: {e}"),
                    }
                }
                // Mixed load: shared streams (contended) and the task's own stream.
                for round in 0..ROUNDS {
                    let stream = if round % 2 == 0 {
                        format!("shared-{}", (t + round) % 4)
                    } else {
                        format!("own-{t}")
                    };
                    loop {
                        let current = log.stream_version(&stream).unwrap();
                        let e =
                            NewEvent::new("load.appended.v1", json!({ "task": t, "round": round }));
                        let id = e.id;
                        let req = vec![StreamAppend::new(&stream, expected_for(current), vec![e])];
                        match log.append(req, None).await {
                            Ok(a) => {
                                acks.lock().unwrap().push(Ack {
                                    stream: stream.clone(),
                                    version: a.streams[0].first_version,
                                    position: a.first_position,
                                    id,
                                });
                                break;
                            }
                            Err(AppendError::WrongExpectedVersion { .. }) => continue,
                            Err(e) => panic!("append failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }

    assert_eq!(
        *race_wins.lock().unwrap(),
        HashMap::from([(1, 1), (2, 1)]),
        "one winner per raced version"
    );
    let acks = acks.lock().unwrap().clone();
    assert_eq!(acks.len(), TASKS * ROUNDS + 2);
    let n = acks.len() as u64;
    assert_eq!(
        log.head(),
        n,
        "head equals acknowledged events: none lost, none extra"
    );

    let all = log.read_all(1, usize::MAX).unwrap();
    let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
    assert_eq!(
        positions,
        (1..=n).collect::<Vec<_>>(),
        "positions 1..N with no gap"
    );

    let by_pos: HashMap<u64, &Ack> = acks.iter().map(|a| (a.position, a)).collect();
    assert_eq!(by_pos.len(), acks.len(), "no position acknowledged twice");
    for r in &all {
        let a = by_pos[&r.position];
        assert_eq!(
            (r.event_id, &r.stream, r.version),
            (a.id, &a.stream, a.version)
        );
    }
    let mut per_stream: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for a in &acks {
        per_stream.entry(&a.stream).or_default().push(a.version);
    }
    for (stream, mut versions) in per_stream {
        versions.sort();
        let want: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(
            versions, want,
            "stream {stream}: one winner per version, no gap"
        );
        let stored: Vec<u64> = log
            .read_stream(stream, 1, usize::MAX)
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(stored, want);
    }
    let ids: HashSet<Uuid> = all.iter().map(|r| r.event_id).collect();
    assert_eq!(ids.len(), all.len(), "no duplicated event");
}

#[tokio::test]
async fn a_wrong_expected_version_on_one_stream_writes_nothing_anywhere() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    for s in ["doc-a", "register-b"] {
        let e = NewEvent::new("seed.v1", json!({}));
        log.append(
            vec![StreamAppend::new(s, ExpectedVersion::NoStream, vec![e])],
            None,
        )
        .await
        .unwrap();
    }
    let head = log.head();
    let attempt = |b_expected| {
        vec![
            StreamAppend::new(
                "doc-a",
                ExpectedVersion::Exact(1),
                vec![NewEvent::new("document.issued.v1", json!({"n": 1}))],
            ),
            StreamAppend::new(
                "register-b",
                b_expected,
                vec![NewEvent::new(
                    "register.number_allocated.v1",
                    json!({"n": 1}),
                )],
            ),
            StreamAppend::new(
                "new-c",
                ExpectedVersion::NoStream,
                vec![NewEvent::new("x.v1", json!({}))],
            ),
        ]
    };
    let err = log
        .append(attempt(ExpectedVersion::Exact(5)), None)
        .await
        .unwrap_err();
    match err {
        AppendError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(
                (stream.as_str(), expected, actual),
                ("register-b", ExpectedVersion::Exact(5), Some(1))
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(log.head(), head, "nothing written");
    assert_eq!(log.stream_version("doc-a").unwrap(), Some(1));
    assert_eq!(log.stream_version("new-c").unwrap(), None);
    let err = log
        .append(attempt(ExpectedVersion::NoStream), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::WrongExpectedVersion { .. }));
    assert_eq!(log.head(), head);

    let ok = log
        .append(attempt(ExpectedVersion::Exact(1)), None)
        .await
        .unwrap();
    assert_eq!((ok.first_position, ok.last_position), (head + 1, head + 3));
    let versions: Vec<(&str, u64)> = ok
        .streams
        .iter()
        .map(|s| (s.stream.as_str(), s.last_version))
        .collect();
    assert_eq!(
        versions,
        vec![("doc-a", 2), ("register-b", 2), ("new-c", 1)]
    );
}

#[tokio::test]
async fn a_retried_append_after_restart_returns_the_original_outcome() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let request = || {
        vec![
            StreamAppend::new(
                "doc-x",
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    "document.drafted.v1",
                    json!({"title": "Kế hoạch"}),
                )],
            ),
            StreamAppend::new(
                "register-x",
                ExpectedVersion::Any,
                vec![NewEvent::new("register.touched.v1", json!({}))],
            ),
        ]
    };
    let with_ids = request();
    let (first_keyed, first_by_ids) = {
        let log = open_log(dir.path());
        let a = log.append(request(), Some("client-retry-1")).await.unwrap();
        let b = log.append(with_ids.clone(), None).await.unwrap_err();
        // with_ids targets doc-x with NoStream again: a different append, refused.
        assert!(
            matches!(b, AppendError::WrongExpectedVersion { .. }),
            "{b:?}"
        );
        let other = vec![StreamAppend::new(
            "doc-y",
            ExpectedVersion::NoStream,
            with_ids[0].events.clone(),
        )];
        let b = log.append(other.clone(), None).await.unwrap();
        (a, (b, other))
    };
    assert!(!first_keyed.replayed);

    let log = open_log(dir.path());
    let head = log.head();
    // Same key, fresh event ids (as an HTTP client's retry would have): replayed.
    let again = log.append(request(), Some("client-retry-1")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.first_position, first_keyed.first_position);
    assert_eq!(again.streams, first_keyed.streams);
    // Same event ids, no key: replayed too.
    let (b, other) = first_by_ids;
    let again = log.append(other, None).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.first_position, again.streams),
        (b.first_position, b.streams)
    );
    // Same key, different content: refused.
    let mut changed = request();
    changed[0].events[0].payload = json!({"title": "Quyết định"});
    let err = log
        .append(changed, Some("client-retry-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    assert_eq!(log.head(), head, "replays and refusals write nothing");
}
