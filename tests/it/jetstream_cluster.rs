//! The JetStream backend: two vanthu nodes on one stream of a real
//! three-node cluster share one log; refusals write nothing; the stream's
//! settings are checked. (The document, numbering, idempotency and
//! projection tests run against this backend too: `VANTHU_TEST_BACKEND`.)

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::cluster::{self, Cluster};
use crate::helpers::{Api, TestServer};

/// A vanthu node on `stream` of `cluster`, with `extra` environment.
fn node_with(
    cluster: &Cluster,
    stream: &str,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Api {
    let mut env = cluster::env(cluster, stream);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Api::of(TestServer::spawn_with(dir, &env))
}

fn node(cluster: &Cluster, stream: &str, dir: &std::path::Path) -> Api {
    node_with(cluster, stream, dir, &[])
}

/// Waits until `api`'s log has reached `position` (a minute at most: the
/// JetStream pass runs other clusters beside it on two cores).
async fn reaches(api: &Api, position: u64) {
    for _ in 0..2400 {
        if api.head().await >= position {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the node's replica did not reach {position}");
}

#[tokio::test]
async fn two_nodes_one_log_numbers_without_gaps() {
    let _limit = crate::helpers::time_limit_secs(900);
    let cluster = Cluster::start();
    let stream = cluster::fresh_stream();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&cluster, &stream, da.path());
    let b = node(&cluster, &stream, db.path());
    // B started on A's stream: it holds the demo organisation A recorded
    // (it did not record its own: one org stream, one version).
    let head = a.head().await;
    assert!(head > 0);
    reaches(&b, head).await;
    assert_eq!(b.head().await, head);

    let recipients = json!([{ "agency": "UBND" }]);
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            a.signed(
                "svhtt-cv-qlvh",
                "svhtt-pgd-1",
                "KT.",
                "BC",
                recipients.clone(),
            )
            .await,
        );
    }
    reaches(&b, a.head().await).await;
    // Half issued through each node at once: one register, two writers.
    let issued = futures_util::future::join_all(ids.iter().enumerate().map(|(i, id)| {
        let api = if i % 2 == 0 { &a } else { &b };
        api.issue(id, "svhtt-van-thu")
    }))
    .await;
    let mut numbers = BTreeSet::new();
    for r in &issued {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(numbers.insert(r.body["issue"]["number"].as_u64().unwrap()));
    }
    assert_eq!(numbers, (1..=12).collect::<BTreeSet<u64>>());
    // Both nodes hold the same log, record for record.
    let head = a.head().await.max(b.head().await);
    reaches(&a, head).await;
    reaches(&b, head).await;
    for id in &ids {
        let (x, y) = (
            a.get("svhtt-van-thu", &format!("/v1/documents/{id}")).await,
            b.get("svhtt-van-thu", &format!("/v1/documents/{id}")).await,
        );
        assert_eq!(x.status, 200, "{}", x.body);
        assert_eq!(x.body, y.body);
    }

    // Read-your-writes across nodes: a route written through A, read at
    // once through B's inbox with A's position.
    let id = a.draft("svhtt-cv-qlvh", "BC", recipients.clone()).await;
    let r = a
        .route(
            &id,
            "svhtt-cv-qlvh",
            json!({ "to": "svhtt-pgd-1", "purpose": "signing" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let at = r.headers["vanthu-position"].to_str().unwrap().to_owned();
    let inbox = b
        .get(
            "svhtt-pgd-1",
            &format!("/v1/inbox?min_position={at}&limit=500"),
        )
        .await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert!(
        inbox.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["doc"] == id.as_str()),
        "B's inbox at A's position shows the routed draft: {}",
        inbox.body
    );

    // A file uploaded through one node is cited and read through the other.
    let sha = a
        .blob("svhtt-cv-qlvh", b"ke hoach, tai len qua nut A")
        .await;
    let r = b
        .post(
            "svhtt-cv-qlvh",
            "/v1/documents",
            json!({
                "doc_type": "KH",
                "title": "Kế hoạch có tệp tải lên qua nút khác",
                "content": [{ "name": "ke-hoach.txt", "sha256": sha }],
                "recipients": recipients,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    reaches(&a, b.head().await).await;
    for api in [&a, &b] {
        let f = api
            .get(
                "svhtt-cv-qlvh",
                &format!("/v1/documents/{id}/content/{sha}"),
            )
            .await;
        assert_eq!(f.status, 200, "{}", f.body);
        assert_eq!(f.body, json!("ke hoach, tai len qua nut A"));
    }
    // Somebody else's upload stays theirs on every node.
    let other = b.get("svhtt-pgd-1", &format!("/v1/blobs/{sha}")).await;
    assert_eq!(other.status, 404);

    // One node signs checkpoints (the lease holder); both serve the same
    // note, of the whole log, and it verifies under the log key.
    let head = a.head().await.max(b.head().await);
    let mut notes = (String::new(), String::new());
    for _ in 0..1200 {
        let (x, y) = (
            a.get("svhtt-van-thu", "/log/checkpoint").await,
            b.get("svhtt-van-thu", "/log/checkpoint").await,
        );
        notes = (
            x.body.as_str().unwrap_or_default().to_owned(),
            y.body.as_str().unwrap_or_default().to_owned(),
        );
        if notes.0 == notes.1 && notes.0.lines().nth(1) == Some(&head.to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notes.0, notes.1, "both nodes serve one checkpoint");
    assert_eq!(
        notes.0.lines().nth(1),
        Some(head.to_string().as_str()),
        "{}",
        notes.0
    );
    let vkey = a
        .http
        .get(format!("{}/v1/log/key", a.server.url))
        .send()
        .await
        .unwrap();
    let vkey = vkey.text().await.unwrap().trim().to_owned();
    vanthu::crypto::note::open(notes.0.as_bytes(), &vkey).expect("signed by the log key");
}

/// Issues `id` through `api` with `key` until it gets an answer that is
/// not 503, retrying with the same key: (the first non-503 answer, the
/// 503s met before it). Anything but 200 and 503 fails the test.
async fn issue_until_answered(api: &Api, id: &str, key: &str) -> (serde_json::Value, usize) {
    let mut unavailable = 0;
    for _ in 0..120 {
        let r = api
            .send(
                api.request(
                    "svhtt-van-thu",
                    reqwest::Method::POST,
                    &format!("/v1/documents/{id}/issue"),
                )
                .header("Idempotency-Key", key)
                .json(&json!({})),
            )
            .await;
        match r.status {
            200 => return (r.body, unavailable),
            503 => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            s => panic!("issue {id}: {s} {}", r.body),
        }
    }
    panic!("issue {id}: still 503 after a minute");
}

/// Kill -9 of the stream's leader while 64 clients issue through two
/// nodes: every acknowledged document keeps its number, the numbers are
/// unique and gap-free, and an answer that did not come (503) is given by
/// the retry with the same key, never a second number. Then one API node
/// is killed and the other keeps serving.
#[tokio::test]
async fn leader_killed_under_load_loses_nothing_acknowledged() {
    let _limit = crate::helpers::time_limit_secs(900);
    let mut cluster = Cluster::start();
    let stream = cluster::fresh_stream();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fast = [("VANTHU_STORE_JETSTREAM_TIMEOUT_MS", "2000")];
    let a = node_with(&cluster, &stream, da.path(), &fast);
    let b = node_with(&cluster, &stream, db.path(), &fast);
    let recipients = json!([{ "agency": "UBND" }]);
    let signed = futures_util::future::join_all((0..128).map(|_| {
        a.signed(
            "svhtt-cv-qlvh",
            "svhtt-pgd-1",
            "KT.",
            "BC",
            recipients.clone(),
        )
    }))
    .await;
    reaches(&b, a.head().await).await;
    let leader = cluster
        .stream_leader(&stream)
        .expect("the stream has a leader");

    let done = std::sync::atomic::AtomicUsize::new(0);
    let clients = futures_util::future::join_all((0..64).map(|c| {
        let (api, ids) = (if c % 2 == 0 { &a } else { &b }, &signed[c * 2..c * 2 + 2]);
        let done = &done;
        async move {
            let mut out = Vec::new();
            for id in ids {
                let key = format!("issue-{id}");
                out.push((id.clone(), issue_until_answered(api, id, &key).await));
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            out
        }
    }));
    let killer = async {
        // Some issues answered first, most still to come.
        while done.load(std::sync::atomic::Ordering::SeqCst) < 16 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.kill(leader);
        done.load(std::sync::atomic::Ordering::SeqCst)
    };
    let (answers, answered_before_kill) = futures_util::future::join(clients, killer).await;
    assert!(
        answered_before_kill < 128,
        "the leader died while clients issued"
    );
    let answers: Vec<_> = answers.into_iter().flatten().collect();
    let mut numbers = BTreeSet::new();
    let mut unavailable = 0;
    for (id, (body, n503)) in &answers {
        unavailable += n503;
        let n = body["issue"]["number"].as_u64().unwrap();
        assert!(numbers.insert(n), "number {n} given twice ({id})");
        // What was answered is what the log holds, seen from either node.
        let after = b.get("svhtt-van-thu", &format!("/v1/documents/{id}")).await;
        if after.status == 200 {
            assert_eq!(after.body["issue"]["number"], n, "{id}");
        }
    }
    assert_eq!(numbers, (1..=128).collect::<BTreeSet<u64>>(), "no gap");
    eprintln!(
        "{answered_before_kill} issues answered before the kill; 503 answers retried with the same key: {unavailable}"
    );

    // The killed NATS node comes back (from its own disk) and catches up.
    cluster.restart(leader, false);
    // An API node dies: the other serves reads and writes.
    drop(a);
    let head = b.head().await;
    let id = b
        .signed(
            "svhtt-cv-qlvh",
            "svhtt-pgd-1",
            "KT.",
            "BC",
            recipients.clone(),
        )
        .await;
    let r = b.issue(&id, "svhtt-van-thu").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["issue"]["number"], 129);
    assert!(b.head().await > head);
    // Whichever node held the signing lease, B signs once it is the only
    // one: its checkpoint comes to cover the whole log.
    let head = b.head().await;
    let mut size = 0;
    for _ in 0..1200 {
        let note = b.get("svhtt-van-thu", "/log/checkpoint").await;
        size = note
            .body
            .as_str()
            .and_then(|n| n.lines().nth(1)?.parse().ok())
            .unwrap_or(0);
        if size >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(size, head, "the surviving node signs checkpoints");
}

/// A NATS node restarted from an empty disk catches up from its peers and
/// holds the whole stream again.
#[tokio::test]
async fn a_nats_node_restarted_from_an_empty_disk_catches_up() {
    let _limit = crate::helpers::time_limit_secs(900);
    let mut cluster = Cluster::start();
    let stream = cluster::fresh_stream();
    let dir = tempfile::tempdir().unwrap();
    let api = node(&cluster, &stream, dir.path());
    let recipients = json!([{ "agency": "UBND" }]);
    api.signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", recipients)
        .await;
    let wiped = (cluster.stream_leader(&stream).unwrap() + 1) % 3;
    cluster.restart(wiped, true);
    // The cluster may answer 503 for a moment while the node rejoins: the
    // drafts are retried with their keys.
    let (_, unavailable) = drafts_until_answered(&api, 3).await;
    eprintln!("503 answers while the wiped node rejoined: {unavailable}");
    let head = api.head().await;
    for _ in 0..1200 {
        if cluster.messages_on(wiped, &stream) == Some(head) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the wiped node holds {:?} of {head} messages",
        cluster.messages_on(wiped, &stream)
    );
}

/// Drafts `n` documents through `api`, each with its own Idempotency-Key,
/// retrying a 503 with the same key: (ids, 503s met).
async fn drafts_until_answered(api: &Api, n: usize) -> (Vec<String>, usize) {
    let (mut ids, mut unavailable) = (Vec::new(), 0);
    // The file first, retried like the drafts: the object store answers 503
    // too while the cluster settles (a file is named by its hash, so a
    // retry stores nothing twice).
    let sha = loop {
        let r = api
            .send(
                api.request("svhtt-cv-qlvh", reqwest::Method::POST, "/v1/blobs")
                    .body(b"noi dung".to_vec()),
            )
            .await;
        match r.status {
            201 => break r.body["sha256"].as_str().unwrap().to_owned(),
            503 if unavailable < 150 => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            s => panic!("file: {s} {}", r.body),
        }
    };
    for i in 0..n {
        let key = format!("draft-{i}");
        loop {
            let r = api
                .send(
                    api.request("svhtt-cv-qlvh", reqwest::Method::POST, "/v1/documents")
                        .header("Idempotency-Key", &key)
                        .json(&json!({
                            "doc_type": "BC",
                            "title": format!("Báo cáo {i}"),
                            "content": [{ "name": "noi-dung.txt", "sha256": sha }],
                            "recipients": [{ "agency": "UBND" }],
                        })),
                )
                .await;
            match r.status {
                201 => {
                    ids.push(r.body["id"].as_str().unwrap().to_owned());
                    break;
                }
                503 if unavailable < 150 => {
                    unavailable += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                s => panic!("draft {i}: {s} {}", r.body),
            }
        }
    }
    (ids, unavailable)
}

/// A commit that got no answer is read back, never sent again: when it
/// landed the command succeeds as if answered; when it did not, 503, and
/// the retry with the same key writes it once. Either way every draft is
/// exactly two records (its event and its request record).
#[tokio::test]
async fn unanswered_commits_are_read_back_never_sent_twice() {
    let _limit = crate::helpers::time_limit_secs(900);
    let cluster = Cluster::start();
    for (fault, expect_503) in [("lose-reply:2", false), ("lose-commit:2", true)] {
        let stream = cluster::fresh_stream();
        let dir = tempfile::tempdir().unwrap();
        let api = node_with(
            &cluster,
            &stream,
            dir.path(),
            &[("VANTHU_TEST_JETSTREAM_FAULT", fault)],
        );
        let before = api.head().await;
        let (ids, unavailable) = drafts_until_answered(&api, 10).await;
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 10, "{fault}");
        assert_eq!(
            api.head().await,
            before + 20,
            "{fault}: each draft written once"
        );
        assert_eq!(
            unavailable > 0,
            expect_503,
            "{fault}: {unavailable} answers 503"
        );
    }
}

/// The mapping, read from the stream itself: a document's version v is
/// the message at the position the node reports for it, on the document's
/// own subject, and the subject's last message is the last version (what a
/// command's `Nats-Expected-Last-Subject-Sequence` names).
#[tokio::test]
async fn versions_are_subject_sequences_in_the_stream() {
    let _limit = crate::helpers::time_limit_secs(900);
    let cluster = Cluster::start();
    let stream = cluster::fresh_stream();
    let dir = tempfile::tempdir().unwrap();
    let api = node(&cluster, &stream, dir.path());
    let id = api
        .signed(
            "svhtt-cv-qlvh",
            "svhtt-pgd-1",
            "KT.",
            "BC",
            json!([{ "agency": "UBND" }]),
        )
        .await;
    let trail = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}/events"))
        .await;
    let events = trail.body["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "drafted, routed, signed");

    let addrs: Vec<async_nats::ServerAddr> = cluster
        .urls()
        .split(',')
        .map(|u| u.parse().unwrap())
        .collect();
    let client = async_nats::connect(addrs).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let s = js.get_stream(&stream).await.unwrap();
    let prefix = format!("{}.ev.", stream.to_lowercase());
    let subject = vanthu::store::jetstream::subject(&prefix, &format!("doc-{id}"));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["version"], i as u64 + 1);
        let position = e["position"].as_u64().unwrap();
        let m = s.direct_get(position).await.unwrap();
        assert_eq!(
            m.subject.as_str(),
            subject,
            "version {} at {position}",
            i + 1
        );
        let body: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body["type"], e["type"]);
    }
    let last = s.get_last_raw_message_by_subject(&subject).await.unwrap();
    assert_eq!(last.sequence, events[2]["position"].as_u64().unwrap());
    // The stream keeps history whatever anyone asks: no purge, no delete.
    assert!(s.cached_info().config.deny_delete && s.cached_info().config.deny_purge);
}

/// Webhooks with two nodes on one log: only the lease holder sends; killed,
/// the other takes the lease over and sends what is new, and nothing the
/// first delivered again (the nodes share what became of each delivery).
#[tokio::test]
async fn webhooks_go_on_from_the_other_node_without_repeats() {
    let _limit = crate::helpers::time_limit_secs(900);
    use crate::webhooks::{settled, subscribe, Receiver};
    let cluster = cluster::shared();
    let stream = cluster::fresh_stream();
    let receiver = Receiver::start();
    receiver.set("mode", "ok");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(cluster, &stream, da.path());
    let b = node(cluster, &stream, db.path());
    let secret = subscribe(&a, "hook", &receiver.url, &["document.issued"]).await;
    receiver.set("secret", &secret);
    for n in 0..3 {
        a.ubnd_issues(
            &format!("Công văn số {n}"),
            "normal",
            json!([{ "agency": "SNV" }]),
        )
        .await;
    }
    let arrived = |n: usize| {
        move |log: &[serde_json::Value]| log.iter().filter(|e| e["status"] == 204).count() >= n
    };
    receiver.wait_for("three messages", arrived(3)).await;
    // The sender is the node whose delivery log has the answers.
    let mut sender = None;
    for _ in 0..600 {
        for (i, api) in [&a, &b].into_iter().enumerate() {
            let r = api.get("quan-tri", "/v1/admin/webhooks/hook").await;
            if r.body["deliveries"]["delivered"] == 3 {
                sender = Some(i);
            }
        }
        if sender.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (dead, other) = match sender.expect("one node delivered the three") {
        0 => (a, b),
        _ => (b, a),
    };
    drop(dead); // SIGKILL
    for n in 3..5 {
        other
            .ubnd_issues(
                &format!("Công văn số {n}"),
                "normal",
                json!([{ "agency": "SNV" }]),
            )
            .await;
    }
    receiver.wait_for("five messages", arrived(5)).await;
    let counts = settled(&other, "hook").await;
    assert_eq!(counts["delivered"], 5, "{counts}");
    let log = receiver.answered();
    let mut seen = BTreeSet::new();
    for e in &log {
        assert_eq!(e["verified"], true, "{e}");
        assert!(
            seen.insert(e["id"].as_str().unwrap().to_owned()),
            "sent twice: {e}"
        );
    }
    assert_eq!(seen.len(), 5);
}

/// D8: the lease ends when the NATS server expires it, never when another
/// node's clock says so. A holder whose clock runs 10 s behind the
/// rival's (simulated by writing what such a holder wrote before the fix:
/// its id and an expiry by its own clock, in the `_LEASE` bucket) keeps
/// the lease while it renews; once it stops, the rival takes it only
/// after the server expired it, and by then the holder no longer acts.
#[tokio::test]
async fn the_lease_ends_by_the_servers_clock_not_a_nodes() {
    let _limit = crate::helpers::time_limit_secs(900);
    use vanthu::store::lease::{JetStreamLeadership, Leadership, LEASE};
    let cluster = Cluster::start();
    let servers: Vec<async_nats::ServerAddr> = cluster
        .urls()
        .split(',')
        .map(|u| u.parse().unwrap())
        .collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = cluster::fresh_stream();
    let a = JetStreamLeadership::open(&js, &stream, 3, "node-a".into())
        .await
        .unwrap();
    let b = JetStreamLeadership::open(&js, &stream, 3, "node-b".into())
        .await
        .unwrap();
    assert!(a.hold().await, "the first node takes a free lease");
    assert!(!b.hold().await, "a live lease is not taken");
    let old = js.get_key_value(format!("{stream}_LEASE")).await.unwrap();
    #[allow(clippy::disallowed_methods)]
    let behind = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 10_000;
    let mut renewed = std::time::Instant::now();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(a.hold().await, "the holder keeps renewing its lease");
        renewed = std::time::Instant::now();
        // What the holder wrote, as a node whose clock runs behind wrote it.
        let _ = old
            .put(
                "holder",
                format!("node-a {}", behind + LEASE.as_millis()).into(),
            )
            .await;
        assert!(
            !b.hold().await,
            "the rival took a lease the holder renews, by its own clock"
        );
        assert!(a.holds() && !b.holds());
    }
    // The holder stops renewing (it hangs, or its host lost the network).
    let taken = loop {
        if b.hold().await {
            break renewed.elapsed();
        }
        assert!(
            renewed.elapsed() < LEASE * 4,
            "the server never expired the stopped holder's lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !a.holds(),
        "two holders: the rival took the lease while the stopped holder still acts"
    );
    assert!(
        taken + Duration::from_millis(100) >= LEASE,
        "the lease ended {taken:?} after its last renewal, before the {LEASE:?} it lasts"
    );
}
