//! What the service tells Prometheus (`GET /metrics`, text format): the
//! recorder, installed once per process; every metric's name and help text;
//! the HTTP middleware's per-request counts and latencies; and the gauges
//! read at scrape time from the log, the projections, the checkpoint
//! signer, the CRLs and the disk. Counters and histograms elsewhere
//! (`store::writer`, signature acceptance, sealing) record through the
//! `metrics` facade with the names below.
//!
//! Must never: label a metric with an unbounded value (a document, an
//! official, a raw path: routes are labelled by their template), or do
//! work proportional to the data on a scrape.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "vanthu_http_requests_total";
pub const HTTP_SECONDS: &str = "vanthu_http_request_duration_seconds";
pub use crate::store::metric_names::{
    LOG_COMMITS, LOG_EVENTS, LOG_EVENTS_PER_COMMIT, LOG_FSYNC_SECONDS,
};
pub const LOG_HEAD: &str = "vanthu_log_head_position";
pub const LOG_WRITABLE: &str = "vanthu_log_writable";
pub const CHECKPOINT_SIZE: &str = "vanthu_log_checkpoint_tree_size";
pub const PROJECTION_POSITION: &str = "vanthu_projection_position";
pub const PROJECTION_LAG: &str = "vanthu_projection_lag_events";
pub const PROJECTION_STOPPED: &str = "vanthu_projection_stopped";
pub const SIGNATURES: &str = "vanthu_signatures_verified_total";
pub const SEALS: &str = "vanthu_seals_applied_total";
pub const CRL_AGE: &str = "vanthu_crl_age_seconds";
pub const CRL_NEXT_UPDATE: &str = "vanthu_crl_next_update_seconds";
pub const DISK_AVAILABLE: &str = "vanthu_disk_available_bytes";
pub const BLOB_BYTES: &str = "vanthu_blob_bytes_written_total";
pub const STORE_MEMORY: &str = "vanthu_store_memory_bytes";
pub const STORE_MEMORY_LIMIT: &str = "vanthu_store_memory_limit_bytes";

/// The process's recorder: installed by the first service started in it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once) and describes every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(LOG_EVENTS_PER_COMMIT.into()),
                        &[
                            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0, 2048.0, 8192.0,
                        ],
                    )
                });
            let handle = match builder.map(|b| b.install_recorder()) {
                Ok(Ok(handle)) => handle,
                // Another recorder is installed (a test process): render an
                // empty one rather than refuse to start.
                _ => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP request latency by method and route template"
    );
    describe_counter!(
        LOG_COMMITS,
        "Group commits (one WriteBatch, one fsync each)"
    );
    describe_counter!(LOG_EVENTS, "Events appended to the log");
    describe_histogram!(LOG_EVENTS_PER_COMMIT, "Events per group commit");
    describe_histogram!(
        LOG_FSYNC_SECONDS,
        Unit::Seconds,
        "Time to write one group commit with sync=true"
    );
    describe_gauge!(LOG_HEAD, "Position of the last durable record");
    describe_gauge!(
        LOG_WRITABLE,
        "1 while the log writer runs and the disk has room for the largest write"
    );
    describe_gauge!(CHECKPOINT_SIZE, "Tree size of the newest signed checkpoint");
    describe_gauge!(
        PROJECTION_POSITION,
        "Last log position a projection applied"
    );
    describe_gauge!(
        PROJECTION_LAG,
        "Records a projection is behind the log head"
    );
    describe_gauge!(
        PROJECTION_STOPPED,
        "1 when a projection runner stopped on an error"
    );
    describe_counter!(
        SIGNATURES,
        "Personal signatures judged at submission, by ETSI indication"
    );
    describe_counter!(SEALS, "Agency seals applied at issuance, by agency");
    describe_gauge!(
        CRL_AGE,
        Unit::Seconds,
        "Seconds since the newest CRL's thisUpdate, by issuer"
    );
    describe_gauge!(
        CRL_NEXT_UPDATE,
        Unit::Seconds,
        "Seconds until the newest CRL's nextUpdate, by issuer (negative: past)"
    );
    describe_gauge!(
        DISK_AVAILABLE,
        Unit::Bytes,
        "Bytes available on the data directory's file system"
    );
    describe_counter!(BLOB_BYTES, Unit::Bytes, "Bytes of document files stored");
    describe_gauge!(
        STORE_MEMORY,
        Unit::Bytes,
        "Bytes RocksDB's shared block cache holds (blocks and memtables)"
    );
    describe_gauge!(
        STORE_MEMORY_LIMIT,
        Unit::Bytes,
        "Bytes it may hold (store.memory_mb)"
    );
}

/// Sets the scrape-time gauges from the service's state.
pub fn observe(state: &crate::service::Core) {
    use ::metrics::gauge;
    let log = state.log.health();
    gauge!(LOG_HEAD).set(log.head as f64);
    // The same rule as `/readyz`: the writer runs and there is room for the
    // largest write (`store::space`).
    let writable = log.writable && !state.log.space().low;
    gauge!(LOG_WRITABLE).set(if writable { 1.0 } else { 0.0 });
    gauge!(CHECKPOINT_SIZE).set(state.tlog.latest().size as f64);
    for p in state.projections.progress() {
        gauge!(PROJECTION_POSITION, "projection" => p.name).set(p.position as f64);
        gauge!(PROJECTION_LAG, "projection" => p.name).set(p.lag as f64);
        let stopped = if p.error.is_some() { 1.0 } else { 0.0 };
        gauge!(PROJECTION_STOPPED, "projection" => p.name).set(stopped);
    }
    let now = state.docs.clock.now();
    for crl in state.docs.crls.status() {
        let issuer = crl.issuer.clone();
        let age = (now - crl.this_update).num_seconds() as f64;
        gauge!(CRL_AGE, "issuer" => issuer.clone()).set(age);
        if let Some(next) = crl.next_update {
            gauge!(CRL_NEXT_UPDATE, "issuer" => issuer).set((next - now).num_seconds() as f64);
        }
    }
    if let Some(available) = state.log.space().available_bytes {
        gauge!(DISK_AVAILABLE).set(available as f64);
    }
    let (used, limit) = state.log.memory();
    gauge!(STORE_MEMORY).set(used as f64);
    gauge!(STORE_MEMORY_LIMIT).set(limit as f64);
}

/// HTTP methods labelled by name; any other is `other`.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware: counts every request by method, route template (`unmatched`
/// when no route took it) and status, and records its latency.
pub async fn record_http(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let start = std::time::Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    ::metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(HTTP_SECONDS, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    Ok(res)
}

/// Counts a personal signature judged at submission.
pub fn signature_judged(indication: crate::crypto::verify::Indication) {
    let label = serde_json::to_value(indication)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    ::metrics::counter!(SIGNATURES, "indication" => label).increment(1);
}

/// Counts an agency seal applied.
pub fn seal_applied(agency: &str) {
    ::metrics::counter!(SEALS, "agency" => agency.to_owned()).increment(1);
}

/// Counts the bytes of a document file stored (not of one already held).
pub fn blob_stored(bytes: usize) {
    ::metrics::counter!(BLOB_BYTES).increment(bytes as u64);
}
