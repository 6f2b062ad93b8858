//! Request ids and log lines: `X-Request-Id` honoured when sane and
//! generated otherwise, returned, recorded in the metadata of the events the
//! request appends; JSON log lines that carry it; and no token or document
//! content in any log line.

use std::process::Stdio;

use serde_json::{json, Value};

use crate::helpers::{keys_dir, open_log, serve_command, server_log, token, Api, TestServer};

#[tokio::test]
async fn request_ids_reach_the_response_the_events_and_the_json_logs() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (log_file, file) = server_log();
    let mut cmd = serve_command(&data);
    cmd.env("VANTHU_DEV", "true")
        .env("VANTHU_KEYS_DIR", keys_dir())
        .env("VANTHU_LOG", "info")
        .env("VANTHU_LOG_FORMAT", "json");
    let server = TestServer::spawn_logging_to(cmd, Stdio::from(file)).expect("the server starts");
    let api = Api::of(server);
    let url = api.server.url.clone();

    // Sane ids are kept; others are replaced by a fresh one.
    for (sent, kept) in [
        ("req-1.a:b_C", true),
        ("bad id", false),
        ("quote\"d", false),
        (&*"x".repeat(129), false),
        (&*"y".repeat(128), true),
    ] {
        let r = api
            .http
            .get(format!("{url}/healthz"))
            .header("X-Request-Id", sent)
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(got == sent, kept, "{sent:?} → {got:?}");
        assert!(vanthu::http::request_id::is_sane(&got));
    }
    let r = api.http.get(format!("{url}/healthz")).send().await.unwrap();
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());

    // A draft and an organisation change, each under its own id.
    let title = "Tờ trình bí mật về ngân sách năm 2027";
    let sha = api.blob("svhtt-cv-qlvh", b"noi dung").await;
    let author = token("svhtt-cv-qlvh");
    let r = api
        .http
        .post(format!("{url}/v1/documents"))
        .bearer_auth(&author)
        .header("X-Request-Id", "draft-req-1")
        .json(&json!({
            "doc_type": "CV", "title": title,
            "content": [{ "name": "a.txt", "sha256": sha }],
            "recipients": [{ "agency": "UBND" }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-request-id"], "draft-req-1");
    let admin = token("quan-tri");
    let r = api
        .http
        .post(format!("{url}/v1/org/events"))
        .bearer_auth(&admin)
        .header("X-Request-Id", "org-req-2")
        .json(&json!({ "type": "auditor_granted", "official": "kiem-toan", "at": chrono::Utc::now() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let status = tokio::task::spawn_blocking(move || api.server.terminate())
        .await
        .unwrap();
    assert!(status.success());

    // The events carry the ids.
    let log = open_log(&data);
    let records = log.read_all(1, usize::MAX).unwrap();
    let drafted = records
        .iter()
        .find(|r| r.event_type == "document.drafted.v1")
        .unwrap();
    assert_eq!(drafted.metadata.request_id.as_deref(), Some("draft-req-1"));
    let granted = records
        .iter()
        .rfind(|r| r.event_type == "org.auditor_granted.v1")
        .unwrap();
    assert_eq!(granted.payload["official"], "kiem-toan");
    assert_eq!(granted.metadata.request_id.as_deref(), Some("org-req-2"));

    // Every log line is a JSON object; the access lines carry the ids; no
    // token, and no document title, is in any line.
    let text = std::fs::read_to_string(&log_file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "request")
        .flat_map(|l| l["spans"].as_array().into_iter().flatten())
        .filter_map(|s| s["request_id"].as_str())
        .collect();
    for id in ["req-1.a:b_C", "draft-req-1", "org-req-2"] {
        assert!(ids.contains(&id), "{id} not logged: {ids:?}");
    }
    let route_of = |id: &str| {
        lines
            .iter()
            .find(|l| l["spans"].to_string().contains(id))
            .map(|l| l["route"].clone())
    };
    assert_eq!(route_of("draft-req-1"), Some(json!("/v1/documents")));
    for secret in [author.as_str(), admin.as_str(), title] {
        assert!(!text.contains(secret), "a log line holds {secret:?}");
    }
}

/// What a command causes beyond its own document names the event that
/// caused it: the register's number names the `issued` event, the reply
/// document's `reply_linked` names the `replied` event; the first event of
/// a command has no cause but the request (its `request_id`).
#[tokio::test]
async fn events_a_command_causes_elsewhere_name_their_cause() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = Api::on(&data, &[]);
    let (plan, _) = api
        .assigned_plan(json!([{ "agency": "UBND", "reply_within_working_days": 5 }]))
        .await;
    let reply = api.issued_ubnd_reply().await;
    let r = api
        .reply(&plan, "ubnd-cv-kt", json!({ "reply": reply }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status = tokio::task::spawn_blocking(move || api.server.terminate())
        .await
        .unwrap();
    assert!(status.success());

    let records = open_log(&data).read_all(1, usize::MAX).unwrap();
    let one = |ty: &str, stream_has: &str| {
        let found: Vec<_> = records
            .iter()
            .filter(|r| r.event_type == ty && r.stream.contains(stream_has))
            .collect();
        assert_eq!(found.len(), 1, "{ty} in {stream_has}");
        found[0].clone()
    };
    let replied = one("document.replied.v1", &plan);
    let linked = one("document.reply_linked.v1", &reply);
    assert_eq!(replied.metadata.causation_id, None);
    assert_eq!(linked.metadata.causation_id, Some(replied.event_id));
    assert!(replied.metadata.request_id.is_some());
    assert_eq!(linked.metadata.request_id, replied.metadata.request_id);

    // Every number allocated (outgoing at issue, incoming at receipt) names
    // the document event it was allocated for, appended just before it.
    let numbers: Vec<_> = records
        .iter()
        .filter(|r| r.event_type == "register.number_allocated.v1")
        .collect();
    assert!(numbers.len() >= 3, "{numbers:?}");
    for n in numbers {
        let cause = n.metadata.causation_id.expect("a number names its cause");
        let by = records.iter().find(|r| r.event_id == cause).unwrap();
        assert!(
            ["document.issued.v1", "document.received.v1"].contains(&by.event_type.as_str())
                && by.position < n.position
                && by.metadata.request_id == n.metadata.request_id,
            "{n:?} caused by {by:?}"
        );
    }
}

/// The check `make test` runs over every server log of the run finds what
/// it looks for, and refuses to pass on logs it could not read.
#[test]
fn the_log_check_finds_tokens_titles_and_missing_logs() {
    let _limit = crate::helpers::time_limit();
    let sources = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it");
    let run = |lines: &[String]| {
        let dir = tempfile::tempdir().unwrap();
        if !lines.is_empty() {
            std::fs::write(dir.path().join("1-0.log"), lines.join("\n")).unwrap();
        }
        let out = crate::helpers::venv_python(
            "tests/logs/no_secrets.py",
            &[dir.path().to_str().unwrap(), sources],
            b"",
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let access = r#"{"level":"INFO","message":"request","status":201}"#.to_owned();
    assert_eq!(run(std::slice::from_ref(&access)), (true, String::new()));
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("not captured"), "{err}");
    for (planted, named) in [
        (format!("token={}", token("svhtt-cv-qlvh")), "a token"),
        (
            "authorization: Bearer abcdefghijkl".to_owned(),
            "Authorization",
        ),
        (
            "Tờ trình bí mật về ngân sách năm 2027".to_owned(),
            "document content",
        ),
        ("-----BEGIN PRIVATE KEY-----".to_owned(), "PEM"),
    ] {
        let (ok, err) = run(&[access.clone(), planted.clone()]);
        assert!(
            !ok && err.contains(named) && err.contains("1-0.log:2"),
            "{planted}: {err}"
        );
    }
}
