//! Tests of the sender's parts that need no receiver.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::*;

fn policy() -> Policy {
    Policy {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(3600),
        max_age: chrono::Duration::hours(72),
        timeout: Duration::from_secs(10),
        concurrency: 4,
        deadline_check: Duration::from_secs(60),
    }
}

#[test]
fn backoff_doubles_to_its_cap_and_jitter_takes_off_at_most_half() {
    let p = policy();
    let cases = [
        (1, 0.0, 5_000),
        (2, 0.0, 10_000),
        (3, 0.0, 20_000),
        (4, 0.999_999, 20_000),
        (10, 0.0, 2_560_000),
        (11, 0.0, 3_600_000),
        (40, 0.0, 3_600_000),
        (40, 0.5, 2_700_000),
        (u32::MAX, 0.0, 3_600_000),
        (0, 0.0, 5_000),
    ];
    for (tries, jitter, ms) in cases {
        let got = backoff(&p, tries, jitter).as_millis() as i64;
        assert!(
            (got - ms).abs() <= 1,
            "try {tries}, jitter {jitter}: {got} ms, want {ms}"
        );
    }
}

#[test]
fn jitter_spreads_retries_between_half_and_all_of_the_delay() {
    let p = policy();
    let delays: Vec<_> = (0..200)
        .map(|_| backoff(&p, 3, f64::from(rand_u32()) / f64::from(u32::MAX)))
        .collect();
    assert!(delays
        .iter()
        .all(|d| *d >= Duration::from_secs(10) && *d <= Duration::from_secs(20)));
    let distinct: HashSet<_> = delays.iter().map(|d| d.as_millis()).collect();
    assert!(
        distinct.len() > 100,
        "jitter varies: {} distinct delays",
        distinct.len()
    );
}

// ---------------------------------------------------------------------------
// A sender on a table of its own, with a clock the test sets, a lease the
// test gives and takes, and an axis that records what it is asked to send.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeZone;

use crate::outbox::{Delivery, Status, Subscriber, Watch};
use crate::store::tables::Changes;
use crate::webhooks::Sent;

/// An axis that answers as told and records each send.
struct FakeAxis {
    answer: Mutex<Sent>,
    sent: Mutex<Vec<String>>,
}

impl crate::interchange::Axis for FakeAxis {
    fn send<'a>(
        &'a self,
        _peer: &'a str,
        id: &'a str,
        _body: Vec<u8>,
    ) -> futures_util::future::BoxFuture<'a, Sent> {
        self.sent.lock().unwrap().push(id.to_owned());
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move { answer })
    }
}

pub(super) struct Harness {
    pub sender: Arc<Sender>,
    pub now: Arc<Mutex<DateTime<Utc>>>,
    pub sends: Arc<AtomicBool>,
    axis: Arc<FakeAxis>,
    _dir: tempfile::TempDir,
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

pub(super) fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let log =
        crate::store::RocksLog::open(dir.path(), crate::store::LogOptions::default()).unwrap();
    let fold =
        crate::projections::Projections::open(&log, vec![Arc::new(crate::outbox::Outbox)]).unwrap();
    let table = fold.table(crate::outbox::NAME).unwrap().clone();
    let now = Arc::new(Mutex::new(at(2027, 3, 1, 3)));
    let sends = Arc::new(AtomicBool::new(true));
    let axis = Arc::new(FakeAxis {
        answer: Mutex::new(Sent {
            status: Some(200),
            error: None,
            retry_after: None,
        }),
        sent: Mutex::new(Vec::new()),
    });
    let sender = Sender::new(Env {
        fold,
        table,
        org: Box::new(|| Arc::new(Org::default())),
        now: Box::new({
            let now = Arc::clone(&now);
            move || *now.lock().unwrap()
        }),
        system_now: Box::new(|| at(2027, 3, 1, 3)),
        sends: Box::new({
            let sends = Arc::clone(&sends);
            move || sends.load(Ordering::SeqCst)
        }),
        key: None,
        http: crate::outbound::webhook_client(Duration::from_secs(1)).unwrap(),
        policy: Policy {
            base: Duration::from_millis(10),
            ..policy()
        },
        calendar: crate::domain::calendar::Calendar::weekends_only(),
        due_soon_days: 3,
        marks: None,
        axis: Arc::clone(&axis) as Arc<dyn crate::interchange::Axis>,
        compose: Arc::new(std::sync::OnceLock::new()),
    });
    Harness {
        sender,
        now,
        sends,
        axis,
        _dir: dir,
    }
}

impl Harness {
    fn write(&self, rows: Vec<(String, Vec<u8>)>) {
        let changes: Changes = rows
            .into_iter()
            .map(|(k, v)| (k.into_bytes(), Some(v)))
            .collect();
        self.sender.table().write_outside(changes).unwrap();
    }

    fn set_now(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap() = t;
    }

    /// A webhook subscribed to both deadline kinds, a document, and its
    /// reply deadline `deadline` for agency SNV.
    fn watching(&self, doc: uuid::Uuid, deadline: chrono::NaiveDate) {
        let subscriber = Subscriber {
            webhook: "hook".into(),
            client: "portal".into(),
            events: vec!["deadline.due_soon".into(), "deadline.overdue".into()],
            agencies: Vec::new(),
            since: at(2027, 1, 1, 0),
        };
        let watch = Watch {
            doc,
            agency: "SNV".into(),
            issuer: "UBND".into(),
            deadline,
        };
        self.write(vec![
            ("s/hook".into(), serde_json::to_vec(&subscriber).unwrap()),
            (
                format!("m/{doc}"),
                serde_json::to_vec(&serde_json::json!({ "doc": doc, "agency": "UBND" })).unwrap(),
            ),
        ]);
        self.write(vec![
            (watch.key(), serde_json::to_vec(&watch).unwrap()),
            (format!("x/{doc}/SNV"), watch.key().into_bytes()),
        ]);
    }

    /// Every delivery in the table, by id.
    fn deliveries(&self) -> std::collections::BTreeMap<String, Delivery> {
        self.sender
            .table()
            .scan(b"q/", None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, v)| {
                let d: Delivery = serde_json::from_slice(&v).unwrap();
                (d.id.clone(), d)
            })
            .collect()
    }

    /// A delivery to peer `peer`, pending, as the fold makes one.
    fn peer_delivery(&self, id: &str, position: u64) -> Delivery {
        let d = Delivery {
            id: id.into(),
            webhook: format!("{}ha-tinh", crate::interchange::PEER_PREFIX),
            client: String::new(),
            kind: "edxml.status.03".into(),
            doc: uuid::Uuid::from_u128(u128::from(position)),
            position,
            created_at: at(2027, 3, 1, 0),
            body: "<status/>".into(),
            compose: None,
        };
        self.write(crate::outbox::made(&d).into_iter().collect());
        d
    }
}

/// D7: two senders (a lease moved, or a table restored) that make the same
/// deadline message at different instants make the same bytes.
#[tokio::test]
async fn a_deadline_message_is_the_same_bytes_whenever_and_wherever_it_is_made() {
    let doc = uuid::Uuid::from_u128(7);
    // Wednesday 10 March 2027: due soon from Friday 5 March (3 working days).
    let deadline = chrono::NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
    let (a, b) = (harness(), harness());
    for h in [&a, &b] {
        h.watching(doc, deadline);
    }
    a.set_now(at(2027, 3, 5, 2));
    b.set_now(at(2027, 3, 8, 9));
    assert_eq!(a.sender.deadlines().unwrap(), 1);
    assert_eq!(b.sender.deadlines().unwrap(), 1);
    let (due_a, due_b) = (a.deliveries(), b.deliveries());
    assert_eq!(due_a, due_b, "due soon: one id, one body");
    let due = due_a.values().next().unwrap();
    assert_eq!(due.kind, "deadline.due_soon");
    // 00:00 +07:00 on Friday 5 March.
    assert_eq!(due.created_at, at(2027, 3, 4, 17));
    // Overdue, told a day apart.
    a.set_now(at(2027, 3, 11, 1));
    b.set_now(at(2027, 3, 12, 8));
    assert_eq!(a.sender.deadlines().unwrap(), 1);
    assert_eq!(b.sender.deadlines().unwrap(), 1);
    let (all_a, all_b) = (a.deliveries(), b.deliveries());
    assert_eq!(all_a.len(), 2);
    assert_eq!(all_a, all_b, "overdue: one id, one body");
    // Each is due when made, its maximum age counted from then.
    let report = crate::outbox::report(b.sender.table(), &due.id).unwrap();
    assert_eq!(report.state.status, Status::Pending);
    assert_eq!(report.state.since, Some(at(2027, 3, 8, 9)));
}

#[test]
fn due_soon_starts_at_midnight_of_the_first_day_with_so_few_working_days_left() {
    let calendar = crate::domain::calendar::Calendar::vietnam();
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
    for _ in 0..120 {
        for within in [0, 1, 3, 5] {
            let stamp = super::deadlines::due_soon_at(&calendar, day, within);
            assert!(
                calendar.is_due_soon(day, stamp, within),
                "{day} within {within}: {stamp} is due soon"
            );
            let before = stamp - chrono::Duration::milliseconds(1);
            assert!(
                !calendar.is_due_soon(day, before, within),
                "{day} within {within}: {before} is not yet"
            );
        }
        day = day.succ_opt().unwrap();
    }
}

/// D8: a node that lost the lease between the pass and the post does not
/// post, and records nothing (the holder will send it).
#[tokio::test]
async fn a_node_that_lost_the_lease_after_the_pass_does_not_post() {
    let h = harness();
    let d = h.peer_delivery("msg_lease", 5);
    let (_, due) = h.sender.pass().unwrap();
    assert_eq!(due.len(), 1);
    h.sends.store(false, Ordering::SeqCst);
    h.sender
        .attempt(due.into_iter().next().unwrap())
        .await
        .unwrap();
    assert!(
        h.axis.sent.lock().unwrap().is_empty(),
        "posted without the lease"
    );
    let r = crate::outbox::report(h.sender.table(), &d.id).unwrap();
    assert_eq!((r.state.status, r.state.tries), (Status::Pending, 0));
    // Held again: it goes.
    h.sends.store(true, Ordering::SeqCst);
    h.sender.lock().clear();
    let (_, due) = h.sender.pass().unwrap();
    h.sender
        .attempt(due.into_iter().next().unwrap())
        .await
        .unwrap();
    assert_eq!(*h.axis.sent.lock().unwrap(), ["msg_lease"]);
    let r = crate::outbox::report(h.sender.table(), &d.id).unwrap();
    assert_eq!(r.state.status, Status::Delivered);
}

/// D12: a delivery row that does not decode is reported (on `/readyz`,
/// through the fold's progress) and the others still go; it is never
/// skipped silently, nor does it stop every other delivery.
#[tokio::test]
async fn an_undecodable_delivery_is_reported_and_the_others_go() {
    let h = harness();
    let good = h.peer_delivery("msg_good", 3);
    let bad = h.peer_delivery("msg_bad", 4);
    h.write(vec![(format!("q/{}", bad.id), b"{not json".to_vec())]);
    assert!(h.sender.progress().iter().all(|p| p.error.is_none()));
    let (_, due) = h.sender.pass().unwrap();
    let ids: Vec<&str> = due.iter().map(|r| r.delivery.id.as_str()).collect();
    assert_eq!(ids, [good.id.as_str()]);
    let outbox = h
        .sender
        .progress()
        .into_iter()
        .find(|p| p.name == crate::outbox::NAME)
        .unwrap();
    let error = outbox.error.expect("the outbox reports the row");
    assert!(error.contains("q/msg_bad"), "{error}");
}

/// D13: the counts kept beside the deliveries are what reading every
/// delivery finds, through attempts, dead letters, re-drives and deadline
/// messages.
#[tokio::test]
async fn the_kept_counts_are_what_the_rows_say() {
    let h = harness();
    let peer = format!("{}ha-tinh", crate::interchange::PEER_PREFIX);
    let ds: Vec<Delivery> = (1..=3)
        .map(|n| h.peer_delivery(&format!("msg_{n}"), n))
        .collect();
    // As the fold counts what it makes (its counter and its mark).
    h.write(vec![
        (format!("k/{peer}/made"), b"3".to_vec()),
        ("K/fold".into(), Vec::new()),
    ]);
    h.sender.backfill_counts().unwrap();
    let both = |webhook: &str| {
        let table = h.sender.table();
        (
            crate::outbox::counters::counted(table, webhook).unwrap(),
            crate::outbox::read::counted_by_rows(table, webhook).unwrap(),
        )
    };
    assert_eq!(both(&peer), (Some([3, 0, 0]), [3, 0, 0]));
    let (_, due) = h.sender.pass().unwrap();
    let mut due: BTreeMap<String, Report> = due
        .into_iter()
        .map(|r| (r.delivery.id.clone(), r))
        .collect();
    h.sender
        .attempt(due.remove("msg_1").unwrap())
        .await
        .unwrap();
    *h.axis.answer.lock().unwrap() = Sent {
        status: Some(422),
        error: Some("answered 422".into()),
        retry_after: None,
    };
    h.sender
        .attempt(due.remove("msg_2").unwrap())
        .await
        .unwrap();
    assert_eq!(both(&peer), (Some([1, 1, 1]), [1, 1, 1]));
    h.sender.lock().clear();
    h.sender.redrive(&ds[1].id).await.unwrap();
    assert_eq!(both(&peer), (Some([2, 1, 0]), [2, 1, 0]));
    h.sender.redrive(&ds[0].id).await.unwrap();
    assert_eq!(both(&peer), (Some([3, 0, 0]), [3, 0, 0]));
    // A deadline message the sender makes counts for its webhook.
    h.watching(
        uuid::Uuid::from_u128(9),
        chrono::NaiveDate::from_ymd_opt(2027, 3, 10).unwrap(),
    );
    h.set_now(at(2027, 3, 5, 2));
    assert_eq!(h.sender.deadlines().unwrap(), 1);
    assert_eq!(both("hook"), (Some([1, 0, 0]), [1, 0, 0]));
}

/// D13: a watch told due soon leaves the fold's deadline-ordered rows and
/// is read again only when it passes; a watch the fold ended or moved in
/// between is then dropped, not told.
#[tokio::test]
async fn a_watch_told_due_soon_is_read_again_only_when_it_passes() {
    let h = harness();
    let doc = uuid::Uuid::from_u128(11);
    let deadline = chrono::NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
    h.watching(doc, deadline);
    let rows = |prefix: &[u8]| {
        h.sender
            .table()
            .scan(prefix, None, usize::MAX)
            .unwrap()
            .len()
    };
    h.set_now(at(2027, 3, 5, 2));
    assert_eq!(h.sender.deadlines().unwrap(), 1);
    assert_eq!(
        (rows(b"w/"), rows(b"u/")),
        (0, 1),
        "moved to the sender's index"
    );
    // More checks before it passes make and move nothing.
    h.set_now(at(2027, 3, 9, 2));
    assert_eq!(h.sender.deadlines().unwrap(), 0);
    assert_eq!((rows(b"w/"), rows(b"u/")), (0, 1));
    // It passes: told overdue, and gone.
    h.set_now(at(2027, 3, 11, 2));
    assert_eq!(h.sender.deadlines().unwrap(), 1);
    assert_eq!((rows(b"w/"), rows(b"u/")), (0, 0));

    // Another, replied to (the fold unwatches it) after due soon: never overdue.
    let other = uuid::Uuid::from_u128(12);
    let later = chrono::NaiveDate::from_ymd_opt(2027, 3, 17).unwrap();
    h.watching(other, later);
    h.set_now(at(2027, 3, 12, 2));
    assert_eq!(h.sender.deadlines().unwrap(), 1);
    let mut changes = Changes::new();
    changes.insert(format!("x/{other}/SNV").into_bytes(), None);
    h.sender.table().write_outside(changes).unwrap();
    h.set_now(at(2027, 3, 18, 2));
    assert_eq!(
        h.sender.deadlines().unwrap(),
        0,
        "a replied deadline was told overdue"
    );
    assert_eq!(rows(b"u/"), 0);
    let kinds: Vec<String> = h.deliveries().into_values().map(|d| d.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "deadline.overdue").count(),
        1,
        "{kinds:?}"
    );
}
