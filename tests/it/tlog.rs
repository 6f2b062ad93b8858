//! The log as a transparency log, checked from outside: an independent
//! verifier (`tests/tlog/verify.py`, Python, written from the C2SP and
//! RFC 9162 texts) checks the checkpoint signature, recomputes the root
//! from the level-0 tiles, checks the tiles above, a consistency proof
//! between two checkpoints and every inclusion proof of a live bundle; one
//! flipped bit in a tile, a proof or a checkpoint makes it fail. A third
//! party's tile reader (tlog-scales, PyPI) checks the same and computes the
//! same proofs. Then the refusals: who reads entry bundles, malformed tile
//! paths and proofs; and the monitor against a fork and a rollback.

use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::{keys_dir, token, vanthu_text, venv_python, Api};

/// A script's JSON summary, or its output when it printed none.
fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        json!({ "stdout": String::from_utf8_lossy(&out.stdout), "stderr": String::from_utf8_lossy(&out.stderr) })
    })
}

/// Runs the independent verifier; (passed, its JSON summary).
fn verifier(args: &[&str]) -> (bool, Value) {
    let out = venv_python("tests/tlog/verify.py", args, b"");
    (out.status.success(), summary(&out))
}

/// Runs `tests/tlog/tlog_scales_check.py` (a third party's tile reader)
/// with the server's proofs on stdin; (passed, its JSON summary).
fn third_party(url: &str, vkey: &str, index: u64, old: u64, server: &Value) -> (bool, Value) {
    let (index, old) = (index.to_string(), old.to_string());
    let out = venv_python(
        "tests/tlog/tlog_scales_check.py",
        &[url, vkey, &index, &old],
        server.to_string().as_bytes(),
    );
    (out.status.success(), summary(&out))
}

fn vkey() -> String {
    std::fs::read_to_string(keys_dir().join("log/log.vkey"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `n` drafts, 16 at a time (two records each: an upload is not a record,
/// a draft is one).
async fn drafts(api: &Api, n: usize) {
    for _ in 0..n.div_ceil(16) {
        let batch =
            (0..16).map(|_| api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }])));
        futures_util::future::join_all(batch).await;
    }
}

/// Waits until the newest checkpoint covers the head; its text.
async fn checkpoint_at_head(api: &Api) -> String {
    let head = api.head().await;
    crate::helpers::eventually(
        &format!("a checkpoint covering the head {head}"),
        std::time::Duration::from_secs(10),
        || async move {
            let text = api
                .http
                .get(format!("{}/log/checkpoint", api.server.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
            (size >= head).then_some(text)
        },
    )
    .await
}

#[tokio::test]
async fn an_independent_verifier_checks_tiles_proofs_and_checkpoints() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[("VANTHU_TLOG_CHECKPOINT_INTERVAL_MS", "100")]);
    let url = api.server.url.clone();
    let key = vkey();
    let dir = tempfile::tempdir().unwrap();

    // The published key is the one in keys-dev.
    let published = api
        .http
        .get(format!("{url}/v1/log/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(published.text().await.unwrap().trim(), key);

    // An issued document (its bundle), then enough records for full tiles
    // and a level-1 hash (more than 256 records).
    let (id, _) = api.assigned_plan(json!([{ "agency": "UBND" }])).await;
    drafts(&api, 300).await;
    let old = checkpoint_at_head(&api).await;
    let old_file = dir.path().join("old.checkpoint");
    std::fs::write(&old_file, &old).unwrap();
    let (ok, summary) = verifier(&["tree", &url, &key]);
    assert!(ok, "{summary}");
    assert!(summary["size"].as_u64().unwrap() > 256);
    assert!(summary["upper_hashes"].as_u64().unwrap() >= 1, "{summary}");
    for flipped in ["checkpoint", "tile"] {
        let (ok, summary) = verifier(&["tree", &url, &key, "--flip", flipped]);
        assert!(
            !ok,
            "a flipped bit in the {flipped} went unnoticed: {summary}"
        );
    }
    // Another key refuses the checkpoint.
    let other = vanthu::crypto::note::verifier_key(vanthu::config::DEV_TLOG_ORIGIN, &[3u8; 32]);
    assert!(!verifier(&["tree", &url, &other]).0);

    // More records, a newer checkpoint, consistent with the old one.
    drafts(&api, 40).await;
    let new = checkpoint_at_head(&api).await;
    assert_ne!(old, new);
    let (ok, summary) = verifier(&["consistency", &url, &key, old_file.to_str().unwrap()]);
    assert!(ok, "{summary}");
    assert!(summary["hashes"].as_u64().unwrap() > 0);
    let (ok, summary) = verifier(&[
        "consistency",
        &url,
        &key,
        old_file.to_str().unwrap(),
        "--flip",
        "proof",
    ]);
    assert!(!ok, "a flipped proof went unnoticed: {summary}");
    // A third party's tile reader (tlog-scales) checks the same checkpoint,
    // recomputes the root from the tiles, verifies the server's inclusion
    // and consistency proofs, and computes the same proofs from the tiles.
    let old_cp = vanthu::crypto::note::open(old.as_bytes(), &key).unwrap();
    let new_cp = vanthu::crypto::note::open(new.as_bytes(), &key).unwrap();
    let index = 300u64;
    let json_of = |path: String| {
        let http = api.http.clone();
        async move {
            http.get(path)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let inclusion = json_of(format!(
        "{url}/v1/log/proof/inclusion?position={}&tree_size={}",
        index + 1,
        new_cp.size
    ))
    .await;
    let consistency = json_of(format!(
        "{url}/v1/log/proof/consistency?from={}&to={}",
        old_cp.size, new_cp.size
    ))
    .await;
    let b64 = |h: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h);
    let server = json!({ "inclusion": inclusion, "consistency": consistency, "old_root": b64(&old_cp.root) });
    let (ok, theirs) = third_party(&url, &key, index, old_cp.size, &server);
    assert!(ok, "{theirs}");
    assert_eq!(theirs["size"], new_cp.size);
    assert_eq!(theirs["root"], b64(&new_cp.root));
    assert_eq!(theirs["inclusion"], inclusion["hashes"]);
    assert_eq!(theirs["consistency"], consistency["hashes"]);
    // And it refuses a server proof with one flipped bit.
    let mut bad = server.clone();
    let h = bad["inclusion"]["hashes"][0].as_str().unwrap().to_owned();
    let flipped = if h.starts_with('A') {
        h.replacen('A', "B", 1)
    } else {
        format!("A{}", &h[1..])
    };
    bad["inclusion"]["hashes"][0] = json!(flipped);
    assert!(!third_party(&url, &key, index, old_cp.size, &bad).0);

    // Every checkpoint is kept: the old one is the checkpoint of its size.
    let (ok, _) = verifier(&["tree", &url, &key]);
    assert!(ok);

    // A live bundle: every record's tlog-proof verifies, and `vanthu verify
    // --log-key` agrees; a flipped bit in a proof or its checkpoint fails.
    let bundle = api
        .get("svhtt-cv-qlvh", &format!("/v1/documents/{id}/bundle"))
        .await;
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    let records = bundle.body["log"]["records"].as_array().unwrap();
    assert!(records.len() >= 5, "the issuing side sees every record");
    let bundle_file = dir.path().join("bundle.json");
    std::fs::write(&bundle_file, bundle.body.to_string()).unwrap();
    let (ok, summary) = verifier(&["bundle", bundle_file.to_str().unwrap(), &key]);
    assert!(ok, "{summary}");
    for flipped in ["proof", "checkpoint"] {
        let (ok, summary) = verifier(&[
            "bundle",
            bundle_file.to_str().unwrap(),
            &key,
            "--flip",
            flipped,
        ]);
        assert!(!ok, "a flipped {flipped} went unnoticed: {summary}");
    }
    crate::helpers::verifies_offline(bundle.body.to_string().as_bytes(), &keys_dir());
    // A recipient's bundle carries only the signing and issuing records.
    let theirs = api
        .get("ubnd-van-thu", &format!("/v1/documents/{id}/bundle"))
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    let kinds: Vec<String> = theirs.body["log"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["record"].as_str().unwrap()).unwrap()["type"]
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["\"document.signed.v1\"", "\"document.issued.v1\""]);
    crate::helpers::verifies_offline(theirs.body.to_string().as_bytes(), &keys_dir());

    // The server's own proofs against the server's checkpoints, checked with
    // vanthu's verifier too (the Python one above is the independent one).
    let size: u64 = new.lines().nth(1).unwrap().parse().unwrap();
    let r = api
        .http
        .get(format!(
            "{url}/v1/log/proof/inclusion?position=1&tree_size={size}"
        ))
        .send()
        .await
        .unwrap();
    let proof: Value = r.json().await.unwrap();
    assert_eq!(proof["leaf_index"], 0);
    let checkpoint = vanthu::crypto::note::open(new.as_bytes(), &key).unwrap();
    let b64 = |v: &Value| -> [u8; 32] {
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            v.as_str().unwrap(),
        )
        .unwrap()
        .try_into()
        .unwrap()
    };
    let path: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    vanthu::crypto::merkle::verify_inclusion(
        0,
        size,
        &b64(&proof["leaf_hash"]),
        &path,
        &checkpoint.root,
    )
    .unwrap();
}

#[tokio::test]
async fn tiles_entries_and_proofs_refuse_what_they_must() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let url = api.server.url.clone();
    let head = api.head().await;
    assert!(head > 0, "the demo organisation is in the log");
    checkpoint_at_head(&api).await;
    let get = |path: &str| api.http.get(format!("{url}{path}"));

    // Hash tiles are public and immutable; the checkpoint is not cached.
    let r = api.send(get(&format!("/log/tile/0/000.p/{head}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let r = api.send(get("/log/checkpoint")).await;
    assert_eq!(r.headers["cache-control"], "no-cache");
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    // Malformed paths are 400, tiles the log does not have are 404.
    for bad in [
        "0/1",
        "0/x000/001",
        "0/000.p/0",
        "0/000.p/256",
        "64/000",
        "00/000",
        "entries",
        "x/000",
    ] {
        let r = api.send(get(&format!("/log/tile/{bad}"))).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    for missing in [
        "0/000".to_owned(),
        format!("0/000.p/{}", head + 1),
        "1/000.p/1".into(),
        "0/001.p/1".into(),
    ] {
        let r = api.send(get(&format!("/log/tile/{missing}"))).await;
        assert_eq!(r.status, 404, "{missing}: {}", r.body);
    }

    // Entry bundles: never anonymously, never to officials at large or
    // admins, only to an auditor.
    let entries = format!("/log/tile/entries/000.p/{head}");
    assert_eq!(api.send(get(&entries)).await.status, 401);
    for who in ["svhtt-giam-doc", "quan-tri"] {
        let r = api.send(get(&entries).bearer_auth(token(who))).await;
        assert_eq!(r.status, 403, "{who}: {}", r.body);
    }
    let r = api
        .http
        .get(format!("{url}{entries}"))
        .bearer_auth(token("thanh-tra"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let bundle = r.bytes().await.unwrap();
    let tile = api
        .http
        .get(format!("{url}/log/tile/0/000.p/{head}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // Each entry's leaf hash is the tile's hash at its index.
    let (mut at, mut i) = (0usize, 0usize);
    while at < bundle.len() {
        let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        let entry = &bundle[at + 2..at + 2 + len];
        assert_eq!(
            vanthu::crypto::merkle::leaf_hash(entry),
            tile[i * 32..(i + 1) * 32]
        );
        at += 2 + len;
        i += 1;
    }
    assert_eq!(i as u64, head);

    // Proofs: sizes and positions the log has, else 400.
    for bad in [
        format!("/v1/log/proof/inclusion?position=0&tree_size={head}"),
        format!(
            "/v1/log/proof/inclusion?position={}&tree_size={head}",
            head + 1
        ),
        format!("/v1/log/proof/inclusion?position=1&tree_size={}", head + 1),
        "/v1/log/proof/inclusion?position=1".into(),
        "/v1/log/proof/inclusion?position=x&tree_size=1".into(),
        "/v1/log/proof/consistency?from=2&to=1".into(),
        format!("/v1/log/proof/consistency?from=1&to={}", head + 1),
        "/v1/log/proof/consistency?from=1&to=2&extra=1".into(),
    ] {
        let r = api.send(get(&bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = api
        .send(get(&format!(
            "/v1/log/proof/consistency?from={head}&to={head}"
        )))
        .await;
    assert_eq!((r.status, r.body["hashes"].clone()), (200, json!([])));
}

/// `vanthu log monitor` with the committed log key; (passed, stdout+stderr).
fn monitor(url: &str, state: &Path, extra: &[&str]) -> (bool, String) {
    let key = keys_dir().join("log/log.vkey");
    let mut args = vec![
        "log",
        "monitor",
        "--url",
        url,
        "--log-key",
        key.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend(extra);
    vanthu_text(&args)
}

#[tokio::test]
async fn the_monitor_follows_one_log_and_raises_a_fork_or_a_rollback() {
    let _limit = crate::helpers::time_limit();
    let a = Api::start(&[("VANTHU_TLOG_CHECKPOINT_INTERVAL_MS", "100")]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("monitor.state");
    checkpoint_at_head(&a).await;
    let (ok, out) = monitor(&a.server.url, &state, &[]);
    assert!(ok && out.contains("first seen"), "{out}");
    drafts(&a, 300).await;
    checkpoint_at_head(&a).await;
    let (ok, out) = monitor(&a.server.url, &state, &["--full"]);
    assert!(ok && out.contains("consistent with"), "{out}");
    let (ok, out) = monitor(&a.server.url, &state, &[]);
    assert!(ok, "{out}");
    let accepted = std::fs::read(&state).unwrap();

    // Another server holding the same key but another log (a split view):
    // its checkpoints are signed, yet not consistent with what was seen.
    let b = Api::start(&[("VANTHU_TLOG_CHECKPOINT_INTERVAL_MS", "100")]);
    drafts(&b, 400).await;
    checkpoint_at_head(&b).await;
    let (ok, out) = monitor(&b.server.url, &state, &[]);
    assert!(!ok && out.contains("FORK"), "{out}");
    assert_eq!(
        std::fs::read(&state).unwrap(),
        accepted,
        "the state is kept"
    );
    // A log showing fewer records than seen before: a rollback.
    let c = Api::start(&[]);
    checkpoint_at_head(&c).await;
    let (ok, out) = monitor(&c.server.url, &state, &[]);
    assert!(!ok && out.contains("ROLLBACK"), "{out}");
    // Another key: nothing is accepted.
    let other = vanthu::crypto::note::verifier_key(vanthu::config::DEV_TLOG_ORIGIN, &[3u8; 32]);
    let out = crate::helpers::vanthu(&[
        "log",
        "monitor",
        "--url",
        &a.server.url,
        "--log-key",
        &other,
        "--state",
        dir.path().join("other.state").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed by"));
    assert!(!dir.path().join("other.state").exists());
    // The original log is still consistent with what was accepted.
    assert!(monitor(&a.server.url, &state, &[]).0);
}
