//! Document files: who may upload, cite and fetch them; the per-official
//! quota on uploads no document cites; collection of such uploads after
//! the grace period (on the development clock), never of a cited file.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::Api;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn upload(api: &Api, who: &str, bytes: &[u8]) -> crate::helpers::Resp {
    api.send(
        api.request(who, reqwest::Method::POST, "/v1/blobs")
            .body(bytes.to_vec()),
    )
    .await
}

fn draft_citing(sha: &str) -> Value {
    json!({
        "doc_type": "BC",
        "title": "Báo cáo có tệp đính kèm",
        "content": [{ "name": "bao-cao.pdf", "sha256": sha }],
        "recipients": [{ "agency": "UBND" }],
    })
}

/// Asks for the blob as its uploader until it is gone (collection runs
/// every second here) or 10 s pass; the last status.
async fn gone(api: &Api, who: &str, sha: &str) -> u16 {
    let mut status = 0;
    for _ in 0..50 {
        status = api.get(who, &format!("/v1/blobs/{sha}")).await.status;
        if status == 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    status
}

#[tokio::test]
async fn uploads_have_a_quota_are_collected_when_uncited_and_cited_by_readers_only() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[
        ("VANTHU_DEV_CLOCK", "true"),
        ("VANTHU_BLOBS_QUOTA_BYTES", "1000"),
        ("VANTHU_BLOBS_GRACE_HOURS", "72"),
        ("VANTHU_BLOBS_COLLECT_SECONDS", "1"),
    ]);
    let author = "svhtt-cv-qlvh";
    let a = vec![b'a'; 600];
    let b = vec![b'b'; 500];
    let c = vec![b'c'; 100];

    // The quota counts uploads no document cites; the same bytes twice count once.
    assert_eq!(upload(&api, author, &a).await.status, 201);
    assert_eq!(upload(&api, author, &a).await.status, 201);
    let over = upload(&api, author, &b).await;
    assert_eq!(over.status, 413, "{}", over.body);
    assert_eq!(over.body["type"], "urn:vanthu:problem:quota-exceeded");
    assert_eq!(over.body["pending"], 600);
    assert_eq!(
        api.get(author, &format!("/v1/blobs/{}", sha(&b)))
            .await
            .status,
        404,
        "a refused upload stores nothing"
    );
    // Another official has a quota of their own.
    assert_eq!(upload(&api, "svhtt-cv-vp", &b).await.status, 201);

    // Once a draft cites it, a file no longer counts against the quota.
    let doc = api
        .post(author, "/v1/documents", draft_citing(&sha(&a)))
        .await;
    assert_eq!(doc.status, 201, "{}", doc.body);
    let doc = doc.body["id"].as_str().unwrap().to_owned();
    api.caught_up().await;
    assert_eq!(upload(&api, author, &b).await.status, 201);

    // Citing: a reader of a document that cites the file may cite it too
    // (every official of the drafting agency reads an ordinary draft); an
    // official of another agency may not, though they know the hash.
    let r = api
        .post("svhtt-cv-vp", "/v1/documents", draft_citing(&sha(&a)))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .post("snv-cv-vp", "/v1/documents", draft_citing(&sha(&a)))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        api.get("snv-cv-vp", &format!("/v1/blobs/{}", sha(&a)))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(
            "snv-cv-vp",
            &format!("/v1/documents/{doc}/content/{}", sha(&a))
        )
        .await
        .status,
        404
    );

    // Collection: after the grace period, uploads no document cites go (the
    // uploader's own copies of b and c; svhtt-cv-vp's b with them); cited
    // files stay, readable through their documents.
    assert_eq!(upload(&api, author, &c).await.status, 201);
    let r = api
        .post("quan-tri", "/v1/dev/clock", json!({ "hours": 71 }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // After a complete collection pass at this time, not after a sleep:
    // a slow machine's pass still comes before the check.
    api.after_a_pass("/blobs/collections").await;
    assert_eq!(
        api.get(author, &format!("/v1/blobs/{}", sha(&c)))
            .await
            .status,
        200,
        "within the grace period"
    );
    let r = api
        .post("quan-tri", "/v1/dev/clock", json!({ "hours": 2 }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gone(&api, author, &sha(&c)).await, 404);
    assert_eq!(gone(&api, author, &sha(&b)).await, 404);
    assert_eq!(gone(&api, "svhtt-cv-vp", &sha(&b)).await, 404);
    assert_eq!(
        api.get(author, &format!("/v1/blobs/{}", sha(&a)))
            .await
            .status,
        200,
        "a cited file stays"
    );
    assert_eq!(
        api.get(
            "svhtt-van-thu",
            &format!("/v1/documents/{doc}/content/{}", sha(&a))
        )
        .await
        .status,
        200
    );
    // The quota is free again; a collected file cannot be cited any more.
    assert_eq!(upload(&api, author, &vec![b'd'; 900]).await.status, 201);
    let r = api
        .post(author, "/v1/documents", draft_citing(&sha(&c)))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
}
