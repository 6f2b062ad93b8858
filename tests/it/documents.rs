//! The document lifecycle over HTTP: the demo story end to end, gap-free
//! numbers under concurrency, the authorisation matrix, bad input, and the
//! idempotency and If-Match contracts.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{keys_dir, Api, Resp};

fn svhtt_to_ubnd() -> Value {
    json!([{ "agency": "UBND", "reply_within_working_days": 5 }])
}

#[tokio::test]
async fn the_demo_story_three_years_ahead() {
    let _limit = crate::helpers::time_limit();
    // What the suite meets on a date three years from now: development keys
    // generated that day (as `make demo` does), the service clock there.
    let ahead = chrono::Duration::days(3 * 365 + 1);
    let keys = crate::helpers::keys_anchored_at(chrono::Utc::now() + ahead);
    let api = Api::start(&[
        ("VANTHU_DEV_CLOCK", "true"),
        ("VANTHU_KEYS_DIR", keys.to_str().unwrap()),
    ]);
    let mut left = ahead.num_days();
    while left > 0 {
        let days = left.min(400);
        let r = api
            .post("quan-tri", "/v1/dev/clock", json!({ "days": days }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        left -= days;
    }
    let (outcome, _) = api.demo_story(&keys).await;
    assert_eq!(outcome.report_reference, "01/BC-SVHTT");
    let v = api
        .get(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{}/verification", outcome.report),
        )
        .await;
    assert_eq!(v.body["report"]["indication"], "TOTAL_PASSED", "{}", v.body);
}

#[tokio::test]
async fn the_demo_story_end_to_end() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[("VANTHU_DEV_CLOCK", "true")]);
    let (outcome, transcript) = api.demo_story(&keys_dir()).await;
    assert!(
        transcript.contains("SNV replies with 01/BC-SNV: ON TIME"),
        "{transcript}"
    );
    assert!(
        transcript.contains("STTTT replies with 01/BC-STTTT: LATE"),
        "{transcript}"
    );
    // Every step got exactly the status it expected (the demo stops otherwise);
    // the last fetched the report's bundle and verified it with the log key.
    assert_eq!(outcome.steps.len(), 39);
    assert!(
        transcript.contains("2 log records proven in checkpoint"),
        "{transcript}"
    );
    assert!(outcome.steps.iter().all(|s| (200..300).contains(&s.status)));

    // The report: KT. Giám đốc, numbered 01/BC-SVHTT, verified, sealed.
    assert_eq!(outcome.report_reference, "01/BC-SVHTT");
    let report = api
        .get(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{}", outcome.report),
        )
        .await;
    assert_eq!(report.status, 200);
    assert_eq!(report.body["status"], "issued");
    assert_eq!(report.body["issue"]["number_line"], "Số: 01/BC-SVHTT");
    assert_eq!(report.body["signature"]["authority"]["form"], "KT.");
    assert_eq!(
        report.body["signature"]["authority"]["on_behalf_of"],
        "svhtt-giam-doc"
    );
    let v = api
        .get(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{}/verification", outcome.report),
        )
        .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["report"]["indication"], "TOTAL_PASSED");

    // The plan: 01/KH-UBND, received by three departments with incoming
    // numbers, assigned, two replies on time and one late, linked both ways.
    assert_eq!(outcome.plan_reference, "01/KH-UBND");
    let plan = api
        .get("ubnd-van-thu", &format!("/v1/documents/{}", outcome.plan))
        .await;
    assert_eq!(plan.status, 200);
    let receipts = plan.body["receipts"].as_object().unwrap();
    assert_eq!(receipts.len(), 3);
    for (agency, on_time) in [("SNV", true), ("SVHTT", true), ("STTTT", false)] {
        let r = &receipts[agency];
        assert_eq!(r["incoming_number"], 1, "{agency}");
        assert!(r["assignment"]["lead"].is_string(), "{agency}");
        assert_eq!(r["replies"][0]["on_time"], on_time, "{agency}");
        assert_eq!(r["done"], true, "{agency}");
        let reply_id = &outcome.replies.iter().find(|(a, _)| a == agency).unwrap().1;
        let reply = api
            .get("ubnd-van-thu", &format!("/v1/documents/{reply_id}"))
            .await;
        assert_eq!(
            reply.body["in_reply_to"], outcome.plan,
            "{agency}: linked both ways"
        );
    }
    // The audit trail lists every event in order.
    let trail = api
        .get(
            "ubnd-van-thu",
            &format!("/v1/documents/{}/events", outcome.plan),
        )
        .await;
    let types: Vec<&str> = trail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..4],
        [
            "document.drafted.v1",
            "document.routed.v1",
            "document.signed.v1",
            "document.issued.v1"
        ]
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "document.replied.v1")
            .count(),
        3
    );

    // Every event type in the log has its payload schema in schemas/events.
    let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/events");
    for t in &types {
        assert!(
            schemas.join(format!("{t}.json")).exists(),
            "no schema for {t}"
        );
    }

    // The bundle verifies offline against the root alone.
    let bundle = api
        .get(
            "ubnd-van-thu",
            &format!("/v1/documents/{}/bundle", outcome.plan),
        )
        .await;
    assert_eq!(bundle.status, 200);
    crate::helpers::verifies_offline(bundle.body.to_string().as_bytes(), &keys_dir());
}

#[tokio::test]
async fn fifty_concurrent_issues_and_receipts_number_without_gaps() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            api.signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", svhtt_to_ubnd())
                .await,
        );
    }
    let issued =
        futures_util::future::join_all(ids.iter().map(|id| api.issue(id, "svhtt-van-thu"))).await;
    let mut numbers = BTreeSet::new();
    for r in &issued {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            numbers.insert(r.body["issue"]["number"].as_u64().unwrap()),
            "duplicate number"
        );
        let n = r.body["issue"]["number"].as_u64().unwrap();
        assert_eq!(r.body["issue"]["reference"], format!("{n:02}/BC-SVHTT"));
    }
    assert_eq!(
        numbers,
        (1..=50).collect::<BTreeSet<u64>>(),
        "1..50, no gap, no duplicate"
    );

    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/v1/documents/{id}/receipts"))
        .collect();
    let received = futures_util::future::join_all(
        paths.iter().map(|p| api.post("ubnd-van-thu", p, json!({}))),
    )
    .await;
    let mut incoming = BTreeSet::new();
    for r in &received {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(incoming.insert(
            r.body["receipts"]["UBND"]["incoming_number"]
                .as_u64()
                .unwrap()
        ));
    }
    assert_eq!(incoming, (1..=50).collect::<BTreeSet<u64>>());
    // A second receipt by the same agency is refused and takes no number.
    let again = api
        .post(
            "ubnd-van-thu",
            &format!("/v1/documents/{}/receipts", ids[0]),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(
        again.body["type"],
        "urn:vanthu:problem:wrong-state:received"
    );
}

/// Roles of the authorisation matrix (SVHTT issues to UBND).
const ROLES: [&str; 10] = [
    "svhtt-cv-qlvh",  // author, drafting unit QLVH
    "svhtt-cv-vp",    // same agency, other unit (asked for an opinion)
    "svhtt-pgd-1",    // deputy director, the routed signer
    "svhtt-giam-doc", // director
    "svhtt-van-thu",  // SVHTT clerk
    "snv-cv-vp",      // another agency, not a recipient
    "ubnd-van-thu",   // recipient clerk
    "ubnd-pct-1",     // recipient leader
    "ubnd-cv-kt",     // recipient specialist in unit KT
    "quan-tri",       // admin (a UBND specialist)
];

#[derive(Clone, Copy, Debug)]
enum Stage {
    Draft,
    AwaitingSignature,
    Signed,
    Issued,
    Received,
    Assigned,
}

async fn prepare(api: &Api, stage: Stage) -> String {
    let id = api.draft("svhtt-cv-qlvh", "BC", svhtt_to_ubnd()).await;
    if matches!(stage, Stage::Draft) {
        return id;
    }
    api.route_for_signing(&id, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    if matches!(stage, Stage::AwaitingSignature) {
        return id;
    }
    assert_eq!(api.sign(&id, "svhtt-pgd-1", "KT.").await.status, 200);
    if matches!(stage, Stage::Signed) {
        return id;
    }
    assert_eq!(api.issue(&id, "svhtt-van-thu").await.status, 200);
    if matches!(stage, Stage::Issued) {
        return id;
    }
    let r = api.receive(&id, "ubnd-van-thu", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    if matches!(stage, Stage::Received) {
        return id;
    }
    let r = api
        .assign(
            &id,
            "ubnd-pct-1",
            json!({ "agency": "UBND", "lead": "KT", "instruction": "Phòng KT chủ trì" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

#[tokio::test]
async fn authorisation_matrix_every_role_by_every_command() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    // (command, stage, allowed roles)
    let matrix: &[(&str, Stage, &[&str])] = &[
        ("revise", Stage::Draft, &["svhtt-cv-qlvh"]),
        ("route", Stage::Draft, &["svhtt-cv-qlvh"]),
        ("request-opinion", Stage::Draft, &["svhtt-cv-qlvh"]),
        ("give-opinion", Stage::Draft, &["svhtt-cv-vp"]),
        ("return", Stage::AwaitingSignature, &["svhtt-pgd-1"]),
        ("sign", Stage::AwaitingSignature, &["svhtt-pgd-1"]),
        ("issue", Stage::Signed, &["svhtt-van-thu"]),
        (
            "recall",
            Stage::Issued,
            &["svhtt-pgd-1", "svhtt-giam-doc", "svhtt-van-thu"],
        ),
        (
            "extend",
            Stage::Issued,
            &["svhtt-pgd-1", "svhtt-giam-doc", "svhtt-van-thu"],
        ),
        ("receive", Stage::Issued, &["ubnd-van-thu"]),
        ("assign", Stage::Received, &["ubnd-pct-1"]),
        ("reply", Stage::Assigned, &["ubnd-cv-kt"]),
        ("complete", Stage::Assigned, &["ubnd-cv-kt", "ubnd-pct-1"]),
    ];
    let mut failures = Vec::new();
    for (command, stage, allowed) in matrix {
        for role in ROLES {
            let id = prepare(&api, *stage).await;
            // Each role cites a file of its own (only the uploader may cite one).
            let sha = api.blob(role, b"revised").await;
            if *command == "give-opinion" {
                let r = api
                    .opinion(
                        &id,
                        "svhtt-cv-qlvh",
                        json!({ "from": ["svhtt-cv-vp"], "question": "Ý kiến về số liệu?" }),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
            let (path, body) = match *command {
                "revise" => (
                    "revisions",
                    json!({ "doc_type": "BC", "title": "Báo cáo (sửa)",
                    "content": [{ "name": "v2.txt", "sha256": sha }], "recipients": svhtt_to_ubnd() }),
                ),
                "route" => (
                    "routes",
                    json!({ "to": "svhtt-giam-doc", "purpose": "review" }),
                ),
                "request-opinion" => (
                    "opinions",
                    json!({ "from": ["svhtt-giam-doc"], "question": "Xin ý kiến" }),
                ),
                "give-opinion" => ("opinions", json!({ "opinion": "agree" })),
                "return" => ("returns", json!({ "reason": "Bổ sung số liệu" })),
                "sign" => {
                    // Each role signs the payload the signer would get, with its own key.
                    let p = api
                        .get(
                            "svhtt-pgd-1",
                            &format!("/v1/documents/{id}/signing-payload?authority=KT."),
                        )
                        .await;
                    let mut payload = p.body["payload"].clone();
                    payload["signer"] = json!(role);
                    let jws = vanthu_dev::demo::sign_as(&keys_dir(), role, &payload).unwrap();
                    ("signatures", json!({ "jws": jws }))
                }
                "issue" => ("issue", json!({})),
                "recall" => ("recall", json!({ "reason": "Sai sót nội dung" })),
                "extend" => (
                    "deadline-extensions",
                    json!({ "agency": "UBND", "scope": "reply",
                    "new": (chrono::Utc::now() + chrono::Duration::days(400)).date_naive(),
                    "reason": "Đề nghị của UBND" }),
                ),
                "receive" => ("receipts", json!({ "agency": "UBND" })),
                "assign" => (
                    "assignments",
                    json!({ "agency": "UBND", "lead": "KT", "instruction": "Chủ trì" }),
                ),
                "reply" => {
                    let reply = api.issued_ubnd_reply().await;
                    ("replies", json!({ "agency": "UBND", "reply": reply }))
                }
                "complete" => ("completions", json!({ "agency": "UBND" })),
                other => unreachable!("{other}"),
            };
            let before = api.head().await;
            let r = api
                .post(role, &format!("/v1/documents/{id}/{path}"), body)
                .await;
            let want_ok = allowed.contains(&role);
            let ok = if want_ok {
                (200..300).contains(&r.status)
            } else {
                r.status == 403
            };
            if !ok {
                failures.push(format!("{command} by {role}: {} {}", r.status, r.body));
            }
            if !want_ok {
                assert_eq!(r.headers["content-type"], "application/problem+json");
                assert_eq!(
                    api.head().await,
                    before,
                    "{command} by {role} wrote nothing"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_input_is_a_problem_and_writes_nothing() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let author = "svhtt-cv-qlvh";
    let draft = api.draft(author, "BC", svhtt_to_ubnd()).await;
    let sha = api.blob(author, b"content").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let good = json!({ "doc_type": "BC", "title": "Báo cáo", "content": [{ "name": "a.txt", "sha256": sha }] });
    let post = |path: &str| api.request(author, reqwest::Method::POST, path);
    let big = "x".repeat(2 << 20);
    let issued = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", svhtt_to_ubnd())
        .await;
    assert_eq!(api.issue(&issued, "svhtt-van-thu").await.status, 200);
    let receipt = |agency: String| {
        api.request(
            "ubnd-van-thu",
            reqwest::Method::POST,
            &format!("/v1/documents/{issued}/receipts"),
        )
        .json(&json!({ "agency": agency }))
    };
    let json_body = |who: &str, path: &str, body: String| {
        api.request(who, reqwest::Method::POST, path)
            .header("Content-Type", "application/json")
            .body(body)
    };
    let get = |path: &str| api.request(author, reqwest::Method::GET, path);
    let mut cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        ("receipt for agency \"a b\"", receipt("a b".into()), 422),
        ("receipt for agency \"ú\"", receipt("ú".into()), 422),
        ("receipt for agency \"A/B\"", receipt("A/B".into()), 422),
        (
            "receipt for a 300-character agency",
            receipt("A".repeat(300)),
            422,
        ),
        ("receipt for a non-recipient", receipt("SNV".into()), 422),
        (
            "If-Match on a create",
            post("/v1/documents")
                .header("If-Match", "\"1\"")
                .json(&good),
            412,
        ),
        (
            "If-Match * on a create",
            post("/v1/documents").header("If-Match", "*").json(&good),
            412,
        ),
        (
            "oversize org event",
            json_body("quan-tri", "/v1/org/events", big.clone()),
            413,
        ),
        (
            "org event as text",
            api.request("quan-tri", reqwest::Method::POST, "/v1/org/events")
                .header("Content-Type", "text/plain")
                .body("{}"),
            415,
        ),
        (
            "malformed org event",
            json_body("quan-tri", "/v1/org/events", "{\"type\":".into()),
            400,
        ),
        (
            "malformed read mark",
            json_body(author, &format!("/v1/inbox/{draft}/read"), "{".into()),
            400,
        ),
        (
            "read mark with fields",
            json_body(
                author,
                &format!("/v1/inbox/{draft}/read"),
                "{\"read\": false}".into(),
            ),
            400,
        ),
        (
            "min_position beyond the head",
            get("/v1/inbox?min_position=4000000000"),
            400,
        ),
        (
            "Vanthu-Min-Position beyond the head",
            get("/v1/inbox").header("Vanthu-Min-Position", "4000000000"),
            400,
        ),
    ];
    cases.extend(vec![
        ("malformed JSON", post("/v1/documents").header("Content-Type", "application/json").body("{\"doc_type\":"), 400),
        ("wrong types", post("/v1/documents").json(&json!({ "doc_type": 7, "title": [], "content": "x" })), 400),
        ("missing fields", post("/v1/documents").json(&json!({ "doc_type": "BC" })), 400),
        ("unknown field", post("/v1/documents").json(&json!({ "doc_type": "BC", "title": "t", "content": [], "colour": 1 })), 400),
        ("unknown document type", post("/v1/documents").json(&json!({ "doc_type": "XYZ", "title": "t", "content": [{ "name": "a", "sha256": sha }] })), 422),
        ("unknown blob", post("/v1/documents").json(&json!({ "doc_type": "BC", "title": "t", "content": [{ "name": "a", "sha256": "0".repeat(64) }] })), 422),
        ("unknown recipient", post("/v1/documents").json(&json!({ "doc_type": "BC", "title": "t", "content": [{ "name": "a", "sha256": sha }], "recipients": [{ "agency": "NOPE" }] })), 422),
        ("empty title", post("/v1/documents").json(&json!({ "doc_type": "BC", "title": " ", "content": [{ "name": "a", "sha256": sha }] })), 422),
        ("oversize body", post("/v1/documents").header("Content-Type", "application/json").body(big), 413),
        ("wrong content type", post("/v1/documents").header("Content-Type", "text/plain").body(good.to_string()), 415),
        ("unknown id", post(&format!("/v1/documents/{unknown}/routes")).json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" })), 404),
        ("not a uuid", post("/v1/documents/nope/routes").json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" })), 404),
        ("bad purpose", post(&format!("/v1/documents/{draft}/routes")).json(&json!({ "to": "svhtt-pgd-1", "purpose": "lunch" })), 400),
        ("stale If-Match", post(&format!("/v1/documents/{draft}/routes")).header("If-Match", "\"7\"").json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" })), 412),
        ("garbage If-Match", post(&format!("/v1/documents/{draft}/routes")).header("If-Match", "yesterday").json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" })), 412),
        ("wrong state", post(&format!("/v1/documents/{draft}/issue")).json(&json!({})), 403),
        ("sign a draft", api.request("svhtt-pgd-1", reqwest::Method::POST, &format!("/v1/documents/{draft}/signatures")).json(&json!({ "jws": "a.b.c" })), 409),
        ("no token", crate::helpers::http().post(format!("{}/v1/documents", api.server.url)).json(&good), 401),
        ("bad Idempotency-Key", post("/v1/documents").header("Idempotency-Key", "").json(&good), 400),
    ]);
    let mut bodies = serde_json::Map::new();
    let head = format!("head {}", api.head().await);
    for (name, req, want) in cases {
        let before = api.head().await;
        let r = api.send(req).await;
        assert_eq!(r.status, want, "{name}: {}", r.body);
        let known = [
            (draft.as_str(), "[draft]"),
            (sha.as_str(), "[sha256]"),
            (unknown.as_str(), "[unknown]"),
            (head.as_str(), "head [head]"),
        ];
        bodies.insert(name.to_owned(), crate::helpers::scrubbed(&r.body, &known));
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{name}"
        );
        assert!(
            r.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:vanthu:problem:"),
            "{name}"
        );
        assert_eq!(api.head().await, before, "{name}: the log is unchanged");
    }
    // What a client reads for each refusal, whole: a change shows in review.
    insta::assert_json_snapshot!("refusals", bodies);
    let r = api
        .send(
            api.request(
                "svhtt-pgd-1",
                reqwest::Method::POST,
                &format!("/v1/documents/{draft}/signatures"),
            )
            .json(&json!({ "jws": "a.b.c" })),
        )
        .await;
    assert_eq!(r.body["type"], "urn:vanthu:problem:wrong-state:draft");

    // A replayed Idempotency-Key with a different body: 422, nothing written.
    let key = [("Idempotency-Key", "draft-once")];
    let first = api
        .send(post("/v1/documents").header(key[0].0, key[0].1).json(&good))
        .await;
    assert_eq!(first.status, 201);
    let before = api.head().await;
    let mut other = good.clone();
    other["title"] = json!("Báo cáo khác");
    let r = api
        .send(
            post("/v1/documents")
                .header(key[0].0, key[0].1)
                .json(&other),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["type"], "urn:vanthu:problem:idempotency-key-reused");
    assert_eq!(api.head().await, before);
    // The same body again: the first response, nothing written.
    let again = api
        .send(post("/v1/documents").header(key[0].0, key[0].1).json(&good))
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(
        again.headers["vanthu-position"],
        first.headers["vanthu-position"]
    );
    assert_eq!(api.head().await, before);
}

#[tokio::test]
async fn if_match_etag_and_idempotent_commands() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let id = api.draft("svhtt-cv-qlvh", "BC", svhtt_to_ubnd()).await;
    let get = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}"))
        .await;
    assert_eq!(get.headers["etag"], "\"1\"");
    assert_eq!(get.body["version"], 1);
    let route = |key: &'static str, etag: &'static str| {
        api.request(
            "svhtt-cv-qlvh",
            reqwest::Method::POST,
            &format!("/v1/documents/{id}/routes"),
        )
        .header("If-Match", etag)
        .header("Idempotency-Key", key)
        .json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" }))
    };
    let r = api.send(route("route-1", "\"1\"")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"2\"");
    let position: u64 = r.headers["vanthu-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(position, api.head().await);
    // The retry (same key, same body, now-stale If-Match) is answered from the log.
    let again = api.send(route("route-1", "\"1\"")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, r.body);
    assert_eq!(api.head().await, position);
    // A new request with the stale version is refused.
    let stale = api.send(route("route-2", "\"1\"")).await;
    assert_eq!(stale.status, 412, "{}", stale.body);
}

#[tokio::test]
async fn signatures_are_checked_before_they_count() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[("VANTHU_DEV_CLOCK", "true")]);
    let id = api.draft("svhtt-cv-qlvh", "BC", svhtt_to_ubnd()).await;
    api.route_for_signing(&id, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    // A deputy cannot take the direct form, and the payload says so up front.
    let p = api
        .get(
            "svhtt-pgd-1",
            &format!("/v1/documents/{id}/signing-payload"),
        )
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    // Someone else's key over the signer's payload: refused with the report.
    let p = api
        .get(
            "svhtt-pgd-1",
            &format!("/v1/documents/{id}/signing-payload?authority=KT."),
        )
        .await;
    assert_eq!(p.status, 200);
    let before = api.head().await;
    let forged = vanthu_dev::demo::sign_as(&keys_dir(), "svhtt-pgd-2", &p.body["payload"]).unwrap();
    let r = api
        .submit_signature(&id, "svhtt-pgd-1", json!({ "jws": forged }))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["type"], "urn:vanthu:problem:signature-rejected");
    assert_eq!(
        r.body["report"]["sub_indication"],
        "SIG_CONSTRAINTS_FAILURE"
    );
    // A payload for an older version.
    let mut old = p.body["payload"].clone();
    old["version"] = json!(1);
    let jws = vanthu_dev::demo::sign_as(&keys_dir(), "svhtt-pgd-1", &old).unwrap();
    let r = api
        .submit_signature(&id, "svhtt-pgd-1", json!({ "jws": jws }))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // A payload older than 10 minutes is stale.
    let good = vanthu_dev::demo::sign_as(&keys_dir(), "svhtt-pgd-1", &p.body["payload"]).unwrap();
    let r = api
        .post("quan-tri", "/v1/dev/clock", json!({ "hours": 1 }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .submit_signature(&id, "svhtt-pgd-1", json!({ "jws": good }))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("stale"),
        "{}",
        r.body
    );
    assert_rejected(&r, "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", "freshness");
    let p = api
        .get(
            "svhtt-pgd-1",
            &format!("/v1/documents/{id}/signing-payload?authority=KT."),
        )
        .await;
    let signatures = format!("/v1/documents/{id}/signatures");
    // Not a JWS at all: refused with a report too.
    let r = api
        .post("svhtt-pgd-1", &signatures, json!({ "jws": "a.b.c" }))
        .await;
    assert_rejected(&r, "TOTAL_FAILED", "FORMAT_FAILURE", "format");
    // The deputy signing as if head (direct form): the payload is honest
    // bytes, the authority is what fails, and the report says so.
    let mut direct = p.body["payload"].clone();
    direct["authority"] = json!("");
    direct.as_object_mut().unwrap().remove("on_behalf_of");
    let jws = jws_with(json!({}), &direct, "officials/svhtt-pgd-1");
    let r = api
        .post("svhtt-pgd-1", &signatures, json!({ "jws": jws }))
        .await;
    assert_rejected(&r, "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", "authority");
    // A kid that names another key than the x5c leaf.
    let jws = jws_with(
        json!({ "kid": "svhtt-pgd-2" }),
        &p.body["payload"],
        "officials/svhtt-pgd-1",
    );
    let r = api
        .post("svhtt-pgd-1", &signatures, json!({ "jws": jws }))
        .await;
    assert_rejected(&r, "TOTAL_FAILED", "FORMAT_FAILURE", "format");
    // The agency's seal certificate bound to the deputy by an admin is still
    // no personal signature (as `vanthu verify` judges it offline).
    let manifest = vanthu::devkeys::Manifest::load(&keys_dir()).unwrap();
    let seal = &manifest.seals["SVHTT"];
    let service_now = api.get("quan-tri", "/v1/dev/clock").await.body["now"].clone();
    let r = api
        .post(
            "quan-tri",
            "/v1/org/events",
            json!({ "type": "certificate_bound", "official": "svhtt-pgd-1",
                    "fingerprint": seal.fingerprint, "serial": seal.serial, "issuer": seal.issuer,
                    "at": service_now }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let jws = jws_with(json!({}), &p.body["payload"], "seals/SVHTT");
    let r = api
        .post("svhtt-pgd-1", &signatures, json!({ "jws": jws }))
        .await;
    assert_rejected(
        &r,
        "INDETERMINATE",
        "SIG_CONSTRAINTS_FAILURE",
        "personal_certificate",
    );
    assert_eq!(
        api.head().await,
        before + 1,
        "refused signatures write nothing (the binding did)"
    );
    // A fresh one passes (with a kid naming its leaf), and the evidence is served.
    let leaf = pem_der(&keys_dir().join("officials/svhtt-pgd-1.pem"));
    let kid = vanthu::crypto::pki::fingerprint(&leaf);
    let jws = jws_with(
        json!({ "kid": kid }),
        &p.body["payload"],
        "officials/svhtt-pgd-1",
    );
    let r = api
        .post("svhtt-pgd-1", &signatures, json!({ "jws": jws }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Read at the signature's position: the view may not have applied it yet.
    let at = r.headers["vanthu-position"].to_str().unwrap().to_owned();
    let v = api
        .get(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{id}/verification?min_position={at}"),
        )
        .await;
    assert_eq!(v.body["report"]["indication"], "TOTAL_PASSED", "{}", v.body);
    assert_eq!(v.body["authority"]["passed"], true);
}

/// A refused signature: 422 `signature-rejected` with a report whose
/// indication names the failed check.
fn assert_rejected(r: &Resp, indication: &str, sub: &str, check: &str) {
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["type"], "urn:vanthu:problem:signature-rejected",
        "{}",
        r.body
    );
    assert_eq!(r.body["report"]["indication"], indication, "{}", r.body);
    assert_eq!(r.body["report"]["sub_indication"], sub, "{}", r.body);
    let failed: Vec<&Value> = r.body["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "failed")
        .collect();
    assert_eq!(failed[0]["name"], check, "{}", r.body);
}

/// The DER of the first certificate in a PEM file.
fn pem_der(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    vanthu::crypto::pki::pem_blocks(&text, "CERTIFICATE")
        .unwrap()
        .remove(0)
}

/// A compact JWS over `payload` by the key and certificate `keys_dir/{who}`
/// (chain: it, then the issuing CA), with extra protected-header members.
fn jws_with(extra: Value, payload: &Value, who: &str) -> String {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let keys = keys_dir();
    let pem = std::fs::read_to_string(keys.join(format!("{who}.key"))).unwrap();
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let x5c: Vec<String> = [format!("{who}.pem"), "ca/issuing.pem".into()]
        .iter()
        .map(|rel| STANDARD.encode(pem_der(&keys.join(rel))))
        .collect();
    let mut header = json!({ "alg": "EdDSA", "x5c": x5c });
    for (k, v) in extra.as_object().unwrap() {
        header[k] = v.clone();
    }
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let p = URL_SAFE_NO_PAD.encode(vanthu::crypto::jws::canonical_json(payload).unwrap());
    let sig = key.sign(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[tokio::test]
async fn recall_and_replacement_keep_numbers() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let a = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", svhtt_to_ubnd())
        .await;
    assert_eq!(
        api.issue(&a, "svhtt-van-thu").await.body["issue"]["number"],
        1
    );
    let r = api
        .recall(&a, "svhtt-van-thu", json!({ "reason": "Sai số liệu" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "recalled");
    // Recipients see it and can no longer register it.
    let seen = api.get("ubnd-van-thu", &format!("/v1/documents/{a}")).await;
    assert_eq!(seen.body["status"], "recalled");
    let r = api.receive(&a, "ubnd-van-thu", json!({})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["type"], "urn:vanthu:problem:wrong-state:recalled");
    // The next document takes 2: numbers are never reused.
    let b = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", svhtt_to_ubnd())
        .await;
    assert_eq!(
        api.issue(&b, "svhtt-van-thu").await.body["issue"]["number"],
        2
    );
    let c = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "BC", svhtt_to_ubnd())
        .await;
    assert_eq!(
        api.issue(&c, "svhtt-van-thu").await.body["issue"]["number"],
        3
    );
    let r = api
        .replace(
            &b,
            "svhtt-giam-doc",
            json!({ "replacement": c, "reason": "Thay thế do sai nội dung" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "replaced");
    assert_eq!(
        r.body["replaced_by"]["replacement_reference"],
        "03/BC-SVHTT"
    );
    // A công văn's symbol is agency–drafting unit.
    let cv = api
        .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "CV", svhtt_to_ubnd())
        .await;
    let r = api.issue(&cv, "svhtt-van-thu").await;
    assert_eq!(r.body["issue"]["reference"], "04/SVHTT-QLVH");
}

#[tokio::test]
async fn the_committed_contract_is_what_the_code_generates_and_serves() {
    let _limit = crate::helpers::time_limit();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let generated = vanthu::api::openapi::generated(&dir);
    for (path, text) in &generated {
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == *text,
            "{} differs from the code; run `cargo run -- schemas`",
            path.display()
        );
    }
    // No stale event schema is left behind.
    let names: BTreeSet<_> = generated.iter().map(|(p, _)| p.clone()).collect();
    for entry in std::fs::read_dir(dir.join("events")).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            names.contains(&path),
            "{} is not generated any more",
            path.display()
        );
    }
    let api = Api::start(&[]);
    let served = api
        .send(api.http.get(format!("{}/v1/openapi.json", api.server.url)))
        .await;
    assert_eq!(served.status, 200);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("openapi.json")).unwrap()).unwrap();
    assert_eq!(served.body, file);
    // Every documented operation is routed (without a token: 401, 200, or
    // 400 for required query parameters left out; never 404 or 405).
    for (path, item) in file["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", &uuid::Uuid::nil().to_string())
            .replace("{sha256}", &"0".repeat(64))
            .replace("{path}", "0/000.p/1");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = api
                .send(
                    api.http
                        .request(method.clone(), format!("{}{concrete}", api.server.url)),
                )
                .await;
            assert!(
                matches!(r.status, 200 | 400 | 401),
                "{method} {path}: {}",
                r.status
            );
        }
    }
}

#[tokio::test]
async fn recipients_see_only_what_is_theirs() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[("VANTHU_DEV_CLOCK", "true")]);
    let recipients = json!([{ "agency": "UBND" }, { "agency": "SNV" }]);
    let id = api.draft("svhtt-cv-qlvh", "KH", recipients).await;
    let r = api
        .opinion(
            &id,
            "svhtt-cv-qlvh",
            json!({ "from": ["svhtt-cv-vp"], "question": "Số liệu đúng chưa?" }),
        )
        .await;
    assert_eq!(r.status, 200);
    // Before issue: a recipient cannot see the draft, not even its state.
    let r = api
        .receive(&id, "ubnd-van-thu", json!({ "agency": "UBND" }))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.to_string().contains("draft"), "{}", r.body);
    assert_eq!(
        api.get("snv-van-thu", &format!("/v1/documents/{id}"))
            .await
            .status,
        404
    );
    api.route_for_signing(&id, "svhtt-cv-qlvh", "svhtt-pgd-1")
        .await;
    assert_eq!(api.sign(&id, "svhtt-pgd-1", "KT.").await.status, 200);
    let issued = api.issue(&id, "svhtt-van-thu").await;
    assert_eq!(issued.status, 200);
    for (agency, clerk) in [("UBND", "ubnd-van-thu"), ("SNV", "snv-van-thu")] {
        let r = api.receive(&id, clerk, json!({ "agency": agency })).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // SNV sees its own receipt, not UBND's, and not the drafting history.
    let seen = api.get("snv-van-thu", &format!("/v1/documents/{id}")).await;
    assert_eq!(seen.status, 200);
    let receipts = seen.body["receipts"].as_object().unwrap();
    assert_eq!(receipts.keys().collect::<Vec<_>>(), ["SNV"]);
    assert_eq!(seen.body["opinions"], json!([]));
    assert_eq!(
        api.get("snv-van-thu", &format!("/v1/documents/{id}/events"))
            .await
            .status,
        404
    );
    // The issuer sees everything.
    let own = api
        .get("svhtt-van-thu", &format!("/v1/documents/{id}"))
        .await;
    assert_eq!(own.body["receipts"].as_object().unwrap().len(), 2);
    assert_eq!(own.body["opinions"].as_array().unwrap().len(), 1);
    // Files: the uploader by hash, readers through the document, nobody else.
    let sha = seen.body["content"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.get("svhtt-cv-qlvh", &format!("/v1/blobs/{sha}"))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get("snv-van-thu", &format!("/v1/blobs/{sha}"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get("snv-van-thu", &format!("/v1/documents/{id}/content/{sha}"))
            .await
            .status,
        200
    );
    assert_eq!(
        api.get(
            "stttt-van-thu",
            &format!("/v1/documents/{id}/content/{sha}")
        )
        .await
        .status,
        404
    );
    // The development clock refuses absurd shifts instead of panicking.
    let r = api
        .post("quan-tri", "/v1/dev/clock", json!({ "days": i64::MAX }))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
}

#[tokio::test]
async fn one_reply_document_answers_one_document() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let mut plans = Vec::new();
    for _ in 0..2 {
        plans.push(api.assigned_plan(svhtt_to_ubnd()).await.0);
    }
    let reply = api.issued_ubnd_reply().await;
    let paths: Vec<String> = plans
        .iter()
        .map(|p| format!("/v1/documents/{p}/replies"))
        .collect();
    let results = futures_util::future::join_all(
        paths
            .iter()
            .map(|p| api.post("ubnd-cv-kt", p, json!({ "reply": reply }))),
    )
    .await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    statuses.sort();
    assert!(
        statuses == [200, 409] || statuses == [200, 422],
        "{statuses:?}"
    );
    let r = api
        .get("ubnd-cv-kt", &format!("/v1/documents/{reply}"))
        .await;
    let linked = r.body["in_reply_to"].as_str().unwrap();
    assert!(plans.iter().any(|p| p == linked));
}

#[tokio::test]
async fn a_retry_racing_its_first_attempt_gets_the_same_answer() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let id = api.draft("svhtt-cv-qlvh", "BC", svhtt_to_ubnd()).await;
    let send = || {
        api.send(
            api.request(
                "svhtt-cv-qlvh",
                reqwest::Method::POST,
                &format!("/v1/documents/{id}/routes"),
            )
            .header("Idempotency-Key", "route-race")
            .json(&json!({ "to": "svhtt-pgd-1", "purpose": "signing" })),
        )
    };
    // 32 at once: enough that one commits between another's checks.
    let results = futures_util::future::join_all((0..32).map(|_| send())).await;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, results[0].body);
        assert_eq!(
            r.headers["vanthu-position"],
            results[0].headers["vanthu-position"]
        );
    }
    let doc = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}"))
        .await;
    assert_eq!(doc.body["version"], 2, "routed exactly once");
}

/// Three recipient agencies act on one plan at the same moment: receipts,
/// assignments and completions race on the document's stream, yet none of
/// them depends on the others, so every one succeeds (no spurious 409).
#[tokio::test]
async fn three_agencies_acting_on_one_document_at_once() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let plan = api
        .signed(
            "ubnd-cv-kt",
            "ubnd-chu-tich",
            "TM.",
            "KH",
            json!([{ "agency": "SNV" }, { "agency": "SVHTT" }, { "agency": "STTTT" }]),
        )
        .await;
    assert_eq!(api.issue(&plan, "ubnd-van-thu").await.status, 200);
    let agencies = [
        ("SNV", "snv-van-thu", "snv-giam-doc", "TCBC"),
        ("SVHTT", "svhtt-van-thu", "svhtt-giam-doc", "QLVH"),
        ("STTTT", "stttt-van-thu", "stttt-giam-doc", "BCVT"),
    ];
    let api = &api;
    for round in 0..3 {
        let rs =
            futures_util::future::join_all(agencies.iter().map(|(agency, clerk, head, unit)| {
                let (who, path, body) = match round {
                    0 => (*clerk, "receipts", json!({ "agency": agency })),
                    1 => (
                        *head,
                        "assignments",
                        json!({ "agency": agency, "lead": unit, "instruction": "Chủ trì" }),
                    ),
                    _ => (*head, "completions", json!({ "agency": agency })),
                };
                let path = format!("/v1/documents/{plan}/{path}");
                async move { api.post(who, &path, body).await }
            }))
            .await;
        for (r, (agency, ..)) in rs.iter().zip(&agencies) {
            assert_eq!(r.status, 200, "round {round}, {agency}: {}", r.body);
        }
    }
    let doc = api
        .get("ubnd-van-thu", &format!("/v1/documents/{plan}"))
        .await;
    for (agency, ..) in agencies {
        assert_eq!(
            doc.body["receipts"][agency]["incoming_number"], 1,
            "{agency}"
        );
        assert_eq!(doc.body["receipts"][agency]["done"], true, "{agency}");
    }
}

/// Every read path × role × confidentiality: a confidential (mật) document
/// issued to UBND and assigned to its unit KT reaches, on UBND's side, only
/// its clerk, its leaders and the assigned unit; an ordinary one reaches every
/// UBND official. The drafting history never reaches recipients.
#[tokio::test]
async fn confidential_documents_reach_only_those_who_need_them() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let author = "svhtt-cv-qlvh";
    let mut docs = Vec::new();
    for confidentiality in ["normal", "mat"] {
        let sha = api.blob(author, confidentiality.as_bytes()).await;
        let r = api
            .post(
                author,
                "/v1/documents",
                json!({ "doc_type": "BC", "title": "Báo cáo", "confidentiality": confidentiality,
                        "content": [{ "name": "a.txt", "sha256": sha }],
                        "recipients": [{ "agency": "UBND" }] }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        api.route_for_signing(&id, author, "svhtt-pgd-1").await;
        assert_eq!(api.sign(&id, "svhtt-pgd-1", "KT.").await.status, 200);
        api.issue_receive_assign(&id).await;
        docs.push((confidentiality, id, sha));
    }
    // who → (reads the ordinary one, reads the confidential one, sees the drafting history)
    let roles = [
        ("svhtt-cv-qlvh", true, true, true),  // drafter
        ("svhtt-cv-vp", true, false, true),   // issuer, another unit
        ("svhtt-giam-doc", true, true, true), // issuer's head
        ("ubnd-van-thu", true, true, false),  // recipient's clerk
        ("ubnd-chu-tich", true, true, false), // recipient's head
        ("ubnd-cv-kt", true, true, false),    // the assigned unit
        ("ubnd-cv-vp", true, false, false),   // recipient, unassigned unit
        ("quan-tri", true, false, true),      // admin (in UBND's office): ordinary history
        ("snv-cv-vp", false, false, false),   // another agency
    ];
    for (confidentiality, id, sha) in &docs {
        for (who, normal, secret, drafting) in roles {
            let reads = if *confidentiality == "mat" {
                secret
            } else {
                normal
            };
            for path in [
                format!("/v1/documents/{id}"),
                format!("/v1/documents/{id}/content/{sha}"),
                format!("/v1/documents/{id}/bundle"),
                format!("/v1/documents/{id}/verification"),
            ] {
                let r = api.get(who, &path).await;
                assert_eq!(
                    r.status == 200,
                    reads,
                    "{who} {confidentiality} {path}: {}",
                    r.status
                );
                if !reads {
                    assert_eq!(r.status, 404, "{who} {path}: nothing about it shows");
                }
            }
            let r = api.get(who, &format!("/v1/documents/{id}/events")).await;
            assert_eq!(
                r.status == 200,
                reads && drafting,
                "{who} {confidentiality} events"
            );
        }
    }
}

/// An office chief (Chánh Văn phòng) is no reader of another unit's
/// confidential documents: a mật draft of UBND's unit KT is 404 to the
/// chief of UBND's office (appointed in the office unit or outside any
/// unit) as to a specialist of that office, and a mật document's reply
/// rows show in `/v1/deadlines` only to leaders and clerks (docs/API.md).
#[tokio::test]
async fn an_office_chief_reads_no_confidential_document_of_another_unit() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);
    for (official, unit) in [("ubnd-cvp", Some("VP")), ("ubnd-cvp-2", None)] {
        let r = api
            .post(
                "quan-tri",
                "/v1/org/events",
                json!({"type": "official_appointed", "official": official,
                    "name": "Chánh Văn phòng", "agency": "UBND", "unit": unit,
                    "position": "office_chief", "from": from}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let sha = api.blob("ubnd-cv-kt", b"du thao mat").await;
    let r = api
        .post(
            "ubnd-cv-kt",
            "/v1/documents",
            json!({ "doc_type": "CV", "title": "Công văn mật", "confidentiality": "mat",
                    "content": [{ "name": "a.txt", "sha256": sha }],
                    "recipients": [{ "agency": "SVHTT" }] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let draft = r.body["id"].as_str().unwrap().to_owned();
    for (who, reads) in [
        ("ubnd-cvp", false),
        ("ubnd-cvp-2", false),
        ("ubnd-cv-vp", false),
        ("ubnd-cv-kt", true),
        ("ubnd-chu-tich", true),
        ("ubnd-van-thu", true),
    ] {
        let r = api.get(who, &format!("/v1/documents/{draft}")).await;
        assert_eq!(r.status, if reads { 200 } else { 404 }, "{who}: {}", r.body);
    }
    // Issued with a reply deadline: its rows, for UBND's follow-up and for
    // the answering SVHTT, show to leaders and clerks only.
    let (secret, at) = api
        .ubnd_issues(
            "Công văn mật",
            "mat",
            json!([{ "agency": "SVHTT", "reply_within_working_days": 5 }]),
        )
        .await;
    for (who, query, sees) in [
        ("ubnd-cvp", "issuer=UBND", false),
        ("ubnd-cvp-2", "issuer=UBND", false),
        ("ubnd-cvp", "agency=SVHTT", false),
        ("ubnd-cv-vp", "issuer=UBND", false),
        ("ubnd-van-thu", "issuer=UBND", true),
        ("ubnd-chu-tich", "issuer=UBND", true),
        ("svhtt-van-thu", "agency=SVHTT", true),
    ] {
        let r = api
            .get(who, &format!("/v1/deadlines?{query}&min_position={at}"))
            .await;
        assert_eq!(r.status, 200, "{who} {query}: {}", r.body);
        let shown = r.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["doc"] == secret.as_str());
        assert_eq!(shown, sees, "{who} {query}: {}", r.body);
    }
}

/// An evidence bundle discloses the organisation's authority only (D5): a
/// webhook subscribed before the issue, with a token in its URL, and the
/// integration clients are nowhere in the bundle a recipient's specialist
/// downloads, and the bundle still verifies offline.
#[tokio::test]
async fn a_bundle_discloses_no_webhook_and_no_client() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let url = "http://127.0.0.1:9/hooks?key=s3cret-archive-key";
    crate::webhooks::subscribe(&api, "archive", url, &["document.issued"]).await;
    let (id, _) = api
        .ubnd_issues("Công văn", "normal", json!([{ "agency": "SVHTT" }]))
        .await;
    let r = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}/bundle"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.body.to_string();
    for secret in [
        "s3cret-archive-key",
        "127.0.0.1:9",
        "webhook_subscribed",
        "client_registered",
        "cong-thong-tin",
        "admin_granted",
        "auditor_granted",
    ] {
        assert!(!text.contains(secret), "the bundle discloses {secret}");
    }
    assert!(text.contains("official_appointed"), "{text}");
    crate::helpers::verifies_offline(text.as_bytes(), &keys_dir());
}

/// docs/API.md's error table lists exactly the problem kinds the code has,
/// each with its status.
#[test]
fn the_error_table_lists_every_problem_kind() {
    let _limit = crate::helpers::time_limit();
    use vanthu::http::problem::Kind;
    let api = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/API.md"),
    )
    .unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for line in api.lines().map(str::trim) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | status | `kind`[, `kind`] | when |
        if cells.len() < 4 || !cells[2].starts_with('`') {
            continue;
        }
        let status = cells[1];
        if !(status.len() == 3 && status.chars().all(|c| c.is_ascii_digit() || c == 'x')) {
            continue;
        }
        for code in cells[2].split(',') {
            documented.push((status.to_owned(), code.trim().trim_matches('`').to_owned()));
        }
    }
    documented.sort();
    let mut code: Vec<(String, String)> = Kind::ALL
        .iter()
        .map(|k| (k.documented_status().to_owned(), k.code().to_owned()))
        .collect();
    code.sort();
    assert_eq!(documented, code);
}

/// The signer sends a draft back; only its author revises it, only while it
/// is a draft; then it goes round again and is signed. Every refusal writes
/// nothing and reads as the snapshot shows.
#[tokio::test]
async fn a_returned_draft_is_revised_and_routed_again() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let (author, signer) = ("svhtt-cv-qlvh", "svhtt-pgd-1");
    let id = api.draft(author, "BC", svhtt_to_ubnd()).await;
    api.route_for_signing(&id, author, signer).await;
    let sha = api.blob(author, b"the second version").await;
    let revision = json!({
        "doc_type": "BC",
        "title": "Báo cáo (sửa theo ý kiến lãnh đạo)",
        "content": [{ "name": "noi-dung-2.txt", "sha256": sha }],
        "recipients": svhtt_to_ubnd(),
        "note": "Sửa số liệu quý III",
    });

    let mut refusals = serde_json::Map::new();
    let mut refused = |name: &str, r: Resp, status: u16| {
        assert_eq!(r.status, status, "{name}: {}", r.body);
        let known = [(id.as_str(), "[id]")];
        refusals.insert(name.into(), crate::helpers::scrubbed(&r.body, &known));
    };
    let head = api.head().await;
    refused(
        "revise while awaiting the signature",
        api.revise(&id, author, revision.clone()).await,
        409,
    );
    refused(
        "return by someone it was not routed to",
        api.return_(&id, "svhtt-cv-vp", json!({ "reason": "Chưa đạt" }))
            .await,
        403,
    );
    refused(
        "return without a reason",
        api.return_(&id, signer, json!({ "reason": " " })).await,
        422,
    );
    refused(
        "return with an unknown field",
        api.return_(&id, signer, json!({ "reason": "x", "why": 1 }))
            .await,
        400,
    );
    assert_eq!(api.head().await, head, "refusals write nothing");

    let r = api
        .return_(&id, signer, json!({ "reason": "Bổ sung số liệu quý III" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "draft");
    let head = api.head().await;
    // Others cite the content the draft already cites (a file they did not
    // upload would be refused first, as for anyone).
    let mut same_content = revision.clone();
    same_content["content"] = r.body["content"].clone();
    refused(
        "revise by an official outside the drafting unit",
        api.revise(&id, "svhtt-van-thu", same_content.clone()).await,
        403,
    );
    refused(
        "revise by an official of another agency",
        api.revise(&id, "ubnd-cv-kt", same_content).await,
        403,
    );
    refused(
        "revise citing a file the official did not upload",
        api.revise(&id, "svhtt-van-thu", revision.clone()).await,
        422,
    );
    assert_eq!(api.head().await, head, "refusals write nothing");
    insta::assert_json_snapshot!("return_and_revise_refusals", refusals);

    let r = api.revise(&id, author, revision).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Báo cáo (sửa theo ý kiến lãnh đạo)");
    assert_eq!(r.body["content"][0]["sha256"], sha);
    api.route_for_signing(&id, author, signer).await;
    let r = api.sign(&id, signer, "KT.").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = api.get(author, &format!("/v1/documents/{id}/events")).await;
    let text = events.body.to_string();
    assert!(
        text.contains("document.returned.v1") && text.contains("document.revised.v1"),
        "{text}"
    );
}

/// A command starts from the document as last folded and reads only the
/// events after it (`service::load::current`): what every command answers
/// equals what a fold of the whole stream shows (GET), revision after
/// revision, and again after a restart empties the cache.
#[tokio::test]
async fn commands_on_a_long_stream_see_the_whole_stream() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let author = "svhtt-cv-qlvh";
    let mut api = Api::on(dir.path(), &[]);
    let id = api.draft(author, "BC", svhtt_to_ubnd()).await;
    let sha = api.blob(author, b"ban sua doi").await;
    for round in 0..2 {
        for i in 0..15 {
            let r = api
                .revise(
                    &id,
                    author,
                    json!({
                        "doc_type": "BC",
                        "title": format!("Báo cáo lần sửa {round}-{i}"),
                        "content": [{ "name": "noi-dung.txt", "sha256": sha }],
                        "recipients": svhtt_to_ubnd(),
                    }),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            let got = api.get(author, &format!("/v1/documents/{id}")).await;
            assert_eq!(r.body, got.body, "round {round}, revision {i}");
            assert_eq!(got.body["version"], json!(1 + round * 15 + i + 1));
        }
        drop(api);
        api = Api::on(dir.path(), &[]);
    }
}
