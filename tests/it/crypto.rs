//! Signature verification against public test vectors.

use serde_json::Value;
use vanthu::crypto::jws::verify_ed25519;

/// Project Wycheproof's 151 Ed25519 vectors through our verification path:
/// every `valid` one accepted, every `invalid` one rejected.
#[test]
fn wycheproof_ed25519() {
    let _limit = crate::helpers::time_limit();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wycheproof_ed25519_test.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut seen = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let pk = hex::decode(group["publicKey"]["pk"].as_str().unwrap()).unwrap();
        for t in group["tests"].as_array().unwrap() {
            let msg = hex::decode(t["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(t["sig"].as_str().unwrap()).unwrap();
            let want = t["result"].as_str().unwrap() == "valid";
            assert_eq!(
                verify_ed25519(&pk, &msg, &sig),
                want,
                "tcId {} ({}): {:?}",
                t["tcId"],
                t["result"],
                t["comment"]
            );
            seen += 1;
        }
    }
    assert_eq!(seen, doc["numberOfTests"].as_u64().unwrap());
    assert_eq!(seen, 151);
}
