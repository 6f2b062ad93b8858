//! Webhook signatures (`vanthu::webhooks`) checked by a third party: the
//! `standardwebhooks` package from PyPI, the Standard Webhooks project's
//! Python library (`make test-deps`), verifies
//! what vanthu signs, refuses what was changed, and accepts either secret
//! while one is rotated.

use serde_json::json;
use vanthu::webhooks::{signature_header, WebhookSecret};

/// One message as vanthu would send it, for the verifier's stdin.
fn message(
    verifier_secret: &WebhookSecret,
    signers: &[WebhookSecret],
    id: &str,
    at: i64,
    body: &str,
) -> String {
    json!({
        "secret": verifier_secret.expose(),
        "id": id,
        "timestamp": at,
        "signature": signature_header(signers, id, at, body.as_bytes()),
        "body": body,
    })
    .to_string()
}

#[test]
fn a_third_party_library_verifies_vanthus_signatures() {
    let _limit = crate::helpers::time_limit();
    let now = chrono::Utc::now().timestamp();
    let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
    let body = r#"{"type":"document.issued","reference":"01/KH-UBND","title":"Kế hoạch"}"#;
    let both = [old.clone(), new.clone()];
    // (verifier's secret, signing secrets, id, timestamp, body as sent) → verdict
    let cases = [
        (&old, &[old.clone()][..], "msg_1", now, body, true),
        // Rotation: signed with both, each receiver's secret verifies.
        (&old, &both[..], "msg_2", now, body, true),
        (&new, &both[..], "msg_2", now, body, true),
        // A secret the message was not signed with.
        (&new, &[old.clone()][..], "msg_3", now, body, false),
        // An old message (the library's tolerance is five minutes).
        (&old, &[old.clone()][..], "msg_4", now - 600, body, false),
    ];
    let mut stdin = String::new();
    for (verifier, signers, id, at, text, _) in &cases {
        stdin.push_str(&message(verifier, signers, id, *at, text));
        stdin.push('\n');
    }
    // A body changed after signing.
    let mut changed: serde_json::Value = serde_json::from_str(&message(
        &old,
        std::slice::from_ref(&old),
        "msg_5",
        now,
        body,
    ))
    .unwrap();
    changed["body"] = json!(body.replace("01/KH", "02/KH"));
    stdin.push_str(&changed.to_string());
    stdin.push('\n');
    let out = crate::helpers::venv_python("tests/webhooks/verify.py", &[], stdin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let want: Vec<bool> = cases.iter().map(|c| c.5).chain([false]).collect();
    assert_eq!(verdicts.len(), want.len(), "{verdicts:?}");
    for (i, (got, ok)) in verdicts.iter().zip(want).enumerate() {
        assert_eq!(got == "ok", ok, "message {i}: {got}");
    }
}

// ---------------------------------------------------------------------------
// Deliveries: the outbox sends what the log says to a real receiver
// (tests/webhooks/receiver.py), which checks every message with the same
// third-party library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{keys_dir, Api};

/// The test receiver: a Python process verifying with `standardwebhooks`.
pub(crate) struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    pub(crate) url: String,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(root.join("target/test-venv/bin/python"))
            .arg(root.join("tests/webhooks/receiver.py"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test venv's python (make test-deps)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .expect("the receiver's port");
        let url = format!("http://127.0.0.1:{port}/hooks/vanthu");
        Receiver { child, dir, url }
    }

    pub(crate) fn set(&self, name: &str, value: &str) {
        std::fs::write(self.dir.path().join(name), value).unwrap();
    }

    /// Every request answered (not the "start" lines).
    pub(crate) fn answered(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|e| e["phase"] == "answered")
            .collect()
    }

    pub(crate) fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `done` holds of the log (60 s at most).
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        for _ in 0..600 {
            if done(&self.lines()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver never saw {what}: {:#?}", self.lines());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALL_KINDS: [&str; 5] = [
    "document.issued",
    "document.recalled",
    "document.replaced",
    "document.received",
    "document.replied",
];

/// Subscribes the demo's portal client to `url` as webhook `id`; the secret.
pub(crate) async fn subscribe(api: &Api, id: &str, url: &str, kinds: &[&str]) -> String {
    let r = api
        .post(
            "quan-tri",
            "/v1/admin/webhooks",
            json!({ "id": id, "client": "cong-thong-tin", "url": url, "events": kinds }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

/// The webhook's delivery counts once nothing is pending (60 s at most).
pub(crate) async fn settled(api: &Api, id: &str) -> Value {
    api.caught_up().await;
    for _ in 0..600 {
        let r = api
            .get("quan-tri", &format!("/v1/admin/webhooks/{id}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["deliveries"]["pending"] == 0 {
            return r.body["deliveries"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deliveries of {id} stayed pending");
}

/// The sender's activity on `/readyz`: (complete passes, deadline checks).
async fn activity(api: &Api) -> (u64, u64) {
    let r = api
        .send(api.http.get(format!("{}/readyz", api.server.url)))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let n = |what: &str| {
        r.body["outbox"][what]
            .as_u64()
            .unwrap_or_else(|| panic!("/readyz has outbox.{what}: {}", r.body))
    };
    (n("passes"), n("deadline_checks"))
}

/// Waits (60 s at most) until the sender completed `passes` more passes
/// and `checks` more deadline checks than when called: whatever the
/// action before could have made happen has then been tried.
async fn after_activity(api: &Api, passes: u64, checks: u64) {
    let (p0, c0) = activity(api).await;
    for _ in 0..600 {
        let (p, c) = activity(api).await;
        if p >= p0 + passes && c >= c0 + checks {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sender did not complete {passes} passes and {checks} checks in 60 s");
}

/// Every delivery of webhook `id`, all pages.
async fn delivery_log(api: &Api, id: &str, status: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let filter = status.map(|s| format!("&status={s}")).unwrap_or_default();
        let r = api
            .get(
                "quan-tri",
                &format!("/v1/admin/webhooks/{id}/deliveries?limit=2{after}{filter}"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["deliveries"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return out,
        }
    }
}

/// The demo story's documents reach an integration's receiver: every
/// message verifies with the Standard Webhooks library, the issued ones
/// are exactly the feed's, confidential documents never leave, each
/// document's messages come in log order, and a receiver answering 500
/// is retried with growing, jittered gaps until it answers.
#[tokio::test]
async fn the_demo_story_reaches_a_receiver_signed_in_order_and_retried() {
    let _limit = crate::helpers::time_limit();
    let receiver = Receiver::start();
    receiver.set("mode", "500");
    // The demo moves the service clock weeks on: no message may age out.
    let api = Api::start(&[
        ("VANTHU_DEV_CLOCK", "true"),
        ("VANTHU_WEBHOOKS_RETRY_BASE_MS", "200"),
        ("VANTHU_WEBHOOKS_RETRY_CAP_SECONDS", "2"),
        ("VANTHU_WEBHOOKS_MAX_AGE_SECONDS", "315360000"),
    ]);
    let secret = subscribe(&api, "cong-thong-tin-hook", &receiver.url, &ALL_KINDS).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.set("secret", &secret);
    let r = api
        .get("quan-tri", "/v1/admin/webhooks/cong-thong-tin-hook/secret")
        .await;
    assert_eq!(r.body["secrets"], json!([secret]), "the secret reads back");

    let (outcome, _) = api.demo_story(&keys_dir()).await;
    let (secret_doc, _) = api
        .ubnd_issues(
            "Công văn mật về phương án bảo vệ bí mật nhà nước",
            "mat",
            json!([{ "agency": "SNV", "reply_within_working_days": 5 }]),
        )
        .await;
    // Three refusals of the first message, then the receiver recovers.
    receiver
        .wait_for("one message refused three times", |log| {
            let mut refused: HashMap<&str, usize> = HashMap::new();
            for e in log.iter().filter(|e| e["status"] == 500) {
                *refused.entry(e["id"].as_str().unwrap()).or_default() += 1;
            }
            refused.values().any(|n| *n >= 3)
        })
        .await;
    receiver.set("mode", "ok");
    let counts = settled(&api, "cong-thong-tin-hook").await;
    assert_eq!(counts["dead"], 0, "{counts}");

    let log = receiver.answered();
    let deliveries = delivery_log(&api, "cong-thong-tin-hook", None).await;
    assert_eq!(counts["delivered"], deliveries.len(), "{counts}");
    // Every message the library checked verified; the body is JSON.
    for e in &log {
        assert_eq!(e["verified"], true, "{e}");
        assert_eq!(e["content_type"], "application/json", "{e}");
        assert_eq!(e["signatures"], 1, "{e}");
    }
    // Each delivery arrived (answered 2xx) under its own id, and nothing
    // else did: a repeat would carry an id already seen.
    let delivered: BTreeSet<&str> = log
        .iter()
        .filter(|e| e["status"] == 204)
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let ids: BTreeSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(delivered, ids);
    assert_eq!(
        ids.len(),
        deliveries.len(),
        "the delivery log lists each once"
    );
    let answered_ok = log.iter().filter(|e| e["status"] == 204).count();
    assert_eq!(answered_ok, ids.len(), "each message arrived exactly once");
    for d in &deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        let sent: Vec<&Value> = log.iter().filter(|e| e["id"] == d["id"]).collect();
        assert!(
            sent.iter().all(|e| e["body"] == d["body"]),
            "the same body on every attempt"
        );
    }
    // Confidential documents never leave.
    let confidential = log
        .iter()
        .filter(|e| e["doc"] == secret_doc.as_str())
        .count();
    assert_eq!(confidential, 0, "the confidential letter was sent");
    assert!(
        !std::fs::read_to_string(receiver.dir.path().join("log"))
            .unwrap()
            .contains(&secret_doc),
        "the confidential letter's id reached the receiver"
    );
    // The issued documents are exactly the feed's.
    let feed = api
        .send(
            api.http
                .get(format!("{}/v1/feed/issued?limit=500", api.server.url))
                .bearer_auth(client_token()),
        )
        .await;
    let fed: BTreeSet<(String, u64)> = feed.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!("document.{}", e["kind"].as_str().unwrap()),
                e["cursor"].as_u64().unwrap(),
            )
        })
        .collect();
    let told: BTreeSet<(String, u64)> = deliveries
        .iter()
        .filter(|d| {
            ["document.issued", "document.recalled", "document.replaced"]
                .contains(&d["kind"].as_str().unwrap())
        })
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(told, fed);
    let replied: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["kind"] == "document.replied")
        .collect();
    assert_eq!(
        replied.len(),
        outcome.replies.len(),
        "one message per reply"
    );
    assert!(replied.iter().all(|d| d["doc"] == outcome.plan.as_str()));
    assert!(deliveries.iter().any(|d| d["kind"] == "document.received"));
    // Per document, attempts follow log order: no message of a document
    // went out while an earlier one of it was still unanswered.
    let mut per_doc: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in &log {
        per_doc
            .entry(e["doc"].as_str().unwrap())
            .or_default()
            .push(e["cursor"].as_u64().unwrap());
    }
    for (doc, cursors) in &per_doc {
        assert!(
            cursors.windows(2).all(|w| w[0] <= w[1]),
            "{doc}: {cursors:?}"
        );
    }
    // The first message's attempts: 500, 500, 500…, then 204, each gap
    // at least half the doubled delay (jitter takes off at most half).
    let first = deliveries
        .iter()
        .find(|d| d["tries"].as_u64().unwrap() >= 4)
        .expect("a delivery retried three times");
    let attempts = first["attempts"].as_array().unwrap();
    let statuses: Vec<u64> = attempts
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&204), "{statuses:?}");
    assert!(statuses[..3].iter().all(|s| *s == 500), "{statuses:?}");
    let at: Vec<chrono::DateTime<chrono::Utc>> = attempts
        .iter()
        .map(|a| a["at"].as_str().unwrap().parse().unwrap())
        .collect();
    for (n, w) in at.windows(2).enumerate().take(3) {
        let gap = (w[1] - w[0]).num_milliseconds();
        let floor = (200 << n) / 2;
        assert!(gap >= floor, "gap {n} is {gap} ms, under {floor}: {at:?}");
    }
}

fn client_token() -> String {
    let pem = std::fs::read(keys_dir().join("jwt/jwt.key")).unwrap();
    vanthu::http::auth::mint_client(
        &pem,
        "cong-thong-tin",
        &["feed:read".to_owned()],
        chrono::Duration::hours(1),
    )
    .unwrap()
}

/// Bad subscriptions are refused with 4xx and record nothing; only admins
/// manage webhooks and the delivery log.
#[tokio::test]
async fn bad_subscriptions_are_refused_and_write_nothing() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let r = api
        .post(
            "quan-tri",
            "/v1/org/events",
            json!({"type": "client_registered", "id": "chi-doc-to-chuc", "name": "Org only",
                   "scopes": ["org:read"], "at": chrono::Utc::now()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let head = api.head().await;
    let good = json!({ "id": "hook", "client": "cong-thong-tin", "url": "https://portal.example.vn/hooks", "events": ["document.issued"] });
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        ("not an admin", "ubnd-van-thu", good.clone(), 403),
        (
            "unknown kind",
            "quan-tri",
            with("events", json!(["document.drafted"])),
            422,
        ),
        ("no kinds", "quan-tri", with("events", json!([])), 422),
        (
            "a kind twice",
            "quan-tri",
            with("events", json!(["document.issued", "document.issued"])),
            422,
        ),
        (
            "plain http beyond this machine",
            "quan-tri",
            with("url", json!("http://portal.example.vn/hooks")),
            422,
        ),
        (
            "credentials in the URL",
            "quan-tri",
            with("url", json!("https://u:p@portal.example.vn/hooks")),
            422,
        ),
        (
            "not a URL",
            "quan-tri",
            with("url", json!("portal/hooks")),
            422,
        ),
        (
            "ftp",
            "quan-tri",
            with("url", json!("ftp://portal.example.vn/")),
            422,
        ),
        (
            "unknown client",
            "quan-tri",
            with("client", json!("khong-co")),
            422,
        ),
        (
            "a client without the feed",
            "quan-tri",
            with("client", json!("chi-doc-to-chuc")),
            422,
        ),
        (
            "an official is no client",
            "quan-tri",
            with("client", json!("ubnd-van-thu")),
            422,
        ),
        (
            "unknown agency",
            "quan-tri",
            with("agencies", json!(["BXD"])),
            422,
        ),
        ("bad id", "quan-tri", with("id", json!("-hook")), 422),
        (
            "unknown field",
            "quan-tri",
            with("secret", json!("whsec_AAAA")),
            400,
        ),
        (
            "events not a list",
            "quan-tri",
            with("events", json!("document.issued")),
            400,
        ),
    ];
    for (what, who, body, status) in cases {
        let r = api.post(who, "/v1/admin/webhooks", body).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{what}"
        );
    }
    let r = api
        .send(
            api.request("quan-tri", reqwest::Method::POST, "/v1/admin/webhooks")
                .header("content-type", "application/json")
                .body("{\"id\": "),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        api.head().await,
        head,
        "a refused subscription wrote to the log"
    );
    // Reads and re-drives: admins only; unknown ids are 404.
    for (who, path, method, status) in [
        (
            "ubnd-van-thu",
            "/v1/admin/webhooks",
            reqwest::Method::GET,
            403,
        ),
        (
            "ubnd-van-thu",
            "/v1/admin/deliveries/msg_x/retry",
            reqwest::Method::POST,
            403,
        ),
        (
            "quan-tri",
            "/v1/admin/deliveries/msg_x/retry",
            reqwest::Method::POST,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/deliveries/msg_x",
            reqwest::Method::GET,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/webhooks/khong-co",
            reqwest::Method::GET,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/webhooks/khong-co/secret",
            reqwest::Method::GET,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/webhooks/khong-co/rotate",
            reqwest::Method::POST,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/webhooks/khong-co",
            reqwest::Method::DELETE,
            404,
        ),
        (
            "quan-tri",
            "/v1/admin/webhooks/khong-co/deliveries",
            reqwest::Method::GET,
            404,
        ),
    ] {
        let r = api.send(api.request(who, method.clone(), path)).await;
        assert_eq!(r.status, status, "{method} {path} as {who}: {}", r.body);
    }
    assert_eq!(api.head().await, head, "a refused request wrote to the log");
    // The good one, twice: the second is refused.
    let r = api
        .post("quan-tri", "/v1/admin/webhooks", good.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .post("quan-tri", "/v1/admin/webhooks", good.clone())
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Ended, its id stays taken.
    let r = api
        .send(api.request(
            "quan-tri",
            reqwest::Method::DELETE,
            "/v1/admin/webhooks/hook",
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.post("quan-tri", "/v1/admin/webhooks", good).await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Webhooks are not organisation events an admin posts by hand.
    let head = api.head().await;
    let r = api
        .post(
            "quan-tri",
            "/v1/org/events",
            json!({"type": "webhook_subscribed", "id": "by-hand", "client": "cong-thong-tin",
                   "url": "https://p.example.vn/", "events": ["document.issued"], "at": chrono::Utc::now()}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(api.head().await, head);
    for q in ["status=lost", "limit=0", "limit=501", "after=msg_nobody"] {
        let r = api
            .get(
                "quan-tri",
                &format!("/v1/admin/webhooks/hook/deliveries?{q}"),
            )
            .await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
    }
}

/// A receiver that keeps failing turns its deliveries into dead letters
/// after the maximum age; once it is fixed an admin re-drives one and it
/// arrives. A rotated secret signs beside the old one; an ended webhook
/// gets nothing more.
#[tokio::test]
async fn dead_letters_are_re_driven_and_secrets_rotate() {
    let _limit = crate::helpers::time_limit();
    let receiver = Receiver::start();
    receiver.set("mode", "500");
    let api = Api::start(&[
        ("VANTHU_WEBHOOKS_RETRY_BASE_MS", "100"),
        ("VANTHU_WEBHOOKS_RETRY_CAP_SECONDS", "1"),
        ("VANTHU_WEBHOOKS_MAX_AGE_SECONDS", "2"),
        // A pass at least every second.
        ("VANTHU_WEBHOOKS_DEADLINE_CHECK_SECONDS", "1"),
    ]);
    let old = subscribe(&api, "hook", &receiver.url, &["document.issued"]).await;
    receiver.set("secret", &old);
    let (doc, _) = api
        .ubnd_issues(
            "Công văn về lịch tiếp công dân",
            "normal",
            json!([{ "agency": "SNV" }]),
        )
        .await;
    let counts = settled(&api, "hook").await;
    assert_eq!(counts["dead"], 1, "{counts}");
    let dead = delivery_log(&api, "hook", Some("dead")).await;
    assert_eq!(dead.len(), 1);
    let id = dead[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(dead[0]["doc"], doc.as_str());
    let tries = dead[0]["tries"].as_u64().unwrap();
    assert!(tries >= 3, "{}", dead[0]);
    assert!(dead[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == 500));
    // Nothing more is tried once dead: two complete passes since (the
    // first would start an attempt; the second starts after it answered).
    let sent = receiver.answered().len();
    after_activity(&api, 2, 0).await;
    assert_eq!(receiver.answered().len(), sent, "a dead letter was sent");
    let r = api
        .get("quan-tri", &format!("/v1/admin/deliveries/{id}"))
        .await;
    assert_eq!(r.body["tries"], tries, "{}", r.body);
    assert!(delivery_log(&api, "hook", Some("delivered"))
        .await
        .is_empty());

    // Fixed, then re-driven: it arrives, with the same id and body.
    receiver.set("mode", "ok");
    let r = api
        .post(
            "quan-tri",
            &format!("/v1/admin/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["redrives"], 1);
    let counts = settled(&api, "hook").await;
    assert_eq!(
        (counts["delivered"].as_u64(), counts["dead"].as_u64()),
        (Some(1), Some(0))
    );
    let arrived: Vec<Value> = receiver
        .answered()
        .into_iter()
        .filter(|e| e["status"] == 204)
        .collect();
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0]["id"], id.as_str());
    assert_eq!(arrived[0]["verified"], true, "{}", arrived[0]);
    assert_eq!(arrived[0]["body"], dead[0]["body"]);

    // Rotation: both secrets sign for a day, each verifies.
    let r = api
        .post("quan-tri", "/v1/admin/webhooks/hook/rotate", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let r = api.get("quan-tri", "/v1/admin/webhooks/hook/secret").await;
    assert_eq!(r.body["secrets"], json!([new, old]));
    receiver.set("secret", &new);
    api.ubnd_issues("Công văn thứ hai", "normal", json!([{ "agency": "SNV" }]))
        .await;
    receiver
        .wait_for("a message signed twice", |log| {
            log.iter().any(|e| e["signatures"] == 2)
        })
        .await;
    receiver.set("secret", &old);
    api.ubnd_issues("Công văn thứ ba", "normal", json!([{ "agency": "SNV" }]))
        .await;
    settled(&api, "hook").await;
    let twice: Vec<Value> = receiver
        .answered()
        .into_iter()
        .filter(|e| e["signatures"] == 2)
        .collect();
    assert_eq!(twice.len(), 2, "{twice:?}");
    assert!(twice.iter().all(|e| e["verified"] == true), "{twice:?}");

    // Ended: nothing more is made for it.
    let r = api
        .send(api.request(
            "quan-tri",
            reqwest::Method::DELETE,
            "/v1/admin/webhooks/hook",
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let before = receiver.answered().len();
    api.ubnd_issues(
        "Công văn sau khi hủy",
        "normal",
        json!([{ "agency": "SNV" }]),
    )
    .await;
    api.caught_up().await;
    after_activity(&api, 2, 0).await;
    assert_eq!(receiver.answered().len(), before);
    let r = api.get("quan-tri", "/v1/admin/webhooks/hook").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        delivery_log(&api, "hook", None).await.len(),
        3,
        "the log stays readable"
    );
    // An ended webhook's deliveries cannot be re-driven.
    let r = api
        .post(
            "quan-tri",
            &format!("/v1/admin/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// Killed with SIGKILL while a receiver holds requests: after a restart
/// nothing is lost, and only messages that were in flight are sent again,
/// under the ids they first had (the receiver can tell them from new ones).
#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing_and_repeats_only_under_the_same_id() {
    let _limit = crate::helpers::time_limit();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let api = Api::on(dir.path(), &[("VANTHU_WEBHOOKS_RETRY_BASE_MS", "200")]);
    let secret = subscribe(&api, "hook", &receiver.url, &ALL_KINDS).await;
    receiver.set("secret", &secret);
    receiver.set("mode", "ok");
    api.ubnd_issues("Công văn số 0", "normal", json!([{ "agency": "SNV" }]))
        .await;
    settled(&api, "hook").await;
    receiver.set("mode", "slow 3");
    for n in 1..4 {
        api.ubnd_issues(
            &format!("Công văn số {n}"),
            "normal",
            json!([{ "agency": "SNV" }]),
        )
        .await;
    }
    api.caught_up().await;
    receiver
        .wait_for("a request in flight", |log| {
            log.iter().any(|e| e["phase"] == "start")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_flight: BTreeSet<String> = receiver
        .lines()
        .iter()
        .filter(|e| e["phase"] == "start")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    api.server.signal("-KILL");
    drop(api);
    receiver.set("mode", "ok");
    // The receiver answers the dead server's request, to nobody.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = Api::on(dir.path(), &[("VANTHU_WEBHOOKS_RETRY_BASE_MS", "200")]);
    let counts = settled(&api, "hook").await;
    let deliveries = delivery_log(&api, "hook", None).await;
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    assert_eq!(counts["delivered"], 4, "{counts}");
    let log = receiver.answered();
    let mut seen: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for e in &log {
        assert_eq!(e["verified"], true, "{e}");
        seen.entry(e["id"].as_str().unwrap()).or_default().push(e);
    }
    let ids: BTreeSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        ids,
        "nothing lost, nothing extra"
    );
    let repeated: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(!repeated.is_empty(), "the message in flight was sent again");
    for (id, copies) in &repeated {
        assert!(
            in_flight.contains(**id),
            "{id} repeated but was not in flight: {in_flight:?}"
        );
        assert!(copies.iter().all(|c| c["body"] == copies[0]["body"]));
    }
}

/// Reply deadlines reach a webhook when they come due soon and when they
/// pass, once each however often they are checked, and only for
/// deadlines still open.
#[tokio::test]
async fn deadlines_due_soon_and_overdue_are_told_once_each() {
    let _limit = crate::helpers::time_limit();
    let receiver = Receiver::start();
    receiver.set("mode", "ok");
    let api = Api::start(&[
        ("VANTHU_DEV_CLOCK", "true"),
        ("VANTHU_WEBHOOKS_DEADLINE_CHECK_SECONDS", "1"),
        ("VANTHU_WEBHOOKS_MAX_AGE_SECONDS", "315360000"),
    ]);
    let secret = subscribe(
        &api,
        "hook",
        &receiver.url,
        &["deadline.due_soon", "deadline.overdue"],
    )
    .await;
    receiver.set("secret", &secret);
    // Due in 10 working days: neither due soon nor overdue yet.
    let (far, _) = api
        .ubnd_issues(
            "Công văn xin ý kiến",
            "normal",
            json!([{ "agency": "SNV", "reply_within_working_days": 10 }, { "agency": "STTTT", "reply_within_working_days": 10 }]),
        )
        .await;
    settled(&api, "hook").await;
    // Two complete checks since, and what they made sent.
    after_activity(&api, 0, 2).await;
    settled(&api, "hook").await;
    assert!(receiver.answered().is_empty(), "{:?}", receiver.answered());
    // A day at a time (whatever holidays the calendar has ahead) until
    // both are due soon.
    let due_soon = |log: &[Value]| {
        log.iter()
            .filter(|e| e["type"] == "deadline.due_soon")
            .count()
    };
    let days = advance_until(&api, &receiver, |log| due_soon(log) == 2).await;
    assert!(days >= 5, "due soon after only {days} days");
    assert!(receiver
        .lines()
        .iter()
        .all(|e| e["type"] == "deadline.due_soon"));
    // SNV replies; then the deadline passes: overdue for STTTT only.
    let r = api.receive(&far, "snv-van-thu", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .assign(
            &far,
            "snv-pgd-1",
            json!({ "lead": "VP", "instruction": "Chủ trì trả lời" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = api
        .signed(
            "snv-cv-vp",
            "snv-giam-doc",
            "",
            "BC",
            json!([{ "agency": "UBND" }]),
        )
        .await;
    assert_eq!(api.issue(&reply, "snv-van-thu").await.status, 200);
    let r = api
        .post(
            "snv-cv-vp",
            &format!("/v1/documents/{far}/replies"),
            json!({ "reply": reply }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.caught_up().await;
    advance_until(&api, &receiver, |log| {
        log.iter().any(|e| e["type"] == "deadline.overdue")
    })
    .await;
    // More checks and days change nothing.
    api.post("quan-tri", "/v1/dev/clock", json!({ "days": 3 }))
        .await;
    after_activity(&api, 0, 2).await;
    settled(&api, "hook").await;
    let log = receiver.answered();
    let told: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            (
                e["type"].as_str().unwrap().to_owned(),
                body["data"]["deadline"]["agency"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let want = [
        ("deadline.due_soon", "SNV"),
        ("deadline.due_soon", "STTTT"),
        ("deadline.overdue", "STTTT"),
    ];
    let mut got = told.clone();
    got.sort();
    assert_eq!(
        got,
        want.map(|(k, a)| (k.to_owned(), a.to_owned())).to_vec(),
        "{told:?}"
    );
    assert!(log
        .iter()
        .all(|e| e["verified"] == true && e["doc"] == far.as_str()));
}

/// Moves the development clock a day at a time (at most 60) until the
/// receiver's log satisfies `done`, waiting for a deadline check after
/// each step; how many days it took.
async fn advance_until(api: &Api, receiver: &Receiver, done: impl Fn(&[Value]) -> bool) -> u32 {
    for day in 1..=60 {
        let r = api
            .post("quan-tri", "/v1/dev/clock", json!({ "days": 1 }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        // A check runs every second.
        for _ in 0..14 {
            if done(&receiver.lines()) {
                return day;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("nothing after 60 days: {:#?}", receiver.lines());
}

/// A receiver that refuses a message for good (a 4xx other than 408, 425
/// and 429) makes it a dead letter at once, and the attempt keeps what the
/// receiver said; a 429 is tried again (D6).
#[tokio::test]
async fn a_permanent_refusal_is_a_dead_letter_at_once_keeping_the_receivers_problem() {
    let _limit = crate::helpers::time_limit();
    let receiver = Receiver::start();
    receiver.set("mode", "422");
    receiver.set(
        "problem",
        r#"{"type": "about:blank", "title": "Unprocessable", "status": 422, "detail": "thiếu trường số hiệu"}"#,
    );
    let api = Api::start(&[
        ("VANTHU_WEBHOOKS_RETRY_BASE_MS", "100"),
        ("VANTHU_WEBHOOKS_RETRY_CAP_SECONDS", "1"),
        ("VANTHU_WEBHOOKS_MAX_AGE_SECONDS", "315360000"),
    ]);
    let secret = subscribe(&api, "hook", &receiver.url, &["document.issued"]).await;
    receiver.set("secret", &secret);
    api.ubnd_issues(
        "Công văn bị từ chối",
        "normal",
        json!([{ "agency": "SNV" }]),
    )
    .await;
    let counts = settled(&api, "hook").await;
    assert_eq!(counts["dead"], 1, "{counts}");
    let dead = delivery_log(&api, "hook", Some("dead")).await;
    assert_eq!(dead[0]["tries"], 1, "{}", dead[0]);
    let attempt = &dead[0]["attempts"][0];
    assert_eq!(attempt["status"], 422, "{attempt}");
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.contains("thiếu trường số hiệu") && error.contains("422"),
        "{error}"
    );

    // Too many requests: tried again, then delivered.
    receiver.set("mode", "429");
    receiver.set("problem", "");
    let (doc, _) = api
        .ubnd_issues("Công văn gửi lại", "normal", json!([{ "agency": "SNV" }]))
        .await;
    receiver
        .wait_for("two 429s of one message", |log| {
            log.iter()
                .filter(|e| e["doc"] == doc.as_str() && e["status"] == 429)
                .count()
                >= 2
        })
        .await;
    receiver.set("mode", "ok");
    let counts = settled(&api, "hook").await;
    assert_eq!(
        (counts["delivered"].as_u64(), counts["dead"].as_u64()),
        (Some(1), Some(1)),
        "{counts}"
    );
}
