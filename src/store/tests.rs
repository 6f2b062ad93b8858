//! Unit tests of the event log that need its internals (the write-failure
//! hook); behaviour visible through the public API is tested in `tests/`.

use super::*;
use crate::crypto::merkle;
use codec::keys;
use rocks::{cf, CF_LOG};
use serde_json::json;

fn ev(n: u64) -> NewEvent {
    NewEvent::new("test.happened.v1", json!({ "n": n }))
}

fn one(stream: &str, expected: ExpectedVersion, n: u64) -> Vec<StreamAppend> {
    vec![StreamAppend::new(stream, expected, vec![ev(n)])]
}

#[tokio::test]
async fn write_failure_stops_the_writer_and_reopen_continues_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        fail_write_at_batch: Some(3),
        ..Default::default()
    };
    let log = RocksLog::open(dir.path(), opts).unwrap();
    log.append(one("s", ExpectedVersion::NoStream, 1), None)
        .await
        .unwrap();
    log.append(one("s", ExpectedVersion::Exact(1), 2), None)
        .await
        .unwrap();
    let err = log
        .append(one("s", ExpectedVersion::Exact(2), 3), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Indeterminate(_)), "{err:?}");
    let health = log.health();
    assert!(!health.writable);
    assert_eq!(health.head, 2);
    // Every later append is refused, even an unrelated one.
    let err = log
        .append(one("t", ExpectedVersion::Any, 4), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Unavailable(_)), "{err:?}");
    drop(log);

    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    assert!(log.health().writable);
    assert_eq!(
        log.stream_version("s").unwrap(),
        Some(2),
        "heads reloaded from disk"
    );
    let a = log
        .append(one("s", ExpectedVersion::Exact(2), 3), None)
        .await
        .unwrap();
    assert_eq!(
        a.first_position, 3,
        "the failed batch's positions are not skipped"
    );
    let all = log.read_all(1, 10).unwrap();
    assert_eq!(
        all.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

/// A log whose writer waits for `n` requests before each commit, so the
/// requests of a test share one batch for certain.
fn batching(dir: &std::path::Path, n: usize, fail_at: Option<u64>) -> RocksLog {
    let opts = LogOptions {
        min_batch_requests: n,
        fail_write_at_batch: fail_at,
        ..Default::default()
    };
    RocksLog::open(dir, opts).unwrap()
}

#[tokio::test]
async fn a_failed_batch_answers_every_request_indeterminate() {
    let dir = tempfile::tempdir().unwrap();
    let log = batching(dir.path(), 3, Some(2));
    let seed = one("s", ExpectedVersion::NoStream, 1);
    let (a, b, c) = tokio::join!(
        log.append(seed.clone(), Some("seed")),
        log.append(one("t", ExpectedVersion::NoStream, 2), None),
        log.append(one("u", ExpectedVersion::NoStream, 3), None),
    );
    let (a, _, _) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(log.stats().batches, 1);
    // Batch 2 mixes a new append, a replay and a refusal; its write fails.
    let (new, replay, refused) = tokio::join!(
        log.append(one("v", ExpectedVersion::NoStream, 4), None),
        log.append(seed.clone(), Some("seed")),
        log.append(one("s", ExpectedVersion::NoStream, 5), None),
    );
    for r in [new, replay, refused] {
        assert!(matches!(r, Err(AppendError::Indeterminate(_))), "{r:?}");
    }
    drop(log);
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.head(), 3);
    let again = log.append(seed, Some("seed")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.first_position, a.first_position);
}

#[tokio::test]
async fn dedup_inside_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = batching(dir.path(), 2, None);
    // Same key and content twice in one batch: one write, one replay.
    let req = one("k", ExpectedVersion::NoStream, 1);
    let (x, y) = tokio::join!(
        log.append(req.clone(), Some("k1")),
        log.append(req, Some("k1"))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.first_position, y.first_position);
    assert!(x.replayed != y.replayed);

    // No key, same first id but a different second event: refused, not replayed.
    let (a, b, c) = (ev(1), ev(2), ev(3));
    let ab = vec![StreamAppend::new(
        "n",
        ExpectedVersion::Any,
        vec![a.clone(), b],
    )];
    let mut c_same_content = c;
    c_same_content.payload = json!({ "n": 2 });
    let ac = vec![StreamAppend::new(
        "n",
        ExpectedVersion::Any,
        vec![a.clone(), c_same_content],
    )];
    let (r1, r2) = tokio::join!(log.append(ab, None), log.append(ac, None));
    let (ok, refused) = if r1.is_ok() { (r1, r2) } else { (r2, r1) };
    assert!(!ok.unwrap().replayed);
    assert!(
        matches!(refused, Err(AppendError::DuplicateEventId { .. })),
        "{refused:?}"
    );

    // A keyed append and a key-less retry of the same events in one batch.
    let e = ev(7);
    let req = vec![StreamAppend::new("m", ExpectedVersion::NoStream, vec![e])];
    let (k, nk) = tokio::join!(log.append(req.clone(), Some("k2")), log.append(req, None));
    let (k, nk) = (k.unwrap(), nk.unwrap());
    assert!(
        k.replayed != nk.replayed,
        "one wrote, the other replayed it"
    );
    assert_eq!(k.first_position, nk.first_position);
    assert_eq!(log.stats().batches, 3, "each pair shared one batch");
}

#[tokio::test]
async fn reused_event_ids_replay_only_the_exact_same_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let (a, b, c, d) = (ev(1), ev(2), ev(3), ev(4));
    let ab = vec![StreamAppend::new(
        "x",
        ExpectedVersion::Any,
        vec![a.clone(), b.clone()],
    )];
    log.append(ab.clone(), None).await.unwrap();
    // A sub-range of an earlier append is not that append.
    for sub in [vec![a.clone()], vec![b.clone()]] {
        let r = log
            .append(
                vec![StreamAppend::new("x", ExpectedVersion::Any, sub)],
                None,
            )
            .await;
        assert!(
            matches!(r, Err(AppendError::DuplicateEventId { .. })),
            "{r:?}"
        );
    }
    // Two separate appends are not one spanning append.
    log.append(
        vec![StreamAppend::new(
            "y",
            ExpectedVersion::Any,
            vec![c.clone()],
        )],
        None,
    )
    .await
    .unwrap();
    log.append(
        vec![StreamAppend::new(
            "y",
            ExpectedVersion::Any,
            vec![d.clone()],
        )],
        None,
    )
    .await
    .unwrap();
    let r = log
        .append(
            vec![StreamAppend::new("y", ExpectedVersion::Any, vec![c, d])],
            None,
        )
        .await;
    assert!(
        matches!(r, Err(AppendError::DuplicateEventId { .. })),
        "{r:?}"
    );
    // The very same append is replayed.
    let again = log.append(ab, None).await.unwrap();
    assert!(again.replayed);
    assert_eq!((again.first_position, again.last_position), (1, 2));
    assert_eq!(log.head(), 4);
}

#[tokio::test]
async fn read_all_reports_a_missing_record_instead_of_skipping_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
        for i in 0..5 {
            log.append(one("g", ExpectedVersion::Any, i), None)
                .await
                .unwrap();
        }
    }
    {
        let db = rocks::open(dir.path(), &rocks::Memory::default()).unwrap();
        db.delete_cf(&cf(&db, CF_LOG), keys::position(2)).unwrap();
    }
    let opts = LogOptions {
        verify_tail: 2,
        ..Default::default()
    };
    let log = RocksLog::open(dir.path(), opts).unwrap();
    let err = log.read_all(1, 10).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { position: 3, .. }),
        "{err:?}"
    );
    let err = log.read_all(2, 10).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { position: 3, .. }),
        "{err:?}"
    );
    assert_eq!(log.read_all(3, 10).unwrap().len(), 3);
}

#[tokio::test]
async fn requests_in_one_batch_are_judged_independently() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    // Fire many appends at once so they share group commits: per version of
    // stream "c" exactly one wins; the refused ones do not disturb the rest.
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                let a = log.append(one("c", ExpectedVersion::NoStream, i), None);
                let b = log.append(one(&format!("own-{i}"), ExpectedVersion::NoStream, i), None);
                (a.await, b.await)
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        let (a, b) = t.await.unwrap();
        match a {
            Ok(_) => winners += 1,
            Err(AppendError::WrongExpectedVersion {
                actual: Some(1), ..
            }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
        b.unwrap();
    }
    assert_eq!(winners, 1);
    assert_eq!(log.head(), 33);
}

#[tokio::test]
async fn repeated_key_and_repeated_event_ids_replay_within_a_batch_and_across() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let events = one("s", ExpectedVersion::NoStream, 1);
    // Same request twice concurrently (likely the same batch), then again later.
    let (a, b) = tokio::join!(
        log.append(events.clone(), Some("k1")),
        log.append(events.clone(), Some("k1"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.first_position, b.first_position);
    assert!(a.replayed != b.replayed, "exactly one of them wrote");
    let c = log.append(events.clone(), Some("k1")).await.unwrap();
    assert!(c.replayed);
    assert_eq!(c.first_position, 1);
    assert_eq!(log.head(), 1);

    // Same key, different content: refused, nothing written.
    let err = log
        .append(one("s", ExpectedVersion::Exact(1), 99), Some("k1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::IdempotencyConflict { .. }),
        "{err:?}"
    );

    // No key, same event ids: the first outcome again.
    let again = log.append(events.clone(), None).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.first_position, 1);

    // An event id reused in a different append is refused.
    let mut other = one("t", ExpectedVersion::NoStream, 5);
    other[0].events.push(events[0].events[0].clone());
    let err = log.append(other, None).await.unwrap_err();
    assert!(
        matches!(err, AppendError::DuplicateEventId { position: 1, .. }),
        "{err:?}"
    );
    assert_eq!(log.head(), 1);
}

#[tokio::test]
async fn invalid_appends_are_refused_before_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let e = ev(1);
    let cases: Vec<(Vec<StreamAppend>, Option<&str>)> = vec![
        (vec![], None),
        (
            vec![StreamAppend::new("s", ExpectedVersion::Any, vec![])],
            None,
        ),
        (one("bad stream", ExpectedVersion::Any, 1), None),
        (one("s", ExpectedVersion::Exact(0), 1), None),
        (one("s", ExpectedVersion::Any, 1), Some("")),
        (
            vec![
                StreamAppend::new("s", ExpectedVersion::Any, vec![ev(1)]),
                StreamAppend::new("s", ExpectedVersion::Any, vec![ev(2)]),
            ],
            None,
        ),
        (
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![e.clone(), e],
            )],
            None,
        ),
        (
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![NewEvent::new("Bad-Type", json!({}))],
            )],
            None,
        ),
        (
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![NewEvent::new("t.v1", json!({ "big": u64::MAX }))],
            )],
            None,
        ),
    ];
    for (i, (streams, key)) in cases.into_iter().enumerate() {
        let err = log.append(streams, key).await.unwrap_err();
        assert!(matches!(err, AppendError::Invalid(_)), "case {i}: {err:?}");
    }
    assert_eq!(log.head(), 0);
}

#[tokio::test]
async fn subscription_catches_up_then_follows_live() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    for i in 0..700 {
        log.append(one(&format!("s{}", i % 7), ExpectedVersion::Any, i), None)
            .await
            .unwrap();
    }
    let mut sub = log.subscribe(1);
    let follower = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 1000 {
            seen.push(sub.next().await.unwrap().position);
        }
        seen
    });
    for i in 700..1000 {
        log.append(one("live", ExpectedVersion::Any, i), None)
            .await
            .unwrap();
    }
    let seen = follower.await.unwrap();
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn reads_by_stream_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    // "doc-1" must not see "doc-10"'s events (key prefixes).
    for (stream, n) in [("doc-1", 1), ("doc-10", 2), ("doc-1", 3)] {
        log.append(one(stream, ExpectedVersion::Any, n), None)
            .await
            .unwrap();
    }
    let d1 = log.read_stream("doc-1", 1, 100).unwrap();
    assert_eq!(
        d1.iter()
            .map(|r| (r.version, r.position))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 3)]
    );
    assert_eq!(log.read_stream("doc-1", 2, 100).unwrap().len(), 1);
    assert_eq!(log.read_stream("doc-1", 1, 1).unwrap().len(), 1);
    assert!(log.read_stream("doc-2", 1, 100).unwrap().is_empty());
    assert_eq!(log.read_all(2, 1).unwrap()[0].stream, "doc-10");
    assert!(log.read_all(4, 10).unwrap().is_empty());
    let bytes = codec::encode(&d1[0]).unwrap();
    assert_eq!(log.leaf_hash(1).unwrap(), Some(codec::leaf_hash(&bytes)));
    assert_eq!(log.stream_version("doc-10").unwrap(), Some(1));
    assert_eq!(log.stream_version("nothing").unwrap(), None);
}

/// The leaf hashes of records `1..=head`, from the records themselves.
fn leaves_of(log: &RocksLog) -> Vec<merkle::Hash> {
    let head = log.head();
    let mut out = Vec::new();
    let mut from = 1;
    while from <= head {
        for r in log.read_all(from, 4096).unwrap() {
            out.push(merkle::leaf_hash(&codec::encode(&r).unwrap()));
            from = r.position + 1;
        }
    }
    out
}

/// Appends `n` one-event appends, `per_batch` concurrent at a time.
async fn fill(log: &RocksLog, n: u64, per_batch: u64) {
    let mut i = 0;
    while i < n {
        let k = per_batch.min(n - i);
        let appends = (i..i + k).map(|j| {
            let log = log.clone();
            async move {
                log.append(one(&format!("s{}", j % 7), ExpectedVersion::Any, j), None)
                    .await
                    .unwrap()
            }
        });
        futures_util::future::join_all(appends).await;
        i += k;
    }
}

#[tokio::test]
async fn the_stored_tree_is_the_rfc6962_tree_of_the_records_at_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    // Across tile boundaries (256, 512) and a second level-1 hash, in
    // batches of varying size.
    fill(&log, 700, 37).await;
    let leaves = leaves_of(&log);
    assert_eq!(leaves.len(), 700);
    for size in [0u64, 1, 2, 3, 255, 256, 257, 511, 512, 513, 699, 700] {
        let tree = log.tree_at(size).unwrap();
        let Ok(want) = merkle::root(&leaves[..], size);
        assert_eq!(tree.root().unwrap(), want, "root at {size}");
    }
    assert!(log.tree_at(701).is_none(), "no tree beyond the head");
    let tree = log.tree_at(700).unwrap();
    for (index, size) in [(0u64, 700u64), (255, 700), (256, 513), (699, 700), (5, 6)] {
        let Ok(want) = merkle::inclusion_proof(&leaves[..], index, size);
        let tree = log.tree_at(size).unwrap();
        assert_eq!(merkle::inclusion_proof(&tree, index, size).unwrap(), want);
    }
    for (old, new) in [(1u64, 700u64), (256, 700), (300, 513), (511, 512)] {
        let Ok(want) = merkle::consistency_proof(&leaves[..], old, new);
        assert_eq!(merkle::consistency_proof(&tree, old, new).unwrap(), want);
    }
    // Tiles: two full level-0 tiles, the partial third, a level-1 partial.
    let t0 = log.tile(0, 0, 256).unwrap().unwrap();
    assert_eq!(t0, leaves[..256].concat());
    assert_eq!(
        log.tile(0, 2, 188).unwrap().unwrap(),
        leaves[512..700].concat()
    );
    assert_eq!(
        log.tile(0, 2, 10).unwrap().unwrap(),
        leaves[512..522].concat()
    );
    assert!(
        log.tile(0, 2, 189).unwrap().is_none(),
        "wider than the tree"
    );
    assert!(log.tile(0, 2, 256).unwrap().is_none(), "not full yet");
    assert!(log.tile(0, 3, 1).unwrap().is_none());
    let Ok(first) = merkle::root(&leaves[..256], 256);
    let Ok(second) = merkle::root(&leaves[256..512], 256);
    assert_eq!(
        log.tile(1, 0, 2).unwrap().unwrap(),
        [first, second].concat()
    );
    assert!(log.tile(1, 0, 3).unwrap().is_none());
    assert!(log.tile(2, 0, 1).unwrap().is_none());
    assert!(log.tile(9, 0, 1).unwrap().is_none(), "no such level");
    // Entry bundles: length-prefixed records.
    let bundle = log.entry_bundle(2, 3).unwrap().unwrap();
    let records = log.read_all(513, 3).unwrap();
    let mut want = Vec::new();
    for r in &records {
        let bytes = codec::encode(r).unwrap();
        want.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        want.extend_from_slice(&bytes);
    }
    assert_eq!(bundle, want);
    assert!(log.entry_bundle(2, 189).unwrap().is_none());

    // Reopened, the tree goes on from its stored edge.
    let root_700 = tree.root().unwrap();
    drop(tree);
    drop(log);
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.tree_at(700).unwrap().root().unwrap(), root_700);
    fill(&log, 100, 9).await;
    let leaves = leaves_of(&log);
    let Ok(want) = merkle::root(&leaves[..], 800);
    assert_eq!(log.tree_at(800).unwrap().root().unwrap(), want);
    drop(log);
    let db = rocks::open_read_only(dir.path()).unwrap();
    let checked = tree::verify(&db, 800).unwrap();
    assert_eq!(
        (checked.leaves, checked.hashes, checked.root),
        (800, 3, want)
    );
}

#[tokio::test]
async fn a_log_written_without_the_tree_gets_it_built_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let off = LogOptions {
        maintain_tree: false,
        ..Default::default()
    };
    let log = RocksLog::open(dir.path(), off).unwrap();
    fill(&log, 600, 50).await;
    drop(log);
    let db = rocks::open(dir.path(), &rocks::Memory::default()).unwrap();
    assert_eq!(
        tree::check_at_open(&db, 600).unwrap(),
        tree::TreeAtOpen::Built
    );
    assert_eq!(
        tree::check_at_open(&db, 600).unwrap(),
        tree::TreeAtOpen::Covers
    );
    // A tree that disagrees with the log (here: one level-1 hash short) is refused.
    db.delete_cf(&cf(&db, rocks::CF_TREE), tree::node_key(1, 1))
        .unwrap();
    let err = tree::check_at_open(&db, 600).unwrap_err();
    assert!(err.to_string().contains("level 1"), "{err}");
    db.put_cf(&cf(&db, rocks::CF_TREE), tree::node_key(1, 1), [0u8; 32])
        .unwrap();
    let err = tree::verify(&db, 600).unwrap_err();
    assert!(err.to_string().contains("1/1 does not match"), "{err}");
}

#[tokio::test]
async fn a_record_that_could_exceed_a_tile_entry_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let long = "x".repeat(MAX_RECORD_BYTES);
    let err = log
        .append(
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::NoStream,
                vec![
                    ev(1),
                    NewEvent::new("test.happened.v1", json!({ "text": long })),
                ],
            )],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::Invalid(ref m) if m.contains("65535")),
        "{err}"
    );
    assert_eq!(log.head(), 0, "nothing of the append was written");
    // The bound is exact: an event just under it is accepted and fits.
    let probe = codec::PreEncoded::new(
        Uuid::now_v7(),
        "test.happened.v1",
        &json!({ "text": "" }),
        &Metadata::default(),
    )
    .unwrap();
    let room = MAX_RECORD_BYTES - probe.max_encoded_len("s");
    let fits = NewEvent::new("test.happened.v1", json!({ "text": "y".repeat(room) }));
    log.append(
        vec![StreamAppend::new(
            "s",
            ExpectedVersion::NoStream,
            vec![fits],
        )],
        None,
    )
    .await
    .unwrap();
    let bundle = log.entry_bundle(0, 1).unwrap().unwrap();
    let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
    assert_eq!(len + 2, bundle.len());
    assert!(len <= MAX_RECORD_BYTES);
}

/// RocksDB's memory is one cache of `memory_mb` shared by every family:
/// memtables are charged to it as they fill, and blocks read back land in
/// it, and neither takes it past its capacity, projection tables included.
#[tokio::test]
async fn memtables_and_blocks_share_one_bounded_cache() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        memory_mb: 16,
        ..Default::default()
    };
    let log = RocksLog::open(dir.path(), opts).unwrap();
    let (used, limit) = log.memory();
    assert_eq!(limit, 16 << 20);
    let table = log.table("probe").unwrap();
    let payload = "x".repeat(2000);
    for batch in 0..60u64 {
        let events = (0..100)
            .map(|i| NewEvent::new("test.big.v1", json!({ "i": batch * 100 + i, "p": payload })))
            .collect();
        log.append(
            vec![StreamAppend::new(
                format!("s-{batch}"),
                ExpectedVersion::NoStream,
                events,
            )],
            None,
        )
        .await
        .unwrap();
        let mut rows = tables::Changes::new();
        rows.insert(
            format!("k{batch}").into_bytes(),
            Some(payload.clone().into_bytes()),
        );
        table.commit(rows, batch + 1).unwrap();
    }
    let (filled, _) = log.memory();
    assert!(
        filled > used,
        "memtables are charged to the cache: {used} → {filled}"
    );
    assert!(log.read_all(1, usize::MAX).unwrap().len() == 6000);
    let (after_reads, _) = log.memory();
    assert!(
        after_reads <= limit + limit / 20,
        "{after_reads} bytes held by a {limit}-byte cache"
    );
}

/// Issue 38, F4: the writer's cache of stream heads is bounded in bytes,
/// not entries: over more new streams (with long names) than it may hold,
/// it never holds more than `HEAD_CACHE_BYTES`, and starts over rather
/// than grow. (Before, it took up to 1 << 20 entries, about 130 MiB with
/// names like these.)
#[tokio::test]
async fn the_head_cache_is_bounded_in_bytes() {
    use super::writer::HEAD_CACHE_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogOptions::default()).unwrap();
    let name = |round: usize, i: usize| format!("document-{round:06}-{i:06}-{}", "n".repeat(80));
    let mut most = 0;
    let mut restarted = false;
    for round in 0..160 {
        let appends = (0..1000)
            .map(|i| {
                StreamAppend::new(
                    name(round, i),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("test.created.v1", json!({ "i": i }))],
                )
            })
            .collect();
        log.append(appends, None).await.unwrap();
        let held = log.stats().head_cache_bytes;
        assert!(
            held <= HEAD_CACHE_BYTES as u64,
            "{held} bytes of heads cached"
        );
        restarted |= held < most;
        most = most.max(held);
    }
    assert!(
        restarted,
        "the cache never started over (most {most} bytes)"
    );
    assert!(most > (HEAD_CACHE_BYTES as u64) / 2, "{most}");
    // Heads it no longer holds are read from the `heads` family.
    let again = StreamAppend::new(
        name(0, 7),
        ExpectedVersion::Exact(1),
        vec![NewEvent::new("test.again.v1", json!({}))],
    );
    log.append(vec![again], None).await.unwrap();
    let stale = StreamAppend::new(
        name(1, 7),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("test.again.v1", json!({}))],
    );
    assert!(log.append(vec![stale], None).await.is_err());
}
