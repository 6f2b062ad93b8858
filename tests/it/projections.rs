//! Projections over HTTP: inboxes through the story, deadlines through time
//! (development clock, no sleeps), statistics against a recount from the
//! log, the feed with a crashing consumer, and live state equal to a
//! rebuild after SIGKILL.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::helpers::Api;
use crate::helpers::{keys_dir, vanthu};

const DEV: &[(&str, &str)] = &[("VANTHU_DEV_CLOCK", "true")];

fn to_ubnd(days: u32) -> Value {
    json!([{ "agency": "UBND", "reply_within_working_days": days }])
}

/// Pending items of `who`'s inbox as (box, reason) per document.
async fn inbox(api: &Api, who: &str, position: u64) -> BTreeMap<String, BTreeSet<String>> {
    let r = api
        .get(who, &format!("/v1/inbox?min_position={position}&limit=500"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in r.body["items"].as_array().unwrap() {
        out.entry(item["doc"].as_str().unwrap().to_owned())
            .or_default()
            .insert(format!(
                "{}:{}",
                item["box"].as_str().unwrap(),
                item["reason"].as_str().unwrap()
            ));
    }
    out
}

fn position(r: &crate::helpers::Resp) -> u64 {
    r.headers["vanthu-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every official's pending inbox equals `want` (others: empty).
async fn expect_inboxes(api: &Api, step: &str, at: u64, doc: &str, want: &[(&str, &[&str])]) {
    const OFFICIALS: [&str; 9] = [
        "svhtt-cv-qlvh",
        "svhtt-pgd-1",
        "svhtt-giam-doc",
        "svhtt-van-thu",
        "svhtt-cv-vp",
        "ubnd-van-thu",
        "ubnd-pct-1",
        "ubnd-cv-kt",
        "ubnd-chu-tich",
    ];
    for who in OFFICIALS {
        let got = inbox(api, who, at).await;
        let got: BTreeSet<String> = got.get(doc).cloned().unwrap_or_default();
        let expected: BTreeSet<String> = want
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, items)| items.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(got, expected, "after {step}: inbox of {who}");
    }
}

#[tokio::test]
async fn inboxes_follow_the_story_step_by_step() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let doc = api.draft("svhtt-cv-qlvh", "BC", to_ubnd(5)).await;
    let p = |r: &crate::helpers::Resp| position(r);
    let r = api
        .opinion(
            &doc,
            "svhtt-cv-qlvh",
            json!({ "from": ["svhtt-cv-vp"], "question": "Số liệu?" }),
        )
        .await;
    expect_inboxes(
        &api,
        "opinion requested",
        p(&r),
        &doc,
        &[("svhtt-cv-vp", &["review:opinion"])],
    )
    .await;
    let r = api
        .opinion(&doc, "svhtt-cv-vp", json!({ "opinion": "agree" }))
        .await;
    expect_inboxes(&api, "opinion given", p(&r), &doc, &[]).await;
    let r = api
        .route(
            &doc,
            "svhtt-cv-qlvh",
            json!({ "to": "svhtt-pgd-1", "purpose": "signing" }),
        )
        .await;
    expect_inboxes(
        &api,
        "routed for signing",
        p(&r),
        &doc,
        &[("svhtt-pgd-1", &["sign:signing"])],
    )
    .await;
    let r = api.sign(&doc, "svhtt-pgd-1", "KT.").await;
    assert_eq!(r.status, 200);
    expect_inboxes(&api, "signed", p(&r), &doc, &[]).await;
    let r = api.issue(&doc, "svhtt-van-thu").await;
    expect_inboxes(
        &api,
        "issued",
        p(&r),
        &doc,
        &[("ubnd-van-thu", &["handle:receive"])],
    )
    .await;
    let r = api.receive(&doc, "ubnd-van-thu", json!({})).await;
    expect_inboxes(
        &api,
        "received",
        p(&r),
        &doc,
        &[
            ("ubnd-pct-1", &["handle:assign"]),
            ("ubnd-chu-tich", &["handle:assign"]),
        ],
    )
    .await;
    let r = api
        .assign(&doc, "ubnd-pct-1", json!({ "lead": "KT", "fyi": ["VP"], "handler": "ubnd-cv-kt", "instruction": "Phòng KT chủ trì" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect_inboxes(
        &api,
        "assigned",
        p(&r),
        &doc,
        &[("ubnd-cv-kt", &["handle:handler"])],
    )
    .await;
    // The unit inboxes: KT handles, VP is informed.
    let kt = api
        .get(
            "ubnd-cv-kt",
            &format!("/v1/units/KT/inbox?min_position={}", p(&r)),
        )
        .await;
    assert_eq!(kt.body["items"][0]["reason"], "lead", "{}", kt.body);
    let vp = api
        .get("ubnd-van-thu", "/v1/units/VP/inbox?agency=UBND&box=info")
        .await;
    assert_eq!(vp.body["items"][0]["reason"], "fyi", "{}", vp.body);
    assert_eq!(
        api.get("svhtt-cv-vp", "/v1/units/KT/inbox?agency=UBND")
            .await
            .status,
        403
    );
    // Read marks.
    assert_eq!(inbox_item(&api, "ubnd-cv-kt", &doc).await["read"], false);
    let r = api
        .post("ubnd-cv-kt", &format!("/v1/inbox/{doc}/read"), json!({}))
        .await;
    assert_eq!(r.status, 200);
    let _ = inbox(&api, "ubnd-cv-kt", p(&r)).await;
    assert_eq!(inbox_item(&api, "ubnd-cv-kt", &doc).await["read"], true);
    let r = api.complete(&doc, "ubnd-cv-kt", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    expect_inboxes(&api, "completed", p(&r), &doc, &[]).await;
    let done = api
        .get(
            "ubnd-cv-kt",
            &format!("/v1/inbox?state=done&min_position={}", p(&r)),
        )
        .await;
    assert!(done.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["doc"] == doc.as_str()));
}

async fn inbox_item(api: &Api, who: &str, doc: &str) -> Value {
    let r = api.get(who, "/v1/inbox").await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["doc"] == doc)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn status_of(api: &Api, doc: &str, at: u64) -> (String, Value) {
    let r = api
        .get(
            "ubnd-van-thu",
            &format!("/v1/deadlines?agency=UBND&unit=-&min_position={at}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["doc"] == doc)
        .cloned()
        .unwrap_or_else(|| panic!("no row for {doc}: {}", r.body));
    (row["status"].as_str().unwrap().to_owned(), row)
}

async fn advance(api: &Api, days: i64) {
    let r = api
        .post("quan-tri", "/v1/dev/clock", json!({ "days": days }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A plan of SVHTT to UBND, issued, received and assigned; returns its id.
async fn plan(api: &Api, days: u32) -> (String, u64) {
    let (id, r) = api.assigned_plan(to_ubnd(days)).await;
    (id, position(&r))
}

async fn reply(api: &Api, plan: &str) -> u64 {
    let reply = api.issued_ubnd_reply().await;
    let r = api
        .reply(&plan, "ubnd-cv-kt", json!({ "reply": reply }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    position(&r)
}

#[tokio::test]
async fn deadlines_move_through_time_on_working_days() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(DEV);
    // Today (server time) + 3 working days; due soon = within 2 working days.
    let (a, at) = plan(&api, 3).await;
    let (b, _) = plan(&api, 3).await;
    let (c, at_c) = plan(&api, 3).await;
    assert_eq!(status_of(&api, &a, at_c).await.0, "pending");
    let at = reply(&api, &a).await.max(at);
    assert_eq!(status_of(&api, &a, at).await.0, "replied_on_time");
    // Two weeks later: b and c are overdue whatever the weekday.
    advance(&api, 14).await;
    assert_eq!(status_of(&api, &b, 0).await.0, "overdue");
    let (_, row_c) = status_of(&api, &c, 0).await;
    assert_eq!(row_c["status"], "overdue");
    // c's deadline is extended: no longer overdue, the original is kept.
    let new = chrono::NaiveDate::parse_from_str(row_c["deadline"].as_str().unwrap(), "%Y-%m-%d")
        .unwrap()
        + chrono::Duration::days(30);
    let r = api
        .extend(&c, "svhtt-giam-doc", json!({ "agency": "UBND", "scope": "reply", "new": new, "reason": "UBND đề nghị gia hạn" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (s, row) = status_of(&api, &c, position(&r)).await;
    assert_eq!(s, "pending");
    assert_eq!(row["original"], row_c["deadline"]);
    assert_eq!(row["late_against_original"], true);
    assert_eq!(row["extensions"], 1);
    // b answered now: late.
    let at = reply(&api, &b).await;
    assert_eq!(status_of(&api, &b, at).await.0, "replied_late");
    // c becomes due soon on its new deadline's day, then is answered on time.
    let clock = api.get("quan-tri", "/v1/dev/clock").await;
    let now = chrono::DateTime::parse_from_rfc3339(clock.body["now"].as_str().unwrap()).unwrap();
    let today = vanthu::domain::calendar::Calendar::local_date(now.into());
    advance(&api, (new - today).num_days()).await;
    assert_eq!(status_of(&api, &c, 0).await.0, "due_soon");
    let at = reply(&api, &c).await.max(at_c);
    assert_eq!(status_of(&api, &c, at).await.0, "replied_on_time");
    // Per unit: the agency's replies ("-"): 2 on time, 1 late.
    let stats = api
        .get("ubnd-van-thu", "/v1/deadlines/stats?agency=UBND")
        .await;
    let agency = stats.body["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "-")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            agency["on_time"].clone(),
            agency["late"].clone(),
            agency["total"].clone()
        ),
        (json!(2), json!(1), json!(3))
    );
    // The overdue report is CSV with a header: no reply is overdue any more,
    // but the KT unit never completed its three handling assignments.
    let csv = api
        .get("ubnd-van-thu", "/v1/deadlines/overdue.csv?agency=UBND")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = csv.body.as_str().unwrap().to_owned();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().skip(1).all(|l| l.contains(",KT,handling,")),
        "{text}"
    );
    let replies = api
        .get(
            "ubnd-van-thu",
            "/v1/deadlines/overdue.csv?agency=UBND&unit=-",
        )
        .await;
    assert_eq!(
        replies.body.as_str().unwrap().lines().count(),
        1,
        "{}",
        replies.body
    );
    // Bad filters are problems, never plain-text errors.
    for (path, want) in [
        ("/v1/deadlines?agency=UBND&status=late", 400),
        ("/v1/deadlines?agency=UBND&due_before=yesterday", 400),
        ("/v1/inbox?limit=lots", 400),
        ("/v1/inbox?limit=0", 400),
        ("/v1/inbox?box=spam", 400),
        ("/v1/inbox?colour=red", 400),
        ("/v1/registers/UBND/this-year/outgoing", 404),
        ("/v1/registers/UBND/2026/sideways", 404),
        ("/v1/registers/SNV/2026/outgoing", 403),
    ] {
        let r = api.get("ubnd-van-thu", path).await;
        assert_eq!(r.status, want, "{path}: {}", r.body);
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{path}"
        );
    }
}

/// Counts on-time and late replies per recipient agency from the raw log.
fn recount(dir: &std::path::Path) -> BTreeMap<String, (u64, u64)> {
    use vanthu::domain::calendar::Calendar;
    use vanthu::domain::document::DocumentEvent;
    let log = crate::helpers::open_log(dir);
    let cal = Calendar::vietnam();
    let mut due: BTreeMap<(String, String), chrono::NaiveDate> = BTreeMap::new();
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in log.read_all(1, usize::MAX).unwrap() {
        if !r.event_type.starts_with("document.") {
            continue;
        }
        let e: DocumentEvent = serde_json::from_value(r.payload).unwrap();
        match e {
            DocumentEvent::Issued(i) => {
                for rcp in i.recipients {
                    if let Some(d) = rcp.reply_due {
                        due.insert((r.stream.clone(), rcp.agency), d);
                    }
                }
            }
            DocumentEvent::DeadlineExtended(x)
                if x.scope == vanthu::domain::document::DeadlineScope::Reply =>
            {
                due.insert((r.stream.clone(), x.agency), x.new);
            }
            DocumentEvent::Replied(x) => {
                if let Some(d) = due.remove(&(r.stream.clone(), x.agency.clone())) {
                    let c = out.entry(x.agency).or_default();
                    if cal.is_overdue(d, x.at) {
                        c.1 += 1
                    } else {
                        c.0 += 1
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn live_projections_equal_a_rebuild_after_sigkill_and_stats_equal_a_recount() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut plans = Vec::new();
    for round in 0..2 {
        let api = Api::on(dir.path(), DEV);
        for _ in 0..6 {
            let (id, _) = plan(&api, 1 + next(5) as u32).await;
            match next(4) {
                0 => {
                    reply(&api, &id).await;
                }
                1 => {
                    api.recall(&id, "svhtt-van-thu", json!({ "reason": "Sai sót" }))
                        .await;
                }
                2 => {
                    api.post("ubnd-cv-kt", &format!("/v1/inbox/{id}/read"), json!({}))
                        .await;
                }
                _ => {}
            }
            if next(3) == 0 {
                advance(&api, 1 + next(4) as i64).await;
            }
            plans.push(id);
        }
        if round == 0 {
            // Kill the server in the middle of a stream of commands.
            let burst: Vec<_> = (0..30)
                .map(|_| api.draft("svhtt-cv-qlvh", "BC", to_ubnd(2)))
                .collect();
            let kill = async {
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            };
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                futures_util::future::select(
                    Box::pin(futures_util::future::join_all(burst)),
                    Box::pin(kill),
                ),
            )
            .await;
            drop(api); // SIGKILL
        } else {
            // Replies to what is still open, so statistics have both kinds.
            for id in plans.iter().take(3) {
                let _ = api.complete(&id, "ubnd-cv-kt", json!({})).await;
            }
            api.caught_up().await;
            let stats = api
                .get("ubnd-van-thu", "/v1/deadlines/stats?agency=UBND")
                .await;
            let agency = stats.body["units"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["unit"] == "-")
                .cloned()
                .unwrap_or(json!({}));
            drop(api);
            let (on_time, late) = recount(dir.path()).get("UBND").copied().unwrap_or_default();
            assert_eq!(agency["on_time"].as_u64().unwrap_or(0), on_time, "{agency}");
            assert_eq!(agency["late"].as_u64().unwrap_or(0), late, "{agency}");
        }
    }
    // After a restart the projections caught up (checked above); now the
    // live tables must equal a rebuild from scratch, byte for byte.
    let dump = || {
        let log = crate::helpers::open_log(dir.path());
        let p = vanthu::projections::Projections::open(&log, vanthu::projections::all()).unwrap();
        p.names()
            .into_iter()
            .map(|n| (n, p.table(n).unwrap().dump().unwrap()))
            .collect::<Vec<_>>()
    };
    let live = dump();
    // (No package arrives from another system in this story.)
    assert!(
        live.iter()
            .all(|(name, rows)| rows.len() > 1 || *name == "arrivals"),
        "every projection has rows"
    );
    let out = vanthu(&["rebuild", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("events/s"), "{stdout}");
    let rebuilt = dump();
    // And folded in batches of 7 records with no memory to spare: every
    // batch's rows are written out and read back by the next.
    {
        let log = crate::helpers::open_log(dir.path());
        let p = vanthu::projections::Projections::open(&log, vanthu::projections::all()).unwrap();
        for name in p.names() {
            p.clear(name).unwrap();
        }
        p.fold(0, 7, &|_| {}).unwrap();
    }
    let spilled = dump();
    for (((name, a), (_, b)), (_, c)) in live.iter().zip(&rebuilt).zip(&spilled) {
        assert!(
            a == b,
            "{name}: live ({} rows) differs from a rebuild ({} rows)",
            a.len(),
            b.len()
        );
        assert!(
            a == c,
            "{name}: live ({} rows) differs from a rebuild in small batches ({} rows)",
            a.len(),
            c.len()
        );
    }
    let _ = keys_dir();
}

#[tokio::test]
async fn a_crashing_feed_consumer_sees_every_issued_document_exactly_once() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let token = |scope: &[&str]| {
        let pem = std::fs::read(keys_dir().join("jwt/jwt.key")).unwrap();
        let scopes: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        vanthu::http::auth::mint_client(&pem, "cong-thong-tin", &scopes, chrono::Duration::hours(1))
            .unwrap()
    };
    let feed = |after: u64, limit: u64, wait: u64| {
        api.send(
            api.http
                .get(format!(
                    "{}/v1/feed/issued?after={after}&limit={limit}&wait={wait}",
                    api.server.url
                ))
                .bearer_auth(token(&["feed:read"])),
        )
    };
    // Without the scope: 403.
    let r = api
        .send(
            api.http
                .get(format!("{}/v1/feed/issued", api.server.url))
                .bearer_auth(token(&[])),
        )
        .await;
    assert_eq!(r.status, 403);
    // A long poll returns as soon as something is issued.
    let first = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", to_ubnd(5))
        .await;
    let started = std::time::Instant::now();
    let (polled, _) = futures_util::future::join(feed(0, 10, 20), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        api.issue(&first, "svhtt-van-thu").await
    })
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        polled.body["entries"][0]["document"]["doc"],
        first.as_str(),
        "{}",
        polled.body
    );

    // 1,000 documents issued (numbered in one register), a recall among them.
    let n = 1000;
    let mut issued = vec![first.clone()];
    for i in 1..n {
        let id = api
            .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", to_ubnd(5))
            .await;
        assert_eq!(api.issue(&id, "svhtt-van-thu").await.status, 200);
        if i == 500 {
            let r = api
                .recall(&id, "svhtt-van-thu", json!({ "reason": "Thu hồi" }))
                .await;
            assert_eq!(r.status, 200);
        }
        issued.push(id);
    }
    // The consumer commits (processed entries + cursor) only after handling a
    // page, and crashes before committing every few pages: it resumes from
    // the last committed cursor.
    let mut committed_cursor = 0;
    let mut seen: Vec<String> = Vec::new();
    let mut recalls = 0;
    let mut page = 0u64;
    loop {
        page += 1;
        let r = feed(committed_cursor, 1 + page % 97, 0).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let entries = r.body["entries"].as_array().unwrap().clone();
        if entries.is_empty() {
            break;
        }
        if page.is_multiple_of(5) {
            continue; // crashed before committing: the page comes again
        }
        for e in &entries {
            match e["kind"].as_str().unwrap() {
                "issued" => seen.push(e["document"]["doc"].as_str().unwrap().to_owned()),
                "recalled" => recalls += 1,
                other => panic!("{other}"),
            }
        }
        committed_cursor = r.body["next_cursor"].as_u64().unwrap();
    }
    assert_eq!(seen.len(), n, "no gap, no duplicate");
    assert_eq!(seen, issued, "in issue order");
    assert_eq!(recalls, 1);
}

#[tokio::test]
async fn review_findings_on_views_stay_fixed() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    // An opinion asked of the signer and never given closes when they sign;
    // paging one by one through both closed items misses neither.
    let doc = api.draft("svhtt-cv-qlvh", "BC", to_ubnd(5)).await;
    let r = api
        .opinion(
            &doc,
            "svhtt-cv-qlvh",
            json!({ "from": ["svhtt-pgd-1"], "question": "Ý kiến?" }),
        )
        .await;
    assert_eq!(r.status, 200);
    api.route_for_signing(&doc, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    let r = api.sign(&doc, "svhtt-pgd-1", "KT.").await;
    assert_eq!(r.status, 200);
    assert!(
        inbox(&api, "svhtt-pgd-1", position(&r)).await.is_empty(),
        "nothing left pending"
    );
    let mut cursor = String::new();
    let mut seen = Vec::new();
    loop {
        let r = api
            .get(
                "svhtt-pgd-1",
                &format!("/v1/inbox?state=done&limit=1&cursor={}", urlencode(&cursor)),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(format!(
                "{}:{}",
                item["box"].as_str().unwrap(),
                item["doc"].as_str().unwrap()
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, [format!("review:{doc}"), format!("sign:{doc}")]);

    // A re-assignment keeps the original handling deadline and its extensions.
    let (id, at) = plan(&api, 5).await;
    let row = |body: &Value, unit: &str| {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["doc"] == id.as_str() && r["unit"] == unit)
            .cloned()
    };
    let r = api
        .get(
            "ubnd-van-thu",
            &format!("/v1/deadlines?agency=UBND&unit=KT&min_position={at}"),
        )
        .await;
    let first = row(&r.body, "KT").unwrap();
    let later = chrono::NaiveDate::parse_from_str(first["deadline"].as_str().unwrap(), "%Y-%m-%d")
        .unwrap()
        + chrono::Duration::days(7);
    let r = api
        .extend(
            &id,
            "ubnd-pct-1",
            json!({ "agency": "UBND", "scope": "handling", "new": later, "reason": "Chờ số liệu" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .assign(
            &id,
            "ubnd-pct-1",
            json!({ "lead": "VP", "instruction": "Chuyển VP chủ trì" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .get(
            "ubnd-van-thu",
            &format!(
                "/v1/deadlines?agency=UBND&unit=VP&min_position={}",
                position(&r)
            ),
        )
        .await;
    let moved = row(&r.body, "VP").unwrap();
    assert_eq!(moved["original"], first["original"]);
    assert_eq!(moved["deadline"], json!(later));
    assert_eq!(moved["extensions"], 1);

    // A confidential document's deadlines: leaders and clerks only.
    let sha = api.blob("svhtt-cv-qlvh", b"mat").await;
    let r = api
        .post(
            "svhtt-cv-qlvh",
            "/v1/documents",
            json!({
            "doc_type": "CV", "title": "Công văn mật", "confidentiality": "mat",
            "content": [{ "name": "a.txt", "sha256": sha }], "recipients": to_ubnd(5) }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["id"].as_str().unwrap().to_owned();
    api.route_for_signing(&secret, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    assert_eq!(api.sign(&secret, "svhtt-pgd-1", "KT.").await.status, 200);
    let r = api.issue(&secret, "svhtt-van-thu").await;
    assert_eq!(r.status, 200);
    let at = position(&r);
    let visible = |body: &Value| {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["doc"] == secret.as_str())
    };
    for (who, sees) in [
        ("ubnd-van-thu", true),
        ("ubnd-pct-1", true),
        ("ubnd-cv-kt", false),
        ("quan-tri", false),
    ] {
        let r = api
            .get(who, &format!("/v1/deadlines?agency=UBND&min_position={at}"))
            .await;
        assert_eq!(visible(&r.body), sees, "{who}");
    }
    // Its register entry is in the secret series, which admins cannot read.
    assert_eq!(
        api.get(
            "quan-tri",
            "/v1/registers/SVHTT/2026/outgoing?series=secret"
        )
        .await
        .status,
        403
    );
    let year = chrono::Datelike::year(&vanthu::domain::calendar::Calendar::local_date(
        chrono::Utc::now(),
    ));
    let r = api
        .get(
            "svhtt-van-thu",
            &format!("/v1/registers/SVHTT/{year}/outgoing?series=secret"),
        )
        .await;
    assert_eq!(r.body["entries"][0]["doc"], secret.as_str(), "{}", r.body);
    // A hostile agency name cannot break the CSV's headers.
    let r = api
        .get(
            "ubnd-van-thu",
            "/v1/deadlines/overdue.csv?agency=X%0D%0AInjected:%20yes",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.get("injected").is_none());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A view row that does not decode is never answered around: the query is
/// 503 `view-unreadable` and `/readyz` names the view until it is rebuilt.
#[tokio::test]
async fn an_unreadable_view_row_is_reported_not_skipped() {
    let _limit = crate::helpers::time_limit();
    use crate::helpers::Api;
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let api = Api::on(dir.path(), &[]);
        let id = api
            .signed(
                "svhtt-cv-qlvh",
                "svhtt-pgd-1",
                "KT.",
                "BC",
                serde_json::json!([{ "agency": "UBND" }]),
            )
            .await;
        api.caught_up().await;
        let r = api
            .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}/verification"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        id
    };
    {
        let db = vanthu::store::rocks::open(dir.path(), &Default::default()).unwrap();
        let cf = db.cf_handle("p.signatures").unwrap();
        let key = vanthu::projections::signatures::key(id.parse().unwrap());
        db.put_cf(&cf, key.as_bytes(), b"{not json").unwrap();
    }
    let api = Api::on(dir.path(), &[]);
    let r = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}/verification"))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "urn:vanthu:problem:view-unreadable");
    let ready = api
        .send(api.http.get(format!("{}/readyz", api.server.url)))
        .await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready
            .body
            .to_string()
            .contains("vanthu rebuild --projection signatures"),
        "{}",
        ready.body
    );
}
