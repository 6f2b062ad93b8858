//! The organisation over HTTP: the demo organisation at first start,
//! authentication, the admin role, validation, idempotency, persistence.

use serde_json::{json, Value};

use crate::helpers::{token, TestServer};

fn appointment(official: &str) -> Value {
    json!({
        "type": "official_appointed",
        "official": official,
        "name": "Nguyễn Văn Mới",
        "agency": "SVHTT",
        "unit": "QLVH",
        "position": "specialist",
        "title": "Chuyên viên",
        "from": "2026-11-24T00:00:00Z"
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
        vanthu::api::auth::mint(&pem, "quan-tri", &[], chrono::Duration::hours(1)).unwrap()
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
            reqwest::get(url)
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
    let r = send().send().await.unwrap();
    assert_eq!(r.status(), 201);
    let again: Value = r.json().await.unwrap();
    assert_eq!(
        (again["position"].clone(), again["replayed"].clone()),
        (first["position"].clone(), json!(true))
    );
    assert_eq!(head(&server).await, before + 1, "the replay wrote nothing");
    let org = get_org(&server, &deputy).await;
    assert!(org["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["official"] == "svhtt-cv-moi"));

    // Rule violations are 422 with the rule; malformed bodies are 400; nothing written.
    let cases = [
        (
            json!({"type": "official_appointed", "official": "y", "name": "Y", "agency": "SXD", "position": "clerk", "from": "2026-11-24T00:00:00Z"}),
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
    assert_eq!(head(&server).await, before + 1);

    // After a restart the organisation is read back, and the demo is not loaded twice.
    drop(server);
    let server = TestServer::spawn(dir.path());
    assert_eq!(head(&server).await, before + 1);
    let org = get_org(&server, &deputy).await;
    assert_eq!(org["appointments"].as_array().unwrap().len(), 26);
}
