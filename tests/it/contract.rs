//! The contract against the running server: what `/v1/openapi.json` says
//! a request is, the server takes, and nothing else. Every command body
//! that is not a JSON object is refused with 400 and writes nothing; a
//! short pass of schemathesis (a property-based OpenAPI fuzzer, pinned in
//! tests/requirements.txt) checks status codes, content types and response
//! schemas of every operation.

use serde_json::json;

use crate::helpers::Api;

/// F1: serde's derived visitors also take a JSON array as a struct, field
/// by field; before the fix `["<official>", "signing"]` routed a draft.
/// Every operation whose request body is JSON, and the read mark (empty or
/// `{}`), gets each non-object shape and answers 400 `bad-request`, with
/// the log's head unchanged.
#[tokio::test]
async fn command_bodies_that_are_not_objects_are_refused_and_write_nothing() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let author = "svhtt-cv-qlvh";
    let doc = api.draft(author, "BC", json!([{ "agency": "UBND" }])).await;
    let contract = api.get(author, "/v1/openapi.json").await;
    assert_eq!(contract.status, 200);
    let mut operations: Vec<String> = Vec::new();
    for (path, item) in contract.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                assert_eq!(method, "post", "{method} {path}");
                operations.push(path.clone());
            }
        }
    }
    operations.push("/v1/inbox/{doc}/read".into());
    assert!(operations.len() >= 18, "{operations:?}");
    let shapes = [
        json!([]),
        json!([author, "signing"]),
        json!(["UBND"]),
        json!("svhtt-cv-qlvh"),
        json!(1),
        json!(null),
        json!(true),
    ];
    let head = api.head().await;
    for path in &operations {
        let url = path.replace("{id}", &doc).replace("{doc}", &doc);
        assert!(
            !url.contains('{'),
            "a path parameter this test does not fill: {path}"
        );
        let who = if path.starts_with("/v1/admin") || path.starts_with("/v1/org") {
            "quan-tri"
        } else {
            author
        };
        for shape in &shapes {
            let r = api.post(who, &url, shape.clone()).await;
            assert_eq!(
                (r.status, r.body["type"].as_str()),
                (400, Some("urn:vanthu:problem:bad-request")),
                "POST {url} with {shape}: {}",
                r.body
            );
        }
        // With whitespace before it, as RFC 8259 allows.
        let r = api
            .send(
                api.request(who, reqwest::Method::POST, &url)
                    .header("content-type", "application/json")
                    .body(" \n\t[]"),
            )
            .await;
        assert_eq!(r.status, 400, "POST {url} with \" [] \": {}", r.body);
    }
    assert_eq!(api.head().await, head, "a refused body wrote something");
    // An object is still a body (the read mark takes `{}`).
    let r = api
        .post(author, &format!("/v1/inbox/{doc}/read"), json!({}))
        .await;
    assert_ne!(r.status, 400, "{}", r.body);
}

/// A short pass of schemathesis over every operation of the served
/// contract, as a clerk (admin operations answer 403, as documented): no
/// 5xx, every status code, content type, response header and response body
/// as the contract says, schema-violating requests refused, required
/// headers and unsupported methods handled. A fixed seed, so a failure
/// replays; the output names each failure with a curl line.
#[tokio::test]
async fn schemathesis_finds_no_contract_violation() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let author = "svhtt-cv-qlvh";
    // Something for the fuzzer to find besides 404s.
    api.blob(author, b"noi dung cho bo kiem thu hop dong").await;
    api.draft(author, "BC", json!([{ "agency": "UBND" }])).await;
    let exe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/schemathesis");
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&exe)
        .current_dir(work.path())
        .args([
            "run",
            &format!("{}/v1/openapi.json", api.server.url),
            "-H",
            &format!(
                "Authorization: Bearer {}",
                crate::helpers::token("svhtt-van-thu")
            ),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,\
             negative_data_rejection,missing_required_header,unsupported_method",
            "--max-examples",
            "25",
            "--seed",
            "38",
            "--workers",
            "2",
            "--no-shrink",
            "--request-timeout",
            "30",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (make test-deps installs schemathesis)",
                exe.display()
            )
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found contract violations:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Tested: "), "{text}");
}
