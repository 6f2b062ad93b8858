//! Load clients for the benchmark harness (`ops/bench/harness.py`), for
//! the workloads wrk cannot drive because each request needs a client-side
//! Ed25519 signature or the answer to the one before:
//!
//! - **signatures**: documents are drafted and routed to a signer first;
//!   then, on the harness's signal, every signature is submitted at once
//!   over `--connections` connections (the measured part);
//! - **flows**: `--connections` workers each run whole document flows
//!   (draft, route, sign, issue, receive, assign, reply drafted, signed and
//!   issued, reply recorded) for `--seconds`.
//!
//! Both print one JSON object; any answer that is not the expected 2xx is
//! counted in `bad` (the harness then refuses the run).
//!
//! Must never: run against anything but a development server (the keys are
//! the public development keys), or count a failed request as done.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use vanthu::crypto::keystore::FileKey;

use crate::demo::{official_key, sign_with};

/// What a load client needs to reach the server.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The server's base URL.
    #[arg(long)]
    pub url: String,
    /// Development keys (tokens and the officials' signing keys).
    #[arg(long, default_value = "./keys-dev", env = "VANTHU_KEYS_DIR")]
    pub keys_dir: PathBuf,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

/// `bench signatures`.
#[derive(clap::Args, Debug, Clone)]
pub struct SignaturesArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Documents to prepare and sign.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Print `READY` once prepared and wait for a line on stdin before
    /// submitting (so the caller measures the server's CPU around the
    /// submissions only).
    #[arg(long)]
    pub wait: bool,
}

/// `bench flows`.
#[derive(clap::Args, Debug, Clone)]
pub struct FlowsArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Requests answered as expected, in the measured part.
    pub requests: u64,
    /// Requests answered otherwise (or not at all).
    pub bad: u64,
    /// The first unexpected answer, if any.
    pub first_error: Option<String>,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Whole flows completed (flows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows_per_s: Option<f64>,
}

/// A client acting as any development official.
struct Client {
    http: reqwest::Client,
    base: String,
    tokens: HashMap<&'static str, String>,
    keys: HashMap<&'static str, FileKey>,
    /// Latencies of the requests answered as expected, in microseconds.
    latencies: Mutex<Vec<u32>>,
    bad: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Officials the workloads act as (keys-dev/org.toml).
const OFFICIALS: &[&str] = &[
    "ubnd-cv-vp",
    "ubnd-chu-tich",
    "ubnd-van-thu",
    "svhtt-cv-qlvh",
    "svhtt-pgd-1",
    "svhtt-giam-doc",
    "svhtt-van-thu",
];

impl Client {
    fn new(args: &LoadArgs) -> anyhow::Result<Self> {
        let keys = &args.keys_dir;
        let jwt = std::fs::read(keys.join("jwt/jwt.key"))
            .map_err(|e| anyhow::anyhow!("{}: {e}", keys.join("jwt/jwt.key").display()))?;
        let mut tokens = HashMap::new();
        let mut signing = HashMap::new();
        for &who in OFFICIALS {
            tokens.insert(
                who,
                vanthu::http::auth::mint_official(&jwt, who, chrono::Duration::hours(12))?,
            );
            signing.insert(who, official_key(keys, who)?);
        }
        Ok(Self {
            http: vanthu::outbound::client(Duration::from_secs(60), None)?,
            base: args.url.trim_end_matches('/').to_owned(),
            tokens,
            keys: signing,
            latencies: Mutex::new(Vec::new()),
            bad: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    /// One request as `who`; an answer other than `expect` is an error
    /// (counted, and the first kept).
    async fn call(
        &self,
        who: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Result<Value, ()> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[who]);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let start = Instant::now();
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(bytes) if status == expect => {
                        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
                    }
                    Ok(bytes) => Err(format!(
                        "{method} {path} as {who}: {status} {}",
                        String::from_utf8_lossy(&bytes)
                    )),
                    Err(e) => Err(format!("{method} {path} as {who}: {e}")),
                }
            }
            Err(e) => Err(format!("{method} {path} as {who}: {e}")),
        };
        match outcome {
            Ok(v) => {
                let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
                self.latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(us);
                Ok(v)
            }
            Err(e) => {
                self.failed(e);
                Err(())
            }
        }
    }

    /// Counts a failed step and keeps the first failure's reason.
    fn failed(&self, reason: String) {
        self.bad.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(reason);
    }

    async fn post(&self, who: &'static str, path: &str, body: Value) -> Result<Value, ()> {
        self.call(who, Method::POST, path, Some(body), 200).await
    }

    /// Uploads a text and returns its SHA-256.
    async fn blob(&self, who: &'static str, text: &str) -> anyhow::Result<String> {
        let r: Value = self
            .http
            .post(format!("{}/v1/blobs", self.base))
            .bearer_auth(&self.tokens[who])
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(text.to_owned())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(r["sha256"].as_str().unwrap_or_default().to_owned())
    }

    /// A new draft by `author`; its id.
    async fn draft(
        &self,
        author: &'static str,
        doc_type: &str,
        sha: &str,
        recipients: Value,
    ) -> Result<String, ()> {
        let doc = self
            .call(
                author,
                Method::POST,
                "/v1/documents",
                Some(json!({
                    "doc_type": doc_type,
                    "title": format!("Văn bản đo tải {doc_type}"),
                    "content": [{ "name": "noi-dung.txt", "sha256": sha }],
                    "recipients": recipients,
                })),
                201,
            )
            .await?;
        Ok(doc["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Routes `id` to `signer` and returns the signature request (path and
    /// body) the signer's client would send, signed client-side.
    async fn signature_request(
        &self,
        id: &str,
        author: &'static str,
        signer: &'static str,
        authority: &str,
    ) -> Result<(String, Value), ()> {
        self.post(
            author,
            &format!("/v1/documents/{id}/routes"),
            json!({ "to": signer, "purpose": "signing" }),
        )
        .await?;
        let payload = self
            .call(
                signer,
                Method::GET,
                &format!("/v1/documents/{id}/signing-payload?authority={authority}"),
                None,
                200,
            )
            .await?;
        let jws = sign_with(&self.keys[signer], &payload["payload"])
            .map_err(|e| self.failed(format!("signing as {signer}: {e}")))?;
        Ok((
            format!("/v1/documents/{id}/signatures"),
            json!({ "jws": jws }),
        ))
    }

    /// Drafts, routes, signs and issues; the document's id.
    #[allow(clippy::too_many_arguments)]
    async fn issued(
        &self,
        author: &'static str,
        signer: &'static str,
        authority: &str,
        clerk: &'static str,
        doc_type: &str,
        sha: &str,
        recipients: Value,
    ) -> Result<String, ()> {
        let id = self.draft(author, doc_type, sha, recipients).await?;
        let (path, body) = self
            .signature_request(&id, author, signer, authority)
            .await?;
        self.post(signer, &path, body).await?;
        self.post(clerk, &format!("/v1/documents/{id}/issue"), json!({}))
            .await?;
        Ok(id)
    }

    /// One whole flow: the People's Committee issues a plan to SVHTT with
    /// a reply deadline; SVHTT receives and assigns it, drafts, signs and
    /// issues its report, and records it as the reply; the People's
    /// Committee receives the report.
    async fn flow(&self, sha: &str) -> Result<(), ()> {
        let plan = self
            .issued(
                "ubnd-cv-vp",
                "ubnd-chu-tich",
                "TM.",
                "ubnd-van-thu",
                "KH",
                sha,
                json!([{ "agency": "SVHTT", "reply_within_working_days": 5 }]),
            )
            .await?;
        self.post(
            "svhtt-van-thu",
            &format!("/v1/documents/{plan}/receipts"),
            json!({ "agency": "SVHTT" }),
        )
        .await?;
        self.post(
            "svhtt-pgd-1",
            &format!("/v1/documents/{plan}/assignments"),
            json!({ "agency": "SVHTT", "lead": "QLVH", "coordinating": ["VP"],
                    "instruction": "Chủ trì tham mưu báo cáo." }),
        )
        .await?;
        let reply = self
            .issued(
                "svhtt-cv-qlvh",
                "svhtt-giam-doc",
                "",
                "svhtt-van-thu",
                "BC",
                sha,
                json!([{ "agency": "UBND" }]),
            )
            .await?;
        self.post(
            "svhtt-cv-qlvh",
            &format!("/v1/documents/{plan}/replies"),
            json!({ "agency": "SVHTT", "reply": reply }),
        )
        .await?;
        self.post(
            "ubnd-van-thu",
            &format!("/v1/documents/{reply}/receipts"),
            json!({ "agency": "UBND" }),
        )
        .await?;
        Ok(())
    }

    /// The report of the measured part: latencies recorded since `mark`.
    fn report(&self, mark: usize, seconds: f64, flows: Option<u64>) -> LoadReport {
        let mut l = self.latencies.lock().unwrap_or_else(|e| e.into_inner())[mark..].to_vec();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |&us| us as f64 / 1000.0)
        };
        LoadReport {
            requests: l.len() as u64,
            bad: self.bad.load(Ordering::Relaxed),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            seconds,
            requests_per_s: l.len() as f64 / seconds,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            flows,
            flows_per_s: flows.map(|f| f as f64 / seconds),
        }
    }

    fn recorded(&self) -> usize {
        self.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// Runs `work(i)` for i in 0..n over `workers` concurrent tasks.
async fn each<F, Fut>(n: usize, workers: usize, work: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let next = next.clone();
            let work = work.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    work(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// The signature-submission workload: `count` documents by SVHTT's
/// specialist routed to its deputy head, each signature made client-side
/// ("KT." for the head), then all submitted at once.
pub async fn signatures(args: &SignaturesArgs) -> anyhow::Result<LoadReport> {
    let client = Arc::new(Client::new(&args.load)?);
    let sha = client
        .blob("svhtt-cv-qlvh", "Nội dung văn bản đo tải chữ ký\n")
        .await?;
    let prepared = Arc::new(Mutex::new(Vec::with_capacity(args.count)));
    {
        let (client, prepared) = (client.clone(), prepared.clone());
        each(args.count, args.load.connections, move |_| {
            let (client, prepared, sha) = (client.clone(), prepared.clone(), sha.clone());
            async move {
                let Ok(id) = client
                    .draft("svhtt-cv-qlvh", "BC", &sha, json!([{ "agency": "UBND" }]))
                    .await
                else {
                    return;
                };
                if let Ok(req) = client
                    .signature_request(&id, "svhtt-cv-qlvh", "svhtt-pgd-1", "KT.")
                    .await
                {
                    prepared.lock().unwrap_or_else(|e| e.into_inner()).push(req);
                }
            }
        })
        .await;
    }
    let requests = std::mem::take(&mut *prepared.lock().unwrap_or_else(|e| e.into_inner()));
    if client.bad.load(Ordering::Relaxed) > 0 {
        let r = client.report(0, 1.0, None);
        anyhow::bail!(
            "preparing the documents failed: {}",
            r.first_error.unwrap_or_default()
        );
    }
    if args.wait {
        println!("READY {}", requests.len());
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
    }
    let mark = client.recorded();
    let requests = Arc::new(requests);
    let start = Instant::now();
    {
        let (client, requests) = (client.clone(), requests.clone());
        each(requests.len(), args.load.connections, move |i| {
            let (client, requests) = (client.clone(), requests.clone());
            async move {
                let (path, body) = &requests[i];
                let _ = client.post("svhtt-pgd-1", path, body.clone()).await;
            }
        })
        .await;
    }
    Ok(client.report(mark, start.elapsed().as_secs_f64(), None))
}

/// The mixed workload: whole document flows on `connections` workers.
pub async fn flows(args: &FlowsArgs) -> anyhow::Result<LoadReport> {
    let client = Arc::new(Client::new(&args.load)?);
    let sha = client
        .blob("ubnd-cv-vp", "Nội dung văn bản đo tải luồng\n")
        .await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.load.connections.max(1))
        .map(|_| {
            let (client, done, sha) = (client.clone(), done.clone(), sha.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if client.flow(&sha).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    Ok(client.report(
        0,
        start.elapsed().as_secs_f64(),
        Some(done.load(Ordering::Relaxed)),
    ))
}
