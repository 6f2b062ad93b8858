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
