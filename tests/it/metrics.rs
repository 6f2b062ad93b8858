//! `GET /metrics`: parsed by the Prometheus project's own text-format parser
//! (`tests/metrics/parse.py`, prometheus_client), moving under load, with
//! route templates (never raw paths or ids) as labels.

use serde_json::{json, Value};

use crate::helpers::Api;

/// Scrapes /metrics and parses it; the samples.
async fn scrape(api: &Api) -> Vec<Value> {
    let r = api
        .http
        .get(format!("{}/metrics", api.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let out = crate::helpers::venv_python("tests/metrics/parse.py", &[], text.as_bytes());
    assert!(
        out.status.success(),
        "not Prometheus text format: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The sum of the samples called `name` whose labels include `labels`.
fn sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_under_load() {
    let _limit = crate::helpers::time_limit();
    let api = Api::start(&[]);
    let before = scrape(&api).await;
    let head_before = sum(&before, "vanthu_log_head_position", &[]);
    assert!(head_before > 0.0, "the demo organisation is in the log");

    // Load: a signed and issued plan, received and assigned; drafts from
    // eight clients at once; a 404.
    let (id, _) = api.assigned_plan(json!([{ "agency": "UBND" }])).await;
    let drafts = (0..32).map(|_| api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }])));
    futures_util::future::join_all(drafts).await;
    let r = api.get("svhtt-cv-qlvh", "/v1/nowhere").await;
    assert_eq!(r.status, 404);
    api.caught_up().await;

    let after = scrape(&api).await;
    let head = api.head().await as f64;
    assert_eq!(sum(&after, "vanthu_log_head_position", &[]), head);
    assert!(head > head_before + 32.0);
    assert!(
        sum(&after, "vanthu_log_events_total", &[]) - sum(&before, "vanthu_log_events_total", &[])
            >= 33.0
    );
    assert!(
        sum(&after, "vanthu_log_group_commits_total", &[])
            > sum(&before, "vanthu_log_group_commits_total", &[])
    );
    assert!(sum(&after, "vanthu_log_fsync_seconds_count", &[]) > 0.0);
    assert!(sum(&after, "vanthu_log_events_per_commit_count", &[]) > 0.0);
    assert_eq!(sum(&after, "vanthu_log_writable", &[]), 1.0);
    assert_eq!(
        sum(
            &after,
            "vanthu_signatures_verified_total",
            &[("indication", "TOTAL_PASSED")]
        ),
        1.0
    );
    assert_eq!(
        sum(&after, "vanthu_seals_applied_total", &[("agency", "SVHTT")]),
        1.0
    );
    assert!(sum(&after, "vanthu_blob_bytes_written_total", &[]) > 0.0);
    for p in [
        "registers",
        "signatures",
        "feed",
        "inbox",
        "deadlines",
        "citations",
    ] {
        assert_eq!(
            sum(&after, "vanthu_projection_position", &[("projection", p)]),
            head,
            "{p}"
        );
        assert_eq!(
            sum(&after, "vanthu_projection_lag_events", &[("projection", p)]),
            0.0,
            "{p}"
        );
    }
    assert!(sum(&after, "vanthu_crl_next_update_seconds", &[]) > 0.0);
    assert!(sum(&after, "vanthu_disk_available_bytes", &[]) > 0.0);
    assert!(sum(&after, "vanthu_log_checkpoint_tree_size", &[]) > 0.0);

    // Requests by route template and status, with latency histograms.
    let drafted = [
        ("method", "POST"),
        ("route", "/v1/documents"),
        ("status", "201"),
    ];
    assert!(sum(&after, "vanthu_http_requests_total", &drafted) >= 32.0);
    let issued = [("route", "/v1/documents/{id}/issue"), ("status", "200")];
    assert_eq!(sum(&after, "vanthu_http_requests_total", &issued), 1.0);
    assert_eq!(
        sum(
            &after,
            "vanthu_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        sum(
            &after,
            "vanthu_http_request_duration_seconds_count",
            &[("route", "/v1/documents")]
        ) >= 32.0
    );
    // No label carries a document id or a raw path.
    for s in &after {
        let labels = s["labels"].to_string();
        assert!(!labels.contains(&id), "{s}");
        assert!(!labels.contains("nowhere"), "{s}");
    }
}
