//! `vanthu bench store`: event-log appends measured against raw RocksDB sync
//! writes of the same keys and sizes, run in the same command on the same disk
//! with the same options, so the result is a ratio rather than a number that
//! only means something on one machine.
//!
//! Must never: be used as a pass/fail test; it reports, `docs/PERFORMANCE.md`
//! records.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use serde_json::json;

use vanthu::store::{self, ExpectedVersion, LogOptions, NewEvent, RocksLog, StreamAppend};

/// Arguments of `vanthu bench store`.
#[derive(Debug, Clone, Args)]
pub struct StoreBenchArgs {
    /// Concurrent writers, each appending single-event appends to its own stream.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// Events in total (split evenly across writers).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Directory for the throw-away databases (default: the current directory,
    /// since /tmp may be a RAM disk where fsync costs nothing).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Rounds to run; every figure reported is the median over rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StoreBenchReport {
    pub writers: usize,
    pub events: usize,
    pub vanthu_events_per_s: f64,
    pub raw_events_per_s: f64,
    pub ratio: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The same appends with Merkle tree maintenance turned off.
    pub no_tree_events_per_s: f64,
    /// Events/s with the tree over events/s without it.
    pub tree_ratio: f64,
    pub raw_single_sync_ms: f64,
    /// Raw baseline's own append latency percentiles at the same concurrency.
    pub raw_p50_ms: f64,
    pub raw_p99_ms: f64,
    /// Events per WriteBatch (per fsync) the writer achieved.
    pub events_per_fsync: f64,
    /// vanthu p50 append latency over one raw sync write's.
    pub latency_ratio: f64,
    /// Bytes of one record.
    pub record_bytes: usize,
    /// Every round's figures.
    pub rounds: Vec<Round>,
}

impl StoreBenchReport {
    /// A human-readable table.
    pub fn table(&self) -> String {
        format!(
            "store append benchmark: {w} writers, {n} single-event appends, {b}-byte records\n\
             {:<34}{:>14}{:>10}{:>10}\n\
             {:<34}{:>14.0}{:>10.3}{:>10.3}\n\
             {:<34}{:>14.0}\n\
             {:<34}{:>14.0}{:>10.3}{:>10.3}\n\
             ratio vanthu/raw events/s: {:.2}   events per fsync: {:.1}\n\
             Merkle tree cost: with/without events/s {:.2}\n\
             raw single sync write: {:.3} ms   vanthu p50 / raw single sync: {:.2}\n\
             (medians of {r} rounds)\n",
            "",
            "events/s",
            "p50 ms",
            "p99 ms",
            "vanthu RocksLog::append",
            self.vanthu_events_per_s,
            self.p50_ms,
            self.p99_ms,
            "  without the Merkle tree",
            self.no_tree_events_per_s,
            "raw RocksDB write(sync=true)",
            self.raw_events_per_s,
            self.raw_p50_ms,
            self.raw_p99_ms,
            self.ratio,
            self.events_per_fsync,
            self.tree_ratio,
            self.raw_single_sync_ms,
            self.latency_ratio,
            w = self.writers,
            n = self.events,
            b = self.record_bytes,
            r = self.rounds.len(),
        )
    }
}

/// A representative event body (~250 bytes of payload, like a routed document).
fn sample_payload(i: usize) -> serde_json::Value {
    json!({
        "document": format!("0192f3a4-5b6c-7d8e-9fa0-{i:012}"),
        "to": "svhtt-deputy-director-1",
        "purpose": "signing",
        "note": "Kính trình Phó Giám đốc xem xét, ký ban hành báo cáo.",
        "agency": "SVHTT",
        "unit": "VP",
        "at": "2026-11-24T09:00:00Z"
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn sort(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One round's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub vanthu_events_per_s: f64,
    pub raw_events_per_s: f64,
    pub ratio: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub no_tree_events_per_s: f64,
    pub tree_ratio: f64,
    pub raw_p50_ms: f64,
    pub raw_p99_ms: f64,
    pub raw_single_sync_ms: f64,
    pub events_per_fsync: f64,
}

/// Runs the benchmark: `rounds` times, vanthu appends, the same without the
/// Merkle tree, then the raw baseline at the same concurrency, then one raw
/// writer alone for the single-sync latency, each on a fresh database;
/// reports the median of every figure.
pub fn store(args: &StoreBenchArgs) -> anyhow::Result<StoreBenchReport> {
    let writers = args.writers.max(1);
    let per_writer = args.events.div_ceil(writers).max(1);
    let events = per_writer * writers;
    std::fs::create_dir_all(&args.dir)?;
    let tmp = tempfile::Builder::new()
        .prefix("vanthu-bench-")
        .tempdir_in(&args.dir)?;
    let mut rounds = Vec::new();
    let mut record_bytes = 0;
    for round in 0..args.rounds.max(1) {
        let dir = tmp.path().join(round.to_string());
        let (latencies, wall, stats, record) =
            vanthu_appends(&dir.join("vanthu"), writers, per_writer, true)?;
        record_bytes = record.len();
        let (_, no_tree_wall, _, _) =
            vanthu_appends(&dir.join("no-tree"), writers, per_writer, false)?;
        let no_tree_eps = events as f64 / no_tree_wall.max(f64::EPSILON);
        let (raw_lat, raw_wall) =
            store::rocks::raw_sync_writes(&dir.join("raw"), writers, events, &record)?;
        let (single, _) = store::rocks::raw_sync_writes(&dir.join("single"), 1, 1000, &record)?;
        std::fs::remove_dir_all(&dir)?;
        let (lat, raw_lat, single) = (sort(latencies), sort(raw_lat), sort(single));
        let vanthu_eps = events as f64 / wall.max(f64::EPSILON);
        let raw_eps = events as f64 / raw_wall.max(f64::EPSILON);
        rounds.push(Round {
            vanthu_events_per_s: vanthu_eps,
            raw_events_per_s: raw_eps,
            ratio: vanthu_eps / raw_eps.max(f64::EPSILON),
            p50_ms: percentile(&lat, 0.50) * 1e3,
            p99_ms: percentile(&lat, 0.99) * 1e3,
            no_tree_events_per_s: no_tree_eps,
            tree_ratio: vanthu_eps / no_tree_eps.max(f64::EPSILON),
            raw_p50_ms: percentile(&raw_lat, 0.50) * 1e3,
            raw_p99_ms: percentile(&raw_lat, 0.99) * 1e3,
            raw_single_sync_ms: percentile(&single, 0.50) * 1e3,
            events_per_fsync: stats.events as f64 / stats.batches.max(1) as f64,
        });
    }
    let median = |f: fn(&Round) -> f64| percentile(&sort(rounds.iter().map(f).collect()), 0.5);
    Ok(StoreBenchReport {
        writers,
        events,
        vanthu_events_per_s: median(|r| r.vanthu_events_per_s),
        raw_events_per_s: median(|r| r.raw_events_per_s),
        ratio: median(|r| r.ratio),
        p50_ms: median(|r| r.p50_ms),
        p99_ms: median(|r| r.p99_ms),
        no_tree_events_per_s: median(|r| r.no_tree_events_per_s),
        tree_ratio: median(|r| r.tree_ratio),
        raw_single_sync_ms: median(|r| r.raw_single_sync_ms),
        raw_p50_ms: median(|r| r.raw_p50_ms),
        raw_p99_ms: median(|r| r.raw_p99_ms),
        events_per_fsync: median(|r| r.events_per_fsync),
        latency_ratio: median(|r| r.p50_ms / r.raw_single_sync_ms.max(f64::EPSILON)),
        record_bytes,
        rounds,
    })
}

/// W tasks, each appending `per_writer` single-event appends with Exact
/// versions to its own stream, with or without the Merkle tree. Returns
/// latencies (s), wall time (s), the writer's counters and the bytes of one
/// record.
fn vanthu_appends(
    path: &std::path::Path,
    writers: usize,
    per_writer: usize,
    tree: bool,
) -> anyhow::Result<(Vec<f64>, f64, store::Stats, Vec<u8>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = LogOptions {
        maintain_tree: tree,
        ..LogOptions::default()
    };
    let log = RocksLog::open(path, options)?;
    let (latencies, wall) = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(writers));
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let log = log.clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    let stream = format!("bench-{w}");
                    let mut lat = Vec::with_capacity(per_writer);
                    barrier.wait().await;
                    let start = Instant::now();
                    for i in 0..per_writer {
                        let expected = match i {
                            0 => ExpectedVersion::NoStream,
                            v => ExpectedVersion::Exact(v as u64),
                        };
                        let e = NewEvent::new("bench.routed.v1", sample_payload(i));
                        let t = Instant::now();
                        log.append(vec![StreamAppend::new(&stream, expected, vec![e])], None)
                            .await?;
                        lat.push(t.elapsed().as_secs_f64());
                    }
                    Ok::<_, store::AppendError>((lat, start, Instant::now()))
                })
            })
            .collect();
        let mut all = Vec::with_capacity(writers * per_writer);
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for t in tasks {
            let (lat, s, e) = t.await??;
            all.extend(lat);
            first = Some(first.map_or(s, |f| f.min(s)));
            last = Some(last.map_or(e, |l| l.max(e)));
        }
        let wall = match (first, last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        Ok::<_, anyhow::Error>((all, wall))
    })?;
    let stats = log.stats();
    let record = match log.read_all(1, 1)?.pop() {
        Some(r) => store::codec::encode(&r)?,
        None => Vec::new(),
    };
    Ok((latencies, wall, stats, record))
}

/// Arguments of `vanthu bench seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// An empty data directory to fill.
    #[arg(long)]
    pub dir: PathBuf,
    /// About this many events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Development keys (the demo organisation, signing and seal keys).
    #[arg(long, default_value = "./keys-dev")]
    pub keys_dir: PathBuf,
    /// Add about `events` more to a directory seeded before (instead of
    /// refusing one that holds documents).
    #[arg(long)]
    pub add: bool,
}

/// Arguments of `vanthu bench queries`.
#[derive(Debug, Clone, Args)]
pub struct QueriesArgs {
    /// A data directory (e.g. filled by `vanthu bench seed`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Requests per endpoint.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    #[arg(long, default_value = "./keys-dev")]
    pub keys_dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Latency of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub endpoint: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p50 over the baseline's (`/healthz` on the same server) p50.
    pub p50_ratio: f64,
}

/// What `vanthu bench queries` measured.
#[derive(Debug, Clone, Serialize)]
pub struct QueriesReport {
    pub log_events: u64,
    pub endpoints: Vec<Latency>,
}

impl QueriesReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "query latency over HTTP, {} events in the log, sequential requests\n{:<44}{:>9}{:>9}{:>9}\n",
            self.log_events, "endpoint", "p50 ms", "p99 ms", "÷ base"
        );
        for l in &self.endpoints {
            out.push_str(&format!(
                "{:<44}{:>9.3}{:>9.3}{:>9.2}\n",
                l.endpoint, l.p50_ms, l.p99_ms, l.p50_ratio
            ));
        }
        out
    }
}

/// Starts the service on `args.dir`, waits for its projections, then times
/// inbox and deadline queries against `/healthz` on the same server.
pub async fn queries(args: &QueriesArgs) -> anyhow::Result<QueriesReport> {
    let config = vanthu::config::Config {
        data_dir: args.dir.clone(),
        listen: "127.0.0.1:0".into(),
        keys_dir: args.keys_dir.clone(),
        log: "warn".into(),
        // The development keys: refused outside development mode.
        dev: true,
        demo: Some(false),
        ..Default::default()
    };
    let service = vanthu::app::start(&config).await?;
    let base = format!("http://{}", service.addr);
    let log = service.log.clone();
    let server = tokio::spawn(service.run());
    let http = vanthu::outbound::client(std::time::Duration::from_secs(60), None)?;
    // Wait for the projections to reach the head.
    loop {
        let r: serde_json::Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await?
            .json()
            .await?;
        let behind = r["projections"]
            .as_array()
            .is_none_or(|ps| ps.iter().any(|p| p["lag"] != 0));
        if !behind {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let pem = std::fs::read(args.keys_dir.join("jwt/jwt.key"))?;
    let token =
        |who: &str| vanthu::http::auth::mint_official(&pem, who, chrono::Duration::hours(2));
    let officials = [
        "ubnd-van-thu",
        "snv-van-thu",
        "svhtt-van-thu",
        "stttt-van-thu",
        "ubnd-pct-1",
        "snv-giam-doc",
        "svhtt-giam-doc",
        "stttt-giam-doc",
        "ubnd-cv-kt",
        "snv-cv-tcbc",
        "svhtt-cv-qlvh",
        "stttt-cv-bcvt",
    ];
    let tokens: Vec<(String, String)> = officials
        .iter()
        .map(|o| Ok((o.to_string(), token(o)?)))
        .collect::<anyhow::Result<_>>()?;
    let agencies = ["UBND", "SNV", "SVHTT", "STTTT"];
    let clerks = [
        "ubnd-van-thu",
        "snv-van-thu",
        "svhtt-van-thu",
        "stttt-van-thu",
    ];
    let n = args.requests.max(1);
    // The transparency log's read API at the log's size: the newest
    // checkpoint, full tiles of levels 0 and 1 spread over the log, and
    // inclusion proofs of positions spread over it.
    let size = loop {
        let text = http
            .get(format!("{base}/log/checkpoint"))
            .send()
            .await?
            .text()
            .await?;
        let size: u64 = text.lines().nth(1).unwrap_or("0").parse()?;
        if size >= log.head() {
            break size;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let spread = |i: usize, over: u64| (i as u64).wrapping_mul(2_654_435_761) % over.max(1);
    let auditor = token("thanh-tra")?;
    type Request = (String, Option<String>);
    type Case<'c> = (&'static str, Box<dyn Fn(usize) -> Request + 'c>);
    let cases: Vec<Case<'_>> = vec![
        (
            "GET /healthz (baseline)",
            Box::new(|_| (format!("{base}/healthz"), None)),
        ),
        (
            "GET /v1/inbox (pending, 50)",
            Box::new(|i| {
                let (_, t) = &tokens[i % tokens.len()];
                (format!("{base}/v1/inbox?limit=50"), Some(t.clone()))
            }),
        ),
        (
            "GET /v1/inbox?box=handle&state=done",
            Box::new(|i| {
                let (_, t) = &tokens[i % tokens.len()];
                (
                    format!("{base}/v1/inbox?box=handle&state=done&limit=50"),
                    Some(t.clone()),
                )
            }),
        ),
        (
            "GET /v1/deadlines (50)",
            Box::new(|i| {
                let t = &tokens
                    .iter()
                    .find(|(o, _)| o == clerks[i % 4])
                    .map(|x| x.1.clone());
                (
                    format!("{base}/v1/deadlines?agency={}&limit=50", agencies[i % 4]),
                    t.clone(),
                )
            }),
        ),
        (
            "GET /v1/deadlines?status=overdue (50)",
            Box::new(|i| {
                let t = &tokens
                    .iter()
                    .find(|(o, _)| o == clerks[i % 4])
                    .map(|x| x.1.clone());
                (
                    format!(
                        "{base}/v1/deadlines?agency={}&status=overdue&limit=50",
                        agencies[i % 4]
                    ),
                    t.clone(),
                )
            }),
        ),
        (
            "GET /v1/deadlines/stats?agency= (all its rows)",
            Box::new(|i| {
                let t = tokens
                    .iter()
                    .find(|(o, _)| o == clerks[i % 4])
                    .map(|x| x.1.clone());
                (
                    format!("{base}/v1/deadlines/stats?agency={}", agencies[i % 4]),
                    t,
                )
            }),
        ),
        (
            "GET /v1/deadlines/stats?issuer= (every agency's rows)",
            Box::new(|i| {
                let t = tokens
                    .iter()
                    .find(|(o, _)| o == clerks[i % 4])
                    .map(|x| x.1.clone());
                (
                    format!("{base}/v1/deadlines/stats?issuer={}", agencies[i % 4]),
                    t,
                )
            }),
        ),
        (
            "GET /log/checkpoint",
            Box::new(|_| (format!("{base}/log/checkpoint"), None)),
        ),
        (
            "GET /log/tile/0/<N> (full)",
            Box::new(|i| {
                let path = vanthu::crypto::merkle::tile_path(0, spread(i, size / 256), 256);
                (format!("{base}/log/tile/{path}"), None)
            }),
        ),
        (
            "GET /log/tile/1/<N> (full or partial)",
            Box::new(|i| {
                let count = size / 256;
                let index = spread(i, count.div_ceil(256));
                let width = (count - index * 256).min(256);
                let path = vanthu::crypto::merkle::tile_path(1, index, width);
                (format!("{base}/log/tile/{path}"), None)
            }),
        ),
        (
            "GET /log/tile/entries/<N> (auditor)",
            Box::new(|i| {
                let path = vanthu::crypto::merkle::tile_path(0, spread(i, size / 256), 256);
                let path = path.replacen("0/", "entries/", 1);
                (format!("{base}/log/tile/{path}"), Some(auditor.clone()))
            }),
        ),
        (
            "GET /v1/log/proof/inclusion",
            Box::new(|i| {
                let position = spread(i, size) + 1;
                (
                    format!("{base}/v1/log/proof/inclusion?position={position}&tree_size={size}"),
                    None,
                )
            }),
        ),
    ];
    let mut endpoints = Vec::new();
    let mut baseline = 0.0;
    for (name, request) in &cases {
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let (url, token) = request(i);
            let mut req = http.get(&url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let t0 = Instant::now();
            let resp = req.send().await?;
            let status = resp.status();
            let _ = resp.bytes().await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "{name}: HTTP {status}");
        }
        times.sort_by(f64::total_cmp);
        let p50 = times[times.len() / 2];
        let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
        if endpoints.is_empty() {
            baseline = p50;
        }
        endpoints.push(Latency {
            endpoint: name.to_string(),
            requests: n,
            p50_ms: p50,
            p99_ms: p99,
            p50_ratio: if baseline > 0.0 { p50 / baseline } else { 0.0 },
        });
    }
    server.abort();
    Ok(QueriesReport {
        log_events: log.head(),
        endpoints,
    })
}

/// Arguments of `vanthu-dev bench verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Seconds to verify for, on each thread.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Threads verifying at once (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Raw Ed25519 `verify_strict` throughput: the ceiling a signature
/// submission is measured against.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub threads: usize,
    pub verifications_per_s: f64,
    pub per_thread_per_s: f64,
}

/// Verifies one signature over a JWS-sized message again and again on
/// `threads` threads for `seconds`.
pub fn verify(args: &VerifyArgs) -> VerifyReport {
    use ed25519_dalek::{Signer, SigningKey};
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let message = vec![b'x'; 600];
    let signature = key.sign(&message);
    let public = key.verifying_key();
    let seconds = args.seconds;
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let message = &message;
                s.spawn(move || {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed().as_secs_f64() < seconds {
                        for _ in 0..100 {
                            public
                                .verify_strict(std::hint::black_box(message), &signature)
                                .expect("a valid signature");
                        }
                        n += 100;
                    }
                    n as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("verifier thread") as u64)
            .collect()
    });
    let total: u64 = counts.iter().sum();
    VerifyReport {
        threads,
        verifications_per_s: total as f64,
        per_thread_per_s: total as f64 / threads as f64,
    }
}
