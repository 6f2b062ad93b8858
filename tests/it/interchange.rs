//! Two provinces' servers exchange documents as edXML packages (QCVN
//! 102:2016) through the outbox: A issues a plan to an agency of B, B takes
//! the package (its signatures verified offline against B's trust) as
//! arrived for its clerk, and status 01 comes back to A's deadline view; B
//! down a while loses nothing. Hostile or unauthenticated posts are
//! refused and write nothing.

use std::time::Duration;

use serde_json::{json, Value};
use vanthu::webhooks::{signature_header, WebhookSecret};

use crate::helpers::{free_port, Api, TestServer};

/// Server `system` on `port`, peer of `other` on `other_port`, both
/// signing with the secret in `key`; `other`'s log is known by `log_key`
/// (or not at all).
#[allow(clippy::too_many_arguments)]
fn province(
    dir: &std::path::Path,
    port: u16,
    system: &str,
    other: &str,
    other_port: u16,
    key: &std::path::Path,
    third: &std::path::Path,
    log_key: Option<&std::path::Path>,
) -> Api {
    let log_key = log_key
        .map(|k| format!(r#", log_key_file = "{}""#, k.display()))
        .unwrap_or_default();
    // And a third system, Hà Nội, with its own secret (nobody listens there).
    let peers = format!(
        r#"[{{ id = "{other}", url = "http://127.0.0.1:{other_port}/v1/interchange/inbound", key_file = "{}"{log_key} }},
            {{ id = "ha-noi", url = "http://127.0.0.1:9/v1/interchange/inbound", key_file = "{}" }}]"#,
        key.display(),
        third.display()
    );
    Api::of(TestServer::spawn_on(
        dir,
        &format!("127.0.0.1:{port}"),
        &[
            ("VANTHU_INTERCHANGE_SYSTEM", system),
            ("VANTHU_INTERCHANGE_PEERS", &peers),
            ("VANTHU_WEBHOOKS_RETRY_BASE_MS", "200"),
            ("VANTHU_WEBHOOKS_RETRY_CAP_SECONDS", "2"),
            ("VANTHU_WEBHOOKS_DEADLINE_CHECK_SECONDS", "1"),
            ("VANTHU_DEV_CLOCK", "true"),
        ],
    ))
}

/// B, Hà Tĩnh, on `port`, with A (Nghệ An) on `a_port` as its peer.
fn ha_tinh(
    dir: &std::path::Path,
    port: u16,
    a_port: u16,
    key: &std::path::Path,
    third: &std::path::Path,
    log_key: Option<&std::path::Path>,
) -> Api {
    province(dir, port, "ha-tinh", "nghe-an", a_port, key, third, log_key)
}

/// The development log's verifier key: both provinces' logs sign with it
/// in these tests.
fn dev_log_key() -> std::path::PathBuf {
    crate::helpers::committed_keys_dir().join("log/log.vkey")
}

/// Records organisation events as the demo's admin.
async fn org(api: &Api, events: Vec<Value>) {
    for e in events {
        let r = api.post("quan-tri", "/v1/org/events", e).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// A (Nghệ An, 000.00.00.H40) and B (Hà Tĩnh, 000.00.00.H42), each knowing
/// the other's People's Committee as an external agency.
struct Pair {
    a: Api,
    b: Api,
    b_dir: tempfile::TempDir,
    b_port: u16,
    a_port: u16,
    secret: WebhookSecret,
    key: tempfile::NamedTempFile,
    third: WebhookSecret,
    third_key: tempfile::NamedTempFile,
    /// A's log key as B knows it, if it does.
    log_key: Option<std::path::PathBuf>,
    _a_dir: tempfile::TempDir,
}

async fn pair() -> Pair {
    pair_with(Some(dev_log_key())).await
}

/// A and B, B knowing A's log by the verifier key in `log_key`, or not.
async fn pair_with(log_key: Option<std::path::PathBuf>) -> Pair {
    let secret = WebhookSecret::generate();
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), secret.expose()).unwrap();
    let third = WebhookSecret::generate();
    let third_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(third_key.path(), third.expose()).unwrap();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_port, b_port) = (free_port(), free_port());
    let a = province(
        a_dir.path(),
        a_port,
        "nghe-an",
        "ha-tinh",
        b_port,
        key.path(),
        third_key.path(),
        Some(&dev_log_key()),
    );
    let b = ha_tinh(
        b_dir.path(),
        b_port,
        a_port,
        key.path(),
        third_key.path(),
        log_key.as_deref(),
    );
    org(
        &a,
        vec![
            json!({"type": "agency_identified", "agency": "UBND", "organ_id": "000.00.00.H40", "at": now()}),
            json!({"type": "external_agency_registered", "code": "HTUBND", "name": "UBND tỉnh Hà Tĩnh",
                   "organ_id": "000.00.00.H42", "peer": "ha-tinh", "at": now()}),
            json!({"type": "external_agency_registered", "code": "HTSNV", "name": "Sở Nội vụ tỉnh Hà Tĩnh",
                   "organ_id": "000.01.00.H42", "peer": "ha-tinh", "at": now()}),
        ],
    )
    .await;
    org(
        &b,
        vec![
            json!({"type": "agency_identified", "agency": "UBND", "organ_id": "000.00.00.H42", "at": now()}),
            json!({"type": "agency_identified", "agency": "SNV", "organ_id": "000.01.00.H42", "at": now()}),
            json!({"type": "external_agency_registered", "code": "NAUBND", "name": "UBND tỉnh Nghệ An",
                   "organ_id": "000.00.00.H40", "peer": "nghe-an", "at": now()}),
            json!({"type": "external_agency_registered", "code": "HNUBND", "name": "UBND thành phố Hà Nội",
                   "organ_id": "000.00.00.H01", "peer": "ha-noi", "at": now()}),
        ],
    )
    .await;
    Pair {
        a,
        b,
        b_dir,
        b_port,
        a_port,
        secret,
        key,
        third,
        third_key,
        log_key,
        _a_dir: a_dir,
    }
}

/// How many passes A's outbox completed (`GET /readyz`).
async fn outbox_passes(api: &Api) -> u64 {
    let r = api
        .send(api.http.get(format!("{}/readyz", api.server.url)))
        .await;
    r.body["outbox"]["passes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no outbox.passes in /readyz: {}", r.body))
}

/// B's arrivals for its People's Committee, once there are `n`.
async fn arrivals(b: &Api, n: usize) -> Vec<Value> {
    arrivals_of(b, "ubnd-van-thu", "UBND", n).await
}

/// B's arrivals for `agency` as its clerk `clerk` reads them, once there
/// are `n`.
async fn arrivals_of(b: &Api, clerk: &str, agency: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let r = b
            .get(clerk, &format!("/v1/interchange/arrivals?agency={agency}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.body["arrivals"].as_array().unwrap().clone();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("B never had {n} arrivals");
}

/// A's follow-up row for Hà Tĩnh on document `doc`, once it shows `code`.
async fn reported(a: &Api, doc: &str, code: &str) -> Value {
    for _ in 0..300 {
        let r = a.get("ubnd-van-thu", "/v1/deadlines?issuer=UBND").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let row = r.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["doc"] == doc && row["agency"] == "HTUBND")
            .cloned();
        if let Some(row) = row {
            if row["interchange"]["code"] == code {
                return row;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("A never saw status {code} for {doc}");
}

#[tokio::test]
async fn a_plan_travels_to_another_province_and_its_arrival_comes_back() {
    let _limit = crate::helpers::time_limit();
    let p = pair().await;
    // An integration at A follows overdue replies.
    follows(&p.a, "theo-doi", &["deadline.overdue"]).await;
    let (doc, _) =
        p.a.ubnd_issues(
            "Kế hoạch phối hợp liên tỉnh về phòng chống thiên tai",
            "normal",
            json!([{ "agency": "SNV" }, { "agency": "HTUBND", "reply_within_working_days": 5 },
                   { "agency": "HTSNV", "reply_within_working_days": 5 }]),
        )
        .await;
    let rows = arrivals(&p.b, 1).await;
    let row = &rows[0];
    assert_eq!(row["from_agency"], "NAUBND");
    assert_eq!(row["from_organ"], "000.00.00.H40");
    assert_eq!(
        row["subject"],
        "Kế hoạch phối hợp liên tỉnh về phòng chống thiên tai"
    );
    assert_eq!(row["authority"], "TM.");
    assert_eq!(row["signer"], "ubnd-chu-tich");
    assert_eq!(row["status"], "01");
    assert!(row["due_date"].as_str().is_some(), "{row}");
    assert_eq!(row["files"].as_array().unwrap().len(), 1);
    // The file B holds is the one A's chairman signed.
    let a_doc =
        p.a.get("ubnd-van-thu", &format!("/v1/documents/{doc}"))
            .await;
    assert_eq!(
        row["files"][0]["sha256"], a_doc.body["content"][0]["sha256"],
        "{}",
        a_doc.body
    );
    // Another agency's clerk at B does not see it; B's Department of Home
    // Affairs got its own package of the same document.
    let r =
        p.b.get("snv-van-thu", "/v1/interchange/arrivals?agency=UBND")
            .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let theirs = arrivals_of(&p.b, "snv-van-thu", "SNV", 1).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["subject"], row["subject"]);
    // B's Department refuses the document with a reason: 02 comes back to
    // A on that recipient's row. Refused: no reason, another agency's
    // clerk, an agency it was not sent to, twice.
    assert_eq!(theirs[0]["document"], theirs[0]["arrival"]);
    // It owes A a reply: on B's Department's deadlines until refused.
    let owed = |body: &Value| {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["doc"] == theirs[0]["document"])
    };
    let r = p.b.get("snv-van-thu", "/v1/deadlines?agency=SNV").await;
    assert!(owed(&r.body), "{}", r.body);
    let back = format!(
        "/v1/documents/{}/refusals",
        theirs[0]["document"].as_str().unwrap()
    );
    let b_head = p.b.head().await;
    for (who, body, status) in [
        (
            "snv-van-thu",
            json!({ "agency": "SNV", "reason": "  " }),
            422,
        ),
        ("snv-van-thu", json!({ "agency": "SNV" }), 400),
        (
            "ubnd-van-thu",
            json!({ "agency": "SNV", "reason": "Không thuộc thẩm quyền" }),
            403,
        ),
        (
            "snv-van-thu",
            json!({ "agency": "UBND", "reason": "Không thuộc thẩm quyền" }),
            422,
        ),
    ] {
        let r = p.b.post(who, &back, body).await;
        assert_eq!(r.status, status, "{who}: {}", r.body);
    }
    assert_eq!(p.b.head().await, b_head, "a refused refusal wrote");
    let r =
        p.b.post(
            "snv-van-thu",
            &back,
            json!({ "agency": "SNV", "reason": "Không thuộc thẩm quyền của Sở" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r =
        p.b.post(
            "snv-van-thu",
            &back,
            json!({ "agency": "SNV", "reason": "lần nữa" }),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let theirs = arrivals_of(&p.b, "snv-van-thu", "SNV", 1).await;
    assert_eq!(theirs[0]["status"], "02", "{theirs:?}");
    for _ in 0..100 {
        let r = p.b.get("snv-van-thu", "/v1/deadlines?agency=SNV").await;
        if !owed(&r.body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = p.b.get("snv-van-thu", "/v1/deadlines?agency=SNV").await;
    assert!(!owed(&r.body), "refused, no reply is owed: {}", r.body);
    // Refused, it can no longer be received.
    let r =
        p.b.receive(
            theirs[0]["document"].as_str().unwrap(),
            "snv-van-thu",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    for _ in 0..300 {
        let a_doc =
            p.a.get("ubnd-van-thu", &format!("/v1/documents/{doc}"))
                .await;
        if a_doc.body["interchange"]["HTSNV"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["code"] == "02"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a_doc =
        p.a.get("ubnd-van-thu", &format!("/v1/documents/{doc}"))
            .await;
    let statuses = &a_doc.body["interchange"]["HTSNV"];
    assert!(
        statuses.as_array().is_some_and(|s| s
            .iter()
            .any(|x| x["code"] == "02" && x["description"] == "Không thuộc thẩm quyền của Sở")),
        "{}",
        a_doc.body
    );

    // Sent again (an admin re-drives A's delivery): B takes it once.
    let sent = deliveries(&p.a, "peer:ha-tinh")
        .await
        .into_iter()
        .find(|d| {
            d["kind"] == "edxml.document" && d["doc"] == doc.as_str() && d["status"] == "delivered"
        })
        .expect("the package's delivery");
    let id = sent["id"].as_str().unwrap();
    assert_eq!(
        sent["attempts"].as_array().unwrap().last().unwrap()["status"],
        202
    );
    let r =
        p.a.post(
            "quan-tri",
            &format!("/v1/admin/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let mut again = Value::Null;
    for _ in 0..100 {
        again =
            p.a.get("quan-tri", &format!("/v1/admin/deliveries/{id}"))
                .await
                .body;
        if again["status"] == "delivered" && again["tries"].as_u64() > sent["tries"].as_u64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        again["attempts"].as_array().unwrap().last().unwrap()["status"],
        200,
        "{again}"
    );
    assert_eq!(arrivals(&p.b, 1).await.len(), 1, "taken once");
    // 01 (Đã đến) is back in A's follow-up of the plan.
    let followed = reported(&p.a, &doc, "01").await;
    assert_eq!(followed["interchange"]["name"], "Đã đến");
    let a_doc =
        p.a.get("ubnd-van-thu", &format!("/v1/documents/{doc}"))
            .await;
    assert_eq!(
        a_doc.body["interchange"]["HTUBND"][0]["code"], "01",
        "{}",
        a_doc.body
    );

    // A status message is recorded once per code and recipient, only for a
    // recipient the sending peer speaks for, and only when it fits the
    // document's state (D14: no 06 before 03, no 15 without a recall).
    let status = |from: &str, code: &str| {
        vanthu::interchange::edxml::MessageStatus {
            response_for: vanthu::interchange::edxml::ResponseFor {
                organ_id: "000.00.00.H40".into(),
                document_id: doc.clone(),
                ..Default::default()
            },
            from: vanthu::interchange::edxml::Organ {
                organ_id: from.into(),
                ..Default::default()
            },
            status_code: code.into(),
            description: "Đã vào sổ".into(),
            timestamp: vanthu::interchange::edxml::write_timestamp(chrono::Utc::now()),
            ..Default::default()
        }
        .to_xml()
        .into_bytes()
    };
    let a_head = p.a.head().await;
    for (from, code, answer) in [
        ("000.00.00.H42", "06", 409),
        ("000.00.00.H42", "15", 409),
        ("000.00.00.H42", "03", 202),
        ("000.00.00.H42", "03", 200),
        ("000.00.00.H40", "04", 403),
    ] {
        let r =
            p.a.send(signed_post(
                &p.a,
                &p.secret,
                "ha-tinh",
                "application/xml",
                status(from, code),
            ))
            .await;
        assert_eq!(r.status, answer, "{from} {code}: {}", r.body);
        if answer == 409 {
            assert_eq!(r.body["field"], "StatusCode", "{}", r.body);
        }
    }
    assert_eq!(p.a.head().await, a_head + 1, "one status recorded");
    reported(&p.a, &doc, "03").await;

    // B down a while (several retries at A's 200 ms base): the next plan
    // waits in A's outbox, then arrives once.
    let Pair {
        a,
        b,
        b_dir,
        b_port,
        a_port,
        key,
        third_key,
        log_key,
        ..
    } = p;
    drop(b);
    let (second, _) = a
        .ubnd_issues(
            "Kế hoạch thứ hai",
            "normal",
            json!([{ "agency": "HTUBND", "reply_within_working_days": 5 }]),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = ha_tinh(
        b_dir.path(),
        b_port,
        a_port,
        key.path(),
        third_key.path(),
        log_key.as_deref(),
    );
    let rows = arrivals(&b, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    reported(&a, &second, "01").await;
    // Not sent again: after at least one whole pass of A's outbox since
    // (the one under way now may have started before the answer).
    let since = outbox_passes(&a).await;
    for _ in 0..300 {
        if outbox_passes(&a).await >= since + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        outbox_passes(&a).await >= since + 2,
        "A's outbox made no pass"
    );
    let r = b
        .get("ubnd-van-thu", "/v1/interchange/arrivals?agency=UBND")
        .await;
    assert_eq!(
        r.body["arrivals"].as_array().unwrap().len(),
        2,
        "no duplicate: {}",
        r.body
    );

    // Days pass at A: the plan's reply is overdue for B's People's
    // Committee, which took it in, not for B's Department, which refused it.
    let overdue = |told: &[Value]| -> Vec<String> {
        told.iter()
            .map(|d| serde_json::from_str::<Value>(d["body"].as_str().unwrap()).unwrap())
            .filter(|m| m["data"]["document"]["doc"] == doc.as_str())
            .map(|m| m["data"]["deadline"]["agency"].as_str().unwrap().to_owned())
            .collect()
    };
    for _ in 0..30 {
        let r = a
            .post("quan-tri", "/v1/dev/clock", json!({ "days": 1 }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if !overdue(&deliveries(&a, "theo-doi").await).is_empty() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let told = deliveries(&a, "theo-doi").await;
    assert_eq!(overdue(&told), ["HTUBND"], "{told:?}");
}

#[tokio::test]
async fn a_package_whose_checkpoint_the_peers_log_key_did_not_sign_is_refused() {
    let _limit = crate::helpers::time_limit();
    // B knows A's log under A's log name, but by another key.
    let dev = std::fs::read_to_string(dev_log_key()).unwrap();
    let name = dev.trim().split('+').next().unwrap().to_owned();
    let seed: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(uuid::Uuid::now_v7().as_bytes()).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        wrong.path(),
        vanthu::crypto::note::verifier_key(&name, &public),
    )
    .unwrap();
    let p = pair_with(Some(wrong.path().to_owned())).await;
    let b_head = p.b.head().await;
    let (doc, _) =
        p.a.ubnd_issues(
            "Kế hoạch với nhật ký không nhận ra",
            "normal",
            json!([{ "agency": "HTUBND" }]),
        )
        .await;
    // A's package is refused for good: a dead letter at once, keeping B's
    // problem; B takes nothing.
    let mut refused = Value::Null;
    for _ in 0..300 {
        refused = deliveries(&p.a, "peer:ha-tinh")
            .await
            .into_iter()
            .find(|d| d["doc"] == doc.as_str() && d["status"] == "dead")
            .unwrap_or(Value::Null);
        if !refused.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let attempts = refused["attempts"].as_array().expect("one attempt");
    assert_eq!(attempts.len(), 1, "{refused}");
    assert_eq!(attempts[0]["status"], 422, "{refused}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"status\":422")),
        "B's problem is kept: {refused}"
    );
    assert_eq!(p.b.head().await, b_head, "a refused package wrote");
}

/// A copy of the package A sent B for arrival `row` (`title` its file's
/// text), under `document_id`, its header saying `to` and `due`: the
/// sealed evidence and file as they came, the header rewritten.
async fn rewritten(
    b: &Api,
    row: &Value,
    title: &str,
    document_id: &str,
    to: &[&str],
    due: &str,
) -> Vec<u8> {
    use vanthu::interchange::edxml;
    let id = row["document"].as_str().unwrap();
    let bundle = b
        .get("ubnd-van-thu", &format!("/v1/documents/{id}/bundle"))
        .await;
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    let (number, symbol) = row["reference"].as_str().unwrap().split_once('/').unwrap();
    edxml::Package {
        header: edxml::MessageHeader {
            from: edxml::Organ {
                organ_id: "000.00.00.H40".into(),
                ..Default::default()
            },
            to: to
                .iter()
                .map(|o| edxml::Organ {
                    organ_id: (*o).into(),
                    ..Default::default()
                })
                .collect(),
            code: edxml::Code {
                code_number: number.into(),
                code_notation: symbol.into(),
            },
            promulgation_info: edxml::PromulgationInfo {
                place: "Nghệ An".into(),
                promulgation_date: row["promulgation_date"].as_str().unwrap().into(),
            },
            subject: title.into(),
            due_date: Some(due.into()),
            document_id: document_id.into(),
            ..Default::default()
        },
        trace: Default::default(),
        attachments: vec![
            edxml::Attachment {
                content_id: "1".into(),
                name: "cong-van.txt".into(),
                content_type: "text/plain".into(),
                description: String::new(),
                bytes: title.as_bytes().to_vec(),
            },
            edxml::Attachment {
                content_id: "2".into(),
                name: "vanthu-bundle.json".into(),
                content_type: "application/vnd.vanthu.bundle+json".into(),
                description: String::new(),
                bytes: serde_json::to_vec(&bundle.body).unwrap(),
            },
        ],
    }
    .to_xml()
    .into_bytes()
}

/// D3: a package's recipients and reply deadline are the sealed ones. A
/// header saying otherwise is refused when B knows A's log key; else it is
/// taken as sealed, and the difference shown.
#[tokio::test]
async fn a_header_that_disagrees_with_the_sealed_evidence_is_refused_or_shown() {
    let _limit = crate::helpers::time_limit();
    for log_key in [Some(dev_log_key()), None] {
        let known = log_key.is_some();
        let p = pair_with(log_key).await;
        let title = "Kế hoạch có hạn trả lời";
        p.a.ubnd_issues(
            title,
            "normal",
            json!([{ "agency": "HTUBND", "reply_within_working_days": 5 }]),
        )
        .await;
        let row = arrivals(&p.b, 1).await.remove(0);
        let sealed_due = row["due_date"]
            .as_str()
            .expect("a sealed deadline")
            .to_owned();
        assert!(row.get("unsealed").is_none(), "{row}");
        let head = p.b.head().await;
        let post = |body: Vec<u8>| {
            p.b.send(signed_post(
                &p.b,
                &p.secret,
                "nghe-an",
                "application/xml",
                body,
            ))
        };
        // Two days to reply, and B's Department of Home Affairs added.
        let sooner = "2020/01/02";
        let both = ["000.00.00.H42", "000.01.00.H42"];
        if known {
            for (to, due, field) in [
                (&both[..1], sooner, "DueDate"),
                (&both[..], sealed_due.as_str(), "To"),
            ] {
                let body =
                    rewritten(&p.b, &row, title, &format!("rewritten-{field}"), to, due).await;
                let r = post(body).await;
                assert_eq!(r.status, 422, "{field}: {}", r.body);
                assert_eq!(r.body["field"], field, "{}", r.body);
            }
            assert_eq!(p.b.head().await, head, "a refused package wrote");
            continue;
        }
        let body = rewritten(&p.b, &row, title, "rewritten", &both, sooner).await;
        let r = post(body).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let rows = arrivals(&p.b, 2).await;
        let taken = rows
            .iter()
            .find(|r| r["arrival"] != row["arrival"])
            .unwrap();
        assert_eq!(
            taken["due_date"],
            sealed_due.as_str(),
            "the sealed deadline: {taken}"
        );
        let unsealed = taken["unsealed"].as_array().expect("the difference shown");
        assert!(
            unsealed
                .iter()
                .any(|u| u.as_str().unwrap().starts_with("DueDate"))
                && unsealed
                    .iter()
                    .any(|u| u.as_str().unwrap().starts_with("To")),
            "{taken}"
        );
        let doc =
            p.b.get(
                "ubnd-van-thu",
                &format!("/v1/documents/{}", taken["document"].as_str().unwrap()),
            )
            .await;
        assert_eq!(
            doc.body["origin"]["unsealed"], taken["unsealed"],
            "{}",
            doc.body
        );
        let recipients: Vec<&str> = doc.body["issue"]["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["agency"].as_str().unwrap())
            .collect();
        assert_eq!(recipients, ["UBND"], "not the Department: {}", doc.body);
        let r =
            p.b.get("snv-van-thu", "/v1/interchange/arrivals?agency=SNV")
                .await;
        assert_eq!(r.body["arrivals"], json!([]), "{}", r.body);
    }
}

/// Subscribes integration webhook `id` at `api` to `kinds`, at a URL
/// nobody listens on: its delivery log shows what it is told.
async fn follows(api: &Api, id: &str, kinds: &[&str]) {
    crate::webhooks::subscribe(api, id, "http://127.0.0.1:9/hook", kinds).await;
}

/// Webhook (or peer) `webhook`'s deliveries at `api`, as its admin lists
/// them, in order.
async fn deliveries(api: &Api, webhook: &str) -> Vec<Value> {
    let r = api
        .get(
            "quan-tri",
            &format!("/v1/admin/webhooks/{webhook}/deliveries?limit=500"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["deliveries"].as_array().unwrap().clone()
}

/// Document `doc` as `who` at `api` reads it, once `check` holds.
async fn once_it(api: &Api, who: &str, doc: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let r = api.get(who, &format!("/v1/documents/{doc}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if check(&r.body) {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("document {doc} never got there: {last}");
}

/// The status codes `doc` records for external recipient `agency`, in order.
fn codes(doc: &Value, agency: &str) -> Vec<String> {
    doc["interchange"][agency]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| x["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_arrival_is_handled_replied_by_package_and_recalled_both_ways() {
    let _limit = crate::helpers::time_limit();
    let p = pair().await;
    // An integration at B follows receipts and replies.
    follows(&p.b, "tich-hop", &["document.received", "document.replied"]).await;
    let (doc, _) =
        p.a.ubnd_issues(
            "Kế hoạch kiểm tra công tác cải cách hành chính",
            "normal",
            json!([{ "agency": "HTUBND", "reply_within_working_days": 5 }]),
        )
        .await;
    let row = arrivals(&p.b, 1).await.remove(0);
    let here = row["document"].as_str().unwrap().to_owned();
    // At B it is a document from another system, issued by NAUBND, with
    // A's number and its evidence: its outgoing life does not happen here.
    let d =
        p.b.get("ubnd-van-thu", &format!("/v1/documents/{here}"))
            .await;
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["status"], "issued");
    assert_eq!(d.body["agency"], "NAUBND");
    assert_eq!(d.body["origin"]["organ_id"], "000.00.00.H40");
    assert_eq!(d.body["origin"]["document_id"], doc.as_str());
    assert_eq!(d.body["origin"]["competence"], "TM.");
    let a_doc =
        p.a.get("ubnd-van-thu", &format!("/v1/documents/{doc}"))
            .await;
    assert_eq!(
        d.body["issue"]["reference"],
        a_doc.body["issue"]["reference"]
    );
    assert!(
        d.body["recipients"][0]["reply_due"].is_string(),
        "{}",
        d.body
    );
    let bundle =
        p.b.get("ubnd-van-thu", &format!("/v1/documents/{here}/bundle"))
            .await;
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    assert_eq!(bundle.body["seal"]["jws"], a_doc.body["issue"]["seal"]);
    let r =
        p.b.recall(
            &here,
            "ubnd-chu-tich",
            json!({ "reason": "không phải của B" }),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // No recall was asked: nothing to answer.
    let r =
        p.b.post(
            "ubnd-van-thu",
            &format!("/v1/documents/{here}/recall-answers"),
            json!({ "agree": true }),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Received (03, numbered in B's incoming register), assigned (04),
    // replied by a document of B's (its package names A's plan), completed (06).
    let r = p.b.receive(&here, "ubnd-van-thu", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["receipts"]["UBND"]["incoming_number"].as_u64() > Some(0));
    let r =
        p.b.post(
            "ubnd-van-thu",
            &format!("/v1/documents/{here}/refusals"),
            json!({ "reason": "nhầm" }),
        )
        .await;
    assert_eq!(
        r.status, 409,
        "received, it can no longer be refused: {}",
        r.body
    );
    let r =
        p.b.assign(
            &here,
            "ubnd-chu-tich",
            json!({ "lead": "KT", "handler": "ubnd-cv-kt", "instruction": "Chuẩn bị báo cáo" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A second assignment says nothing new to A.
    let r =
        p.b.assign(
            &here,
            "ubnd-chu-tich",
            json!({ "lead": "KT", "instruction": "Chuẩn bị báo cáo, gấp" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (answer, _) =
        p.b.ubnd_issues(
            "Báo cáo kết quả kiểm tra cải cách hành chính",
            "normal",
            json!([{ "agency": "NAUBND" }]),
        )
        .await;
    let r =
        p.b.reply(&here, "ubnd-cv-kt", json!({ "reply": answer }))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = p.b.complete(&here, "ubnd-cv-kt", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // B's integration is told of the receipt and the reply, the external
    // agency as issuer.
    let mut told: Vec<Value> = Vec::new();
    for _ in 0..100 {
        told = deliveries(&p.b, "tich-hop")
            .await
            .iter()
            .map(|d| serde_json::from_str(d["body"].as_str().unwrap()).unwrap())
            .collect();
        if told.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: Vec<&str> = told.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["document.received", "document.replied"], "{told:?}");
    for t in &told {
        assert_eq!(t["data"]["document"]["doc"], here.as_str(), "{t}");
        assert_eq!(t["data"]["document"]["agency"], "NAUBND", "{t}");
    }

    // A sees 01, 03, 04, 06 once each, and the reply on its follow-up.
    let seen = once_it(&p.a, "ubnd-van-thu", &doc, |d| {
        codes(d, "HTUBND").contains(&"06".to_owned())
            && d["replies_by_package"]["HTUBND"].is_array()
    })
    .await;
    assert_eq!(codes(&seen, "HTUBND"), ["01", "03", "04", "06"], "{seen}");
    let b_answer =
        p.b.get("ubnd-van-thu", &format!("/v1/documents/{answer}"))
            .await;
    let replied = &seen["replies_by_package"]["HTUBND"][0];
    assert_eq!(
        replied["reply_reference"],
        b_answer.body["issue"]["reference"]
    );
    assert_eq!(replied["on_time"], true);
    let row = reported(&p.a, &doc, "06").await;
    assert_eq!(row["status"], "replied_on_time", "{row}");
    // The reply arrived at A as a document answering the plan.
    let reply_here = replied["reply"].as_str().unwrap().to_owned();
    let r =
        p.a.get("ubnd-van-thu", &format!("/v1/documents/{reply_here}"))
            .await;
    assert_eq!(r.body["in_reply_to"], doc.as_str(), "{}", r.body);
    assert_eq!(r.body["agency"], "HTUBND");

    // A recalls a second plan sent to both of B's agencies: B's People's
    // Committee agrees (15), B's Department refuses (16), with a reason.
    let (second, _) =
        p.a.ubnd_issues(
            "Kế hoạch bị thu hồi",
            "normal",
            json!([{ "agency": "HTUBND" }, { "agency": "HTSNV" }]),
        )
        .await;
    let ubnd = arrivals(&p.b, 2)
        .await
        .into_iter()
        .find(|r| r["subject"] == "Kế hoạch bị thu hồi")
        .unwrap();
    let snv = arrivals_of(&p.b, "snv-van-thu", "SNV", 1).await.remove(0);
    let (ubnd, snv) = (
        ubnd["document"].as_str().unwrap().to_owned(),
        snv["document"].as_str().unwrap().to_owned(),
    );
    let r =
        p.a.recall(
            &second,
            "ubnd-van-thu",
            json!({ "reason": "Ban hành nhầm" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (who, there) in [("ubnd-van-thu", &ubnd), ("snv-van-thu", &snv)] {
        let d = once_it(&p.b, who, there, |d| {
            d["origin"]["recall_requested"].is_object()
        })
        .await;
        assert_eq!(d["origin"]["recall_requested"]["reason"], "Ban hành nhầm");
    }
    let answer_at = |there: &str| format!("/v1/documents/{there}/recall-answers");
    let b_head = p.b.head().await;
    for (who, there, body, status) in [
        ("snv-van-thu", &snv, json!({ "agree": false }), 422),
        (
            "snv-van-thu",
            &snv,
            json!({ "agree": false, "reason": "x".repeat(1001) }),
            422,
        ),
        ("snv-van-thu", &snv, json!({ "agree": "no" }), 400),
        ("snv-van-thu", &ubnd, json!({ "agree": true }), 403),
        (
            "snv-van-thu",
            &snv,
            json!({ "agree": true, "agency": "UBND" }),
            422,
        ),
    ] {
        let r = p.b.post(who, &answer_at(there), body).await;
        assert_eq!(r.status, status, "{who} {there}: {}", r.body);
    }
    assert_eq!(p.b.head().await, b_head, "a refused answer wrote");
    let r =
        p.b.post("ubnd-van-thu", &answer_at(&ubnd), json!({ "agree": true }))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "recalled");
    let r =
        p.b.post(
            "ubnd-van-thu",
            &answer_at(&ubnd),
            json!({ "agree": false, "reason": "đổi ý" }),
        )
        .await;
    assert_eq!(r.status, 409, "answered once: {}", r.body);
    let r = p.b.receive(&ubnd, "ubnd-van-thu", json!({})).await;
    assert_eq!(r.status, 409, "recalled, it is not received: {}", r.body);
    let r =
        p.b.post(
            "snv-van-thu",
            &answer_at(&snv),
            json!({ "agree": false, "reason": "Đã triển khai thực hiện" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = once_it(&p.a, "ubnd-van-thu", &second, |d| {
        codes(d, "HTUBND").contains(&"15".to_owned())
            && codes(d, "HTSNV").contains(&"16".to_owned())
    })
    .await;
    let refused = seen["interchange"]["HTSNV"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "16")
        .unwrap();
    assert_eq!(refused["description"], "Đã triển khai thực hiện");

    // A's recall went once to each recipient, and the reply's package
    // travelled again once, saying what it answers.
    let log = deliveries(&p.a, "peer:ha-tinh").await;
    let sent = |doc: &str, kind: &str| {
        log.iter()
            .filter(|d| d["doc"] == doc && d["kind"] == kind)
            .count()
    };
    assert_eq!(sent(&second, "edxml.status.13"), 2, "{log:?}");
    // Status messages name the agency as the organisation does.
    assert!(
        log.iter().any(|d| d["kind"] == "edxml.status.13"
            && d["body"]
                .as_str()
                .unwrap()
                .contains("<OrganName>Ủy ban nhân dân tỉnh")),
        "{log:?}"
    );

    // A recipient that refused a document is not asked for it back.
    let (third, _) =
        p.a.ubnd_issues(
            "Kế hoạch thứ ba",
            "normal",
            json!([{ "agency": "HTUBND" }, { "agency": "HTSNV" }]),
        )
        .await;
    let snv_third = arrivals_of(&p.b, "snv-van-thu", "SNV", 2)
        .await
        .into_iter()
        .find(|r| r["subject"] == "Kế hoạch thứ ba")
        .unwrap();
    let r =
        p.b.post(
            "snv-van-thu",
            &format!(
                "/v1/documents/{}/refusals",
                snv_third["document"].as_str().unwrap()
            ),
            json!({ "reason": "Không thuộc thẩm quyền" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    once_it(&p.a, "ubnd-van-thu", &third, |d| {
        codes(d, "HTSNV").contains(&"02".to_owned())
    })
    .await;
    let r =
        p.a.recall(&third, "ubnd-van-thu", json!({ "reason": "Ban hành nhầm" }))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut thirteen = Vec::new();
    for _ in 0..100 {
        thirteen = deliveries(&p.a, "peer:ha-tinh")
            .await
            .iter()
            .filter(|d| d["doc"] == third.as_str() && d["kind"] == "edxml.status.13")
            .map(|d| d["body"].as_str().unwrap().to_owned())
            .collect();
        if !thirteen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(thirteen.len(), 1, "{thirteen:?}");
    let log_b = deliveries(&p.b, "peer:nghe-an").await;
    let replies = log_b
        .iter()
        .filter(|d| d["doc"] == answer.as_str())
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(replies, ["edxml.document", "edxml.reply"], "{log_b:?}");

    // Status messages B refuses, writing nothing: a 13 whose sender is not
    // the document's issuer, a 13 through a peer it did not come from, a
    // status about a document B did not issue (one that arrived).
    let message = |response_organ: &str, from: &str, code: &str, document: &str| {
        vanthu::interchange::edxml::MessageStatus {
            response_for: vanthu::interchange::edxml::ResponseFor {
                organ_id: response_organ.into(),
                document_id: document.into(),
                ..Default::default()
            },
            from: vanthu::interchange::edxml::Organ {
                organ_id: from.into(),
                ..Default::default()
            },
            status_code: code.into(),
            timestamp: vanthu::interchange::edxml::write_timestamp(chrono::Utc::now()),
            ..Default::default()
        }
        .to_xml()
        .into_bytes()
    };
    // B took all of it first: its People's Committee's package of the third
    // plan, and the 13 about it.
    let mut ubnd_third = Value::Null;
    for _ in 0..300 {
        let r =
            p.b.get("ubnd-van-thu", "/v1/interchange/arrivals?agency=UBND")
                .await;
        if let Some(row) = r.body["arrivals"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["subject"] == "Kế hoạch thứ ba"))
        {
            ubnd_third = row["document"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    once_it(&p.b, "ubnd-van-thu", ubnd_third.as_str().unwrap(), |d| {
        !d["origin"]["recall_requested"].is_null()
    })
    .await;
    let b_head = p.b.head().await;
    for (secret, peer, body, answer) in [
        (
            &p.secret,
            "nghe-an",
            message("000.00.00.H01", "000.00.00.H40", "13", &second),
            403,
        ),
        (
            &p.third,
            "ha-noi",
            message("000.00.00.H01", "000.00.00.H01", "13", &second),
            422,
        ),
        (
            &p.secret,
            "nghe-an",
            message("000.00.00.H40", "000.00.00.H40", "03", &here),
            422,
        ),
    ] {
        let r =
            p.b.send(signed_post(&p.b, secret, peer, "application/xml", body))
                .await;
        assert_eq!(r.status, answer, "{peer}: {}", r.body);
    }
    assert_eq!(p.b.head().await, b_head, "a refused status message wrote");

    // The other way: B recalls its reply, and A's clerk agrees.
    let r =
        p.b.recall(&answer, "ubnd-van-thu", json!({ "reason": "Số liệu sai" }))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    once_it(&p.a, "ubnd-van-thu", &reply_here, |d| {
        d["origin"]["recall_requested"].is_object()
    })
    .await;
    let r =
        p.a.post(
            "ubnd-van-thu",
            &answer_at(&reply_here),
            json!({ "agree": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    once_it(&p.b, "ubnd-van-thu", &answer, |d| {
        codes(d, "NAUBND").contains(&"15".to_owned())
    })
    .await;
    // Each status went once: nothing is pending or sent twice at B.
    let log = deliveries(&p.b, "peer:nghe-an").await;
    let kinds: Vec<String> = log
        .iter()
        .filter(|d| d["doc"] == here.as_str())
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "edxml.status.01",
            "edxml.status.03",
            "edxml.status.04",
            "edxml.status.06"
        ],
        "{log:?}"
    );
}

/// A post to `b`'s inbound as peer `peer`, signed with `secret`.
fn signed_post(
    b: &Api,
    secret: &WebhookSecret,
    peer: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let at = chrono::Utc::now().timestamp();
    b.http
        .post(format!("{}/v1/interchange/inbound", b.server.url))
        .header("content-type", content_type)
        .header("vanthu-peer", peer)
        .header("webhook-id", &id)
        .header("webhook-timestamp", at.to_string())
        .header(
            "webhook-signature",
            signature_header(std::slice::from_ref(secret), &id, at, &body),
        )
        .body(body)
}

#[tokio::test]
async fn hostile_and_unauthenticated_packages_are_refused_and_write_nothing() {
    let _limit = crate::helpers::time_limit();
    let p = pair().await;
    let b = &p.b;
    let head = b.head().await;
    let ns = vanthu::interchange::edxml::NS_QCVN;
    // A well-formed package with no evidence: refused as unsigned.
    let unsigned = vanthu::interchange::edxml::Package {
        header: vanthu::interchange::edxml::MessageHeader {
            from: vanthu::interchange::edxml::Organ {
                organ_id: "000.00.00.H40".into(),
                ..Default::default()
            },
            to: vec![vanthu::interchange::edxml::Organ {
                organ_id: "000.00.00.H42".into(),
                ..Default::default()
            }],
            code: vanthu::interchange::edxml::Code {
                code_number: "07".into(),
                code_notation: "CV-UBND".into(),
            },
            promulgation_info: vanthu::interchange::edxml::PromulgationInfo {
                place: "Nghệ An".into(),
                promulgation_date: "2031/03/05".into(),
            },
            subject: "Công văn không ký".into(),
            document_id: "X-unsigned".into(),
            ..Default::default()
        },
        trace: Default::default(),
        attachments: vec![vanthu::interchange::edxml::Attachment {
            content_id: "1".into(),
            name: "cv.txt".into(),
            content_type: "text/plain".into(),
            description: String::new(),
            bytes: b"noi dung".to_vec(),
        }],
    }
    .to_xml();
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><edXML xmlns="{ns}"><edXMLEnvelope>&c;</edXMLEnvelope></edXML>"#
    );
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML xmlns="{ns}"><edXMLEnvelope>&x;</edXMLEnvelope></edXML>"#
    );
    let wrong_ns = unsigned.replace(ns, "http://example.org/other");
    let from_elsewhere = unsigned.replace("000.00.00.H40", "000.00.00.H99");
    let key = &p.secret;
    let other = WebhookSecret::generate();
    // (what, request, status, the field named)
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (
            "billion laughs",
            signed_post(b, key, "nghe-an", "application/xml", laughs.into_bytes()),
            400,
            Some("xml"),
        ),
        (
            "external entity",
            signed_post(b, key, "nghe-an", "application/xml", xxe.into_bytes()),
            400,
            Some("xml"),
        ),
        (
            "wrong namespace",
            signed_post(b, key, "nghe-an", "application/xml", wrong_ns.into_bytes()),
            400,
            Some("edXML"),
        ),
        (
            "not XML",
            signed_post(b, key, "nghe-an", "application/xml", b"{\"a\":1}".to_vec()),
            400,
            Some("xml"),
        ),
        (
            "JSON content type",
            signed_post(
                b,
                key,
                "nghe-an",
                "application/json",
                unsigned.clone().into_bytes(),
            ),
            415,
            None,
        ),
        (
            "unsigned document",
            signed_post(
                b,
                key,
                "nghe-an",
                "application/xml",
                unsigned.clone().into_bytes(),
            ),
            422,
            Some("Signature"),
        ),
        (
            "a sender the peer does not speak for",
            signed_post(
                b,
                key,
                "nghe-an",
                "application/xml",
                from_elsewhere.into_bytes(),
            ),
            403,
            Some("From/OrganId"),
        ),
        (
            "a peer posting for another peer's agency",
            signed_post(
                b,
                &p.third,
                "ha-noi",
                "application/xml",
                unsigned.clone().into_bytes(),
            ),
            403,
            Some("From/OrganId"),
        ),
        (
            "a peer's name with another's secret",
            signed_post(
                b,
                key,
                "ha-noi",
                "application/xml",
                unsigned.clone().into_bytes(),
            ),
            401,
            None,
        ),
        (
            "unknown peer",
            signed_post(
                b,
                key,
                "da-nang",
                "application/xml",
                unsigned.clone().into_bytes(),
            ),
            401,
            None,
        ),
        (
            "another secret",
            signed_post(
                b,
                &other,
                "nghe-an",
                "application/xml",
                unsigned.clone().into_bytes(),
            ),
            401,
            None,
        ),
        (
            "no signature",
            b.http
                .post(format!("{}/v1/interchange/inbound", b.server.url))
                .header("content-type", "application/xml")
                .header("vanthu-peer", "nghe-an")
                .body(unsigned.clone()),
            401,
            None,
        ),
    ];
    // Over the limit (32 MiB by default), last: signing it keeps the
    // test's runtime busy a while, and a pooled connection the server
    // closed meanwhile would fail the request sent next on it.
    let huge = || signed_post(b, key, "nghe-an", "application/xml", vec![b'<'; 40 << 20]);
    let cases = cases
        .into_iter()
        .map(|(w, r, s, f)| (w, Some(r), s, f))
        .chain([("over the package limit", None, 413, None)]);
    for (what, request, status, field) in cases {
        let request = request.unwrap_or_else(huge);
        if status == 413 {
            // The server answers before the upload ends and closes the
            // connection: the status is read when the client gets that
            // far; a connection cut mid-upload is the same refusal (and
            // the log head is checked below either way).
            match request.send().await {
                Ok(r) => assert_eq!(r.status().as_u16(), 413, "{what}"),
                Err(e) => assert!(
                    e.is_request() || e.is_body() || e.is_connect(),
                    "{what}: {e}"
                ),
            }
            continue;
        }
        let r = b.send(request).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        if let Some(field) = field {
            assert_eq!(r.body["field"], field, "{what}: {}", r.body);
        }
    }
    assert_eq!(b.head().await, head, "a refused package wrote to the log");
    // A status message about a document B never issued.
    let status = vanthu::interchange::edxml::MessageStatus {
        response_for: vanthu::interchange::edxml::ResponseFor {
            organ_id: "000.00.00.H42".into(),
            document_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        },
        from: vanthu::interchange::edxml::Organ {
            organ_id: "000.00.00.H40".into(),
            ..Default::default()
        },
        status_code: "03".into(),
        timestamp: "2031/03/05 10:00:00".into(),
        ..Default::default()
    }
    .to_xml();
    let r = b
        .send(signed_post(
            b,
            key,
            "nghe-an",
            "application/xml",
            status.into_bytes(),
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["field"], "ResponseFor/DocumentId");
    assert_eq!(b.head().await, head);
}

/// The server's peak resident memory so far (VmHWM), bytes.
fn peak_rss(api: &Api) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", api.server.pid())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

/// D1: twenty 60 MB bodies at once under a real peer's name, with a wrong
/// signature, are streamed past (two at a time, the rest told to come back)
/// and answered 401 without the server holding them.
#[tokio::test]
async fn unauthenticated_bodies_are_not_held_in_memory() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::generate();
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), secret.expose()).unwrap();
    let peers = format!(
        r#"[{{ id = "nghe-an", url = "http://127.0.0.1:9/v1/interchange/inbound", key_file = "{}" }}]"#,
        key.path().display()
    );
    // A limit over the bodies' size: each is read whole and hashed.
    let b = Api::of(TestServer::spawn_on(
        dir.path(),
        &format!("127.0.0.1:{}", free_port()),
        &[
            ("VANTHU_INTERCHANGE_SYSTEM", "ha-tinh"),
            ("VANTHU_INTERCHANGE_PEERS", &peers),
            ("VANTHU_INTERCHANGE_MAX_PACKAGE_BYTES", "67108864"),
        ],
    ));
    b.head().await;
    let idle = peak_rss(&b);
    let body: &'static [u8] = Box::leak(vec![b'<'; 60_000_000].into_boxed_slice());
    let wrong = WebhookSecret::generate();
    let posts: Vec<_> = (0..20)
        .map(|i| {
            let id = format!("msg_{i}");
            let at = chrono::Utc::now().timestamp();
            let request = b
                .http
                .post(format!("{}/v1/interchange/inbound", b.server.url))
                .header("content-type", "application/xml")
                .header("vanthu-peer", "nghe-an")
                .header("webhook-id", &id)
                .header("webhook-timestamp", at.to_string())
                .header(
                    "webhook-signature",
                    signature_header(std::slice::from_ref(&wrong), &id, at, body),
                )
                .timeout(Duration::from_secs(120))
                .body(body);
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut answers = Vec::new();
    for p in posts {
        answers.push(p.await.unwrap());
    }
    let peak = peak_rss(&b);
    // Each was refused: read whole and 401, or 503 (not its turn); a 503
    // may close the connection before the client finished sending.
    assert!(
        answers.iter().all(|a| matches!(a, Ok(401 | 503) | Err(_))),
        "{answers:?}"
    );
    let read = answers.iter().filter(|a| matches!(a, Ok(401))).count();
    assert!(
        read >= 1,
        "at least one body was read and its signature checked: {answers:?}"
    );
    eprintln!(
        "peak RSS idle {} MiB, after 20 posts {} MiB ({read} read whole and refused 401)",
        idle >> 20,
        peak >> 20
    );
    assert!(
        peak <= idle + (64 << 20),
        "peak RSS rose from {} MiB to {} MiB",
        idle >> 20,
        peak >> 20
    );
}
