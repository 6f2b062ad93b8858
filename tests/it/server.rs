//! The real binary as a user runs it: `serve` over HTTP, `check`, `bench`.

use serde_json::{json, Value};
use vanthu::store::{rocks, ExpectedVersion, NewEvent, StreamAppend};

use crate::helpers::{open_log, vanthu, TestServer};

#[tokio::test]
async fn health_readiness_and_problem_responses() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(dir.path());

    let r = server.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));

    let r = server.get("/readyz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["log"]["writable"], true);
    // The demo organisation was recorded at first start.
    assert!(body["log"]["head"].as_u64().unwrap() > 50, "{body}");

    let r = server.get("/v1/no-such-thing").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:vanthu:problem:not-found");
    assert_eq!(body["status"], 404);
}

async fn seed(dir: &std::path::Path, n: u64) {
    let log = open_log(dir);
    for i in 0..n {
        let e = NewEvent::new("seed.appended.v1", json!({ "i": i }));
        log.append(
            vec![StreamAppend::new("seed", ExpectedVersion::Any, vec![e])],
            None,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_tampered_record_stops_serve_and_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), 10).await;

    let out = vanthu(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 records"));

    // Change one byte of record 7's payload behind the log's back.
    {
        let db = rocks::open(dir.path()).unwrap();
        let cf = rocks::cf(&db, rocks::CF_LOG);
        let key = 7u64.to_be_bytes();
        let bytes = db.get_cf(&cf, key).unwrap().unwrap();
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("\"i\":6", "\"i\":9");
        db.put_cf(&cf, key, tampered).unwrap();
    }

    let out = vanthu(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt at position 7"), "{err}");
    assert!(err.contains("leaf hash"), "{err}");

    let out = vanthu(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt at position 7"));
}

#[tokio::test]
async fn a_missing_tail_record_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), 5).await;
    {
        let db = rocks::open(dir.path()).unwrap();
        db.delete_cf(&rocks::cf(&db, rocks::CF_LOG), 3u64.to_be_bytes())
            .unwrap();
    }
    let out = vanthu(&["check", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gap") && err.contains("position 4"), "{err}");
}

#[test]
fn bench_prints_the_agreed_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = vanthu(&[
        "bench",
        "store",
        "--writers",
        "4",
        "--events",
        "40",
        "--rounds",
        "1",
        "--json",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "writers",
        "events",
        "vanthu_events_per_s",
        "raw_events_per_s",
        "ratio",
        "p50_ms",
        "p99_ms",
        "raw_single_sync_ms",
    ] {
        assert!(v[key].is_number(), "{key} missing in {v}");
    }
    assert_eq!(v["writers"], 4);
    assert_eq!(v["events"], 40);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "bench removes its databases"
    );
}

#[test]
fn help_explains_the_commands() {
    let out = vanthu(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "check", "bench", "./data"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    // stdout is a pipe whose reader is already gone: every write fails (EPIPE).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let key = crate::helpers::keys_dir().join("jwt/jwt.key");
    let out = std::process::Command::new(crate::helpers::VANTHU)
        .args([
            "token",
            "--official",
            "quan-tri",
            "--key",
            key.to_str().unwrap(),
        ])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
