//! The organisation over HTTP: the demo organisation at first start,
//! authentication, the admin role, validation, idempotency, persistence.

use serde_json::{json, Value};

use crate::helpers::{token, TestServer};

/// One "now" per test run (a minute ago), so repeated bodies are identical.
fn now() -> &'static str {
    static NOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW.get_or_init(|| {
        (chrono::Utc::now() - chrono::Duration::minutes(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

fn appointment(official: &str) -> Value {
    json!({
        "type": "official_appointed",
        "official": official,
        "name": "Nguyễn Văn Mới",
        "agency": "SVHTT",
        "unit": "QLVH",
        "position": "specialist",
        "title": "Chuyên viên",
        "from": now()
    })
}

async fn get_org(server: &TestServer, token: &str) -> Value {
    let r = server
        .get("/v1/org")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn demo_org_auth_admin_and_validation() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let admin = token("quan-tri");
    let deputy = token("svhtt-pgd-1");

    // The demo organisation is there at first start.
    let r = server
        .get("/v1/org")
        .bearer_auth(&deputy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let org: Value = r.json().await.unwrap();
    assert_eq!(org["agencies"].as_array().unwrap().len(), 4);
    assert_eq!(org["appointments"].as_array().unwrap().len(), 25);
    assert_eq!(org["bindings"].as_array().unwrap().len(), 25);
    // Before the appointments took effect nobody held a position.
    let r = server
        .get("/v1/org?at=2025-12-31T00:00:00Z")
        .bearer_auth(&deputy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["appointments"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // 401 without a token, with garbage, with a token signed by another key.
    let foreign = {
        let pem = std::fs::read(crate::helpers::keys_dir().join("officials/quan-tri.key")).unwrap();
        vanthu::http::auth::mint_official(&pem, "quan-tri", chrono::Duration::hours(1)).unwrap()
    };
    for auth in [None, Some("garbage".to_owned()), Some(foreign)] {
        let mut req = server.post("/v1/org/events").json(&appointment("x"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            r.json::<Value>().await.unwrap()["type"],
            "urn:vanthu:problem:unauthorized"
        );
    }

    // 403 for an official without the admin role, with the rule in the detail.
    let r = server
        .post("/v1/org/events")
        .bearer_auth(&deputy)
        .json(&appointment("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("admin role"),
        "{body}"
    );

    // The admin appoints someone; a retry with the same key is replayed.
    let head = |s: &TestServer| {
        let url = format!("{}/readyz", s.url);
        async move {
            crate::helpers::http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["log"]["head"]
                .as_u64()
                .unwrap()
        }
    };
    let before = head(&server).await;
    let send = || {
        server
            .post("/v1/org/events")
            .bearer_auth(&admin)
            .header("Idempotency-Key", "appoint-moi-1")
            .json(&appointment("svhtt-cv-moi"))
    };
    let r = send().send().await.unwrap();
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["position"], before + 1);
    // On JetStream the key is claimed by one more record in the same append.
    let after = head(&server).await;
    assert!(after == before + 1 || (crate::cluster::jetstream_run() && after == before + 2));
    let r = send().send().await.unwrap();
    assert_eq!(r.status(), 201);
    let again: Value = r.json().await.unwrap();
    assert_eq!(
        (again["position"].clone(), again["replayed"].clone()),
        (first["position"].clone(), json!(true))
    );
    assert_eq!(head(&server).await, after, "the replay wrote nothing");
    let org = get_org(&server, &deputy).await;
    assert!(org["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["official"] == "svhtt-cv-moi"));

    // Rule violations are 422 with the rule; malformed bodies are 400; nothing written.
    let cases = [
        (
            json!({"type": "official_appointed", "official": "y", "name": "Y", "agency": "SXD", "position": "clerk", "from": now()}),
            422,
            "no agency SXD",
        ),
        (appointment("svhtt-cv-moi"), 422, "already holds"),
        (
            json!({"type": "agency_created", "code": "svhtt", "name": "x"}),
            422,
            "upper-case",
        ),
        (json!({"type": "no_such_event"}), 400, "unknown variant"),
        (json!({"type": "official_appointed"}), 400, "missing field"),
        (json!([1, 2]), 400, ""),
    ];
    for (body, status, words) in cases {
        let r = server
            .post("/v1/org/events")
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert!(
            p["detail"].as_str().unwrap_or_default().contains(words),
            "{body}: {p}"
        );
    }
    let r = server
        .post("/v1/org/events")
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Same key, different body: 422, nothing written.
    let r = server
        .post("/v1/org/events")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "appoint-moi-1")
        .json(&appointment("svhtt-cv-khac"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(head(&server).await, after);

    // After a restart the organisation is read back, and the demo is not loaded twice.
    drop(server);
    let server = TestServer::spawn(dir.path());
    assert_eq!(head(&server).await, after);
    let org = get_org(&server, &deputy).await;
    assert_eq!(org["appointments"].as_array().unwrap().len(), 26);
}

/// A production installation: no demo organisation, so nobody may change
/// the organisation until the operator records the first admin on the
/// stopped store; from there to a first issued document with no demo data.
#[tokio::test]
async fn first_admin_from_an_empty_store_to_a_first_issued_document() {
    let _limit = crate::helpers::time_limit();
    use crate::helpers::Api;
    use crate::helpers::{keys_dir, open_log};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let note = "Cài đặt theo Quyết định 123/QĐ-UBND; người cài: Trần Văn Vận Hành";
    let init = |extra: &[&str]| {
        let mut args = vec!["admin", "init", "--data-dir", data_s];
        args.extend_from_slice(extra);
        std::process::Command::new(crate::helpers::VANTHU)
            .args(&args)
            .envs(crate::cluster::backend_env(&data))
            .output()
            .unwrap()
    };
    // Refusals write nothing: no note, an unknown agency without a name.
    let out = init(&["--official", "ubnd-quan-tri", "--note", " "]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--note"));
    let out = init(&[
        "--official",
        "ubnd-quan-tri",
        "--agency",
        "UBND",
        "--name",
        "Nguyễn Quản Trị",
        "--note",
        note,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agency-name"));
    assert_eq!(open_log(&data).head(), 0, "a refusal wrote nothing");

    let out = init(&[
        "--official",
        "ubnd-quan-tri",
        "--name",
        "Nguyễn Quản Trị",
        "--agency",
        "UBND",
        "--agency-name",
        "Ủy ban nhân dân tỉnh Nghệ An",
        "--note",
        note,
    ]);
    assert!(out.status.success(), "{out:?}");
    // Once there is an admin, the bootstrap refuses: admins use the API.
    let out = init(&["--official", "someone-else", "--note", note]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has an admin"));
    {
        let log = open_log(&data);
        let org = log.read_stream("org", 1, 100).unwrap();
        assert_eq!(org.len(), 3, "agency, appointment, admin grant");
        assert!(org
            .iter()
            .all(|r| r.metadata.reason.as_deref() == Some(note)));
    }

    let api = Api::on(&data, &[("VANTHU_DEMO", "false")]);
    let org = api.get("ubnd-quan-tri", "/v1/org").await;
    assert_eq!(org.status, 200, "{}", org.body);
    assert_eq!(org.body["agencies"].as_array().unwrap().len(), 1);
    // Nobody else may change the organisation.
    let r = api
        .post(
            "ubnd-chu-tich",
            "/v1/org/events",
            json!({"type": "unit_created", "agency": "UBND", "code": "VP", "name": "Văn phòng"}),
        )
        .await;
    assert_eq!(
        r.status, 401,
        "an unknown official is not authenticated: {}",
        r.body
    );

    // The admin records the organisation the document needs.
    let manifest = vanthu::devkeys::Manifest::load(&keys_dir()).unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    let mut events = vec![
        json!({"type": "agency_created", "code": "SNV", "name": "Sở Nội vụ", "parent": "UBND"}),
        json!({"type": "unit_created", "agency": "UBND", "code": "VP", "name": "Văn phòng"}),
    ];
    for (official, position, unit) in [
        ("ubnd-cv-vp", "specialist", Some("VP")),
        ("ubnd-chu-tich", "head", None),
        ("ubnd-van-thu", "clerk", Some("VP")),
    ] {
        events.push(
            json!({"type": "official_appointed", "official": official, "name": official,
            "agency": "UBND", "unit": unit, "position": position, "from": now}),
        );
    }
    let cert = &manifest.officials["ubnd-chu-tich"];
    events.push(
        json!({"type": "certificate_bound", "official": "ubnd-chu-tich",
        "fingerprint": cert.fingerprint, "serial": cert.serial, "issuer": cert.issuer, "at": now}),
    );
    for event in events {
        let r = api.post("ubnd-quan-tri", "/v1/org/events", event).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let id = api
        .signed(
            "ubnd-cv-vp",
            "ubnd-chu-tich",
            "",
            "BC",
            json!([{ "agency": "SNV" }]),
        )
        .await;
    let r = api.issue(&id, "ubnd-van-thu").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["issue"]["reference"], "01/BC-UBND", "{}", r.body);
}

/// The office chief (Chánh Văn phòng) keeps the agency's books whether the
/// appointment names the office unit or not: the position decides.
#[tokio::test]
async fn an_office_chief_inside_a_unit_reads_the_registers() {
    let _limit = crate::helpers::time_limit();
    use chrono::Datelike;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let admin = token("quan-tri");
    let now = chrono::Utc::now();
    for (official, unit) in [("svhtt-cvp", Some("VP")), ("svhtt-cvp-2", None)] {
        let r = server
            .post("/v1/org/events")
            .bearer_auth(&admin)
            .json(&json!({"type": "official_appointed", "official": official,
                "name": "Chánh Văn phòng", "agency": "SVHTT", "unit": unit,
                "position": "office_chief", "from": now - chrono::Duration::minutes(1)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    for official in ["svhtt-cvp", "svhtt-cvp-2"] {
        let r = server
            .get(&format!("/v1/registers/SVHTT/{}/outgoing", now.year()))
            .bearer_auth(token(official))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{official}: {}", r.text().await.unwrap());
    }
    // A specialist of the same office does not.
    let r = server
        .get(&format!("/v1/registers/SVHTT/{}/outgoing", now.year()))
        .bearer_auth(token("svhtt-cv-vp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A token signed with the development key with exactly these claims.
fn jwt(claims: Value) -> String {
    let pem = std::fs::read(crate::helpers::keys_dir().join("jwt/jwt.key")).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap(),
    )
    .unwrap()
}

/// Tokens: issuer, audience, not-before, lifetime and scheme are checked;
/// subjects must be officials the organisation knows or registered clients,
/// and a client gets only the scopes its registration allows.
#[tokio::test]
async fn tokens_and_integration_clients() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str| json!({"sub": sub, "iat": now, "exp": now + 3600, "iss": "vanthu-dev", "aud": "vanthu"});
    let status = |auth: String, path: &'static str| {
        let server = &server;
        async move {
            server
                .get(path)
                .header("Authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("svhtt-pgd-1");
        f(&mut c);
        format!("Bearer {}", jwt(c))
    };
    assert_eq!(status(with(&|_| {}), "/v1/org").await, 200);
    let good = jwt(claims("svhtt-pgd-1"));
    assert_eq!(
        status(format!("bearer {good}"), "/v1/org").await,
        200,
        "scheme in any case"
    );
    assert_eq!(status(format!("BEARER {good}"), "/v1/org").await, 200);
    for (what, token) in [
        (
            "another issuer",
            with(&|c| c["iss"] = json!("someone-else")),
        ),
        (
            "no issuer",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "another audience",
            with(&|c| c["aud"] = json!("other-service")),
        ),
        (
            "no audience",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("not yet valid", with(&|c| c["nbf"] = json!(now + 3600))),
        (
            "issued in the future",
            with(&|c| {
                c["iat"] = json!(now + 3600);
                c["exp"] = json!(now + 7200);
            }),
        ),
        (
            "living 13 hours",
            with(&|c| c["exp"] = json!(now + 13 * 3600)),
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
        ),
        (
            "an unknown subject",
            format!("Bearer {}", jwt(claims("nobody"))),
        ),
        (
            "a client's id as an official",
            format!("Bearer {}", jwt(claims("cong-thong-tin"))),
        ),
        ("an unregistered client", {
            let mut c = claims("rogue-portal");
            c["client_id"] = json!("rogue-portal");
            c["scope"] = json!("feed:read org:read");
            format!("Bearer {}", jwt(c))
        }),
        ("an official posing as a client", {
            let mut c = claims("svhtt-pgd-1");
            c["client_id"] = json!("svhtt-pgd-1");
            c["scope"] = json!("org:read");
            format!("Bearer {}", jwt(c))
        }),
    ] {
        assert_eq!(status(token, "/v1/org").await, 401, "{what}");
    }

    // The registered client: what its token asks for, within its registration.
    let client = |scopes: &str| {
        let mut c = claims("cong-thong-tin");
        c["client_id"] = json!("cong-thong-tin");
        c["scope"] = json!(scopes);
        format!("Bearer {}", jwt(c))
    };
    assert_eq!(status(client("feed:read"), "/v1/feed/issued").await, 200);
    assert_eq!(
        status(client("feed:read"), "/v1/org").await,
        403,
        "no org:read asked"
    );
    assert_eq!(status(client("org:read"), "/v1/org").await, 200);
    assert_eq!(status(client("org:read"), "/v1/feed/issued").await, 403);
    assert_eq!(
        status(client("org:read"), "/v1/inbox").await,
        403,
        "no inbox for clients"
    );
    // Officials do not read the integration feed, whatever their token says.
    let official_scoped = with(&|c| c["scope"] = json!("feed:read"));
    assert_eq!(status(official_scoped, "/v1/feed/issued").await, 403);
    // Clients upload no files.
    let r = server
        .post("/v1/blobs")
        .header("Authorization", client("feed:read org:read"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Client ids and official ids never overlap; scopes are known ones.
    let admin = token("quan-tri");
    let at = chrono::Utc::now().to_rfc3339();
    for (event, why) in [
        (
            json!({"type": "client_registered", "id": "svhtt-pgd-1", "name": "x", "scopes": ["feed:read"], "at": at}),
            "an official's id",
        ),
        (
            json!({"type": "client_registered", "id": "kho-luu-tru", "name": "x", "scopes": ["admin"], "at": at}),
            "an unknown scope",
        ),
        (
            json!({"type": "client_registered", "id": "kho-luu-tru", "name": "x", "scopes": [], "at": at}),
            "no scope",
        ),
        (
            json!({"type": "client_registered", "id": "kho lưu trữ", "name": "x", "scopes": ["feed:read"], "at": at}),
            "a malformed id",
        ),
        (
            json!({"type": "official_appointed", "official": "cong-thong-tin", "name": "x", "agency": "SNV", "position": "specialist", "unit": "VP", "from": at}),
            "a client's id",
        ),
        (
            json!({"type": "official_appointed", "official": "Nguyễn Văn A", "name": "x", "agency": "SNV", "position": "specialist", "unit": "VP", "from": at}),
            "a malformed official id",
        ),
    ] {
        let r = server
            .post("/v1/org/events")
            .bearer_auth(&admin)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{why}");
    }
    let r = server
        .post("/v1/org/events")
        .bearer_auth(&admin)
        .json(&json!({"type": "client_revoked", "id": "cong-thong-tin", "at": at}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        status(client("feed:read"), "/v1/feed/issued").await,
        401,
        "revoked"
    );
}

/// An organisation change that takes effect in the past rewrites who had
/// authority then: allowed only within the backdating window and with a
/// reason, which the log keeps with the event (beside its recorded time).
#[tokio::test]
async fn backdating_needs_a_reason_and_stays_within_the_window() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());
    let admin = token("quan-tri");
    let relief = |days_ago: i64| {
        json!({"type": "official_relieved", "official": "svhtt-giam-doc", "agency": "SVHTT",
               "position": "head", "at": chrono::Utc::now() - chrono::Duration::days(days_ago)})
    };
    let post = |body: Value| {
        server
            .post("/v1/org/events")
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let r = post(relief(30)).await.unwrap();
    assert_eq!(r.status(), 422, "beyond the 7-day window");
    let r = post(json!({"event": relief(30), "reason": "Quyết định số 12"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a reason does not widen the window");
    let r = post(relief(2)).await.unwrap();
    assert_eq!(r.status(), 422, "within the window but without a reason");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("reason"),
        "{body}"
    );
    let r = post(json!({"event": relief(2), "reason": "Quyết định số 12/QĐ-UBND ngày 28/11"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = post(json!({"event": relief(2), "reason": "x", "colour": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown fields in the wrapper");
    drop(server);
    let log = crate::helpers::open_log(dir.path());
    let org = log.read_stream("org", 1, 1000).unwrap();
    let last = org.last().unwrap();
    assert_eq!(last.event_type, "org.official_relieved.v1");
    assert_eq!(
        last.metadata.reason.as_deref(),
        Some("Quyết định số 12/QĐ-UBND ngày 28/11")
    );
    assert!(last.recorded_at > chrono::Utc::now() - chrono::Duration::minutes(5));
}

/// A verdict given at acceptance is evidence and never changes: a relief
/// recorded afterwards but dated before the signature is shown beside it.
#[tokio::test]
async fn a_later_backdated_change_is_shown_beside_the_verdict_not_folded_in() {
    let _limit = crate::helpers::time_limit();
    use crate::helpers::Api;
    let api = Api::start(&[]);
    let id = api
        .signed(
            "svhtt-cv-qlvh",
            "svhtt-giam-doc",
            "",
            "BC",
            json!([{ "agency": "UBND" }]),
        )
        .await;
    let relief = json!({"event": {"type": "official_relieved", "official": "svhtt-giam-doc",
        "agency": "SVHTT", "position": "head", "at": chrono::Utc::now() - chrono::Duration::days(1)},
        "reason": "Quyết định nghỉ hưu có hiệu lực từ hôm qua"});
    let r = api.post("quan-tri", "/v1/org/events", relief).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let position = r.body["position"].as_u64().unwrap();
    let v = api
        .get(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{id}/verification?min_position={position}"),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(
        v.body["authority"]["passed"], true,
        "the verdict as known at signing"
    );
    assert_eq!(v.body["report"]["indication"], "TOTAL_PASSED");
    let later = v.body["recorded_later"].as_array().unwrap();
    assert_eq!(later.len(), 1, "{}", v.body);
    assert_eq!(later[0]["event"]["type"], "official_relieved");
    assert_eq!(
        later[0]["reason"],
        "Quyết định nghỉ hưu có hiệu lực từ hôm qua"
    );
}
