//! Test harness: temp dirs, the real server on a random port, the CLI,
//! per-test time limits (`limits`) and one way to wait for a condition
//! (`eventually`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use vanthu::store::{LogOptions, RocksLog};

mod limits;
pub(crate) use limits::{time_limit, time_limit_secs};

/// Polls `check` until it gives a value (every 50 ms, for at most
/// `timeout`, checking at least once) and returns that value; panics naming
/// `what` (what was waited for) when it never does. A test waits for a
/// condition with this, not with a loop of its own.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Path of the `vanthu` binary Cargo built for these tests.
pub(crate) const VANTHU: &str = env!("CARGO_BIN_EXE_vanthu");

pub(crate) fn open_log(dir: &Path) -> RocksLog {
    RocksLog::open(dir, LogOptions::default()).expect("open log")
}

/// A port nobody listens on now (bound and released), never the same twice
/// in one test process, and below the kernel's ephemeral range when there is
/// room: `bind(:0)` may hand the same port out twice in a row, and a port of
/// that range may be taken by an outgoing connection or another `:0`
/// listener before its user binds it (a test NATS cluster once had a node
/// that never came up, in a fresh-clone CI).
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    if ephemeral > FIRST + 1_000 && ephemeral <= 65_536 {
        let span = ephemeral - FIRST;
        // Another test process starts elsewhere in the range.
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = (FIRST + (start + n) % span) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `vanthu ARGS` to completion.
pub(crate) fn vanthu(args: &[&str]) -> Output {
    Command::new(VANTHU)
        .args(args)
        .output()
        .expect("run vanthu")
}

/// The committed development keys and demo organisation (validity anchored
/// at a fixed instant: for tests that judge at fixed instants).
pub(crate) fn committed_keys_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev")
}

/// Development keys generated for this test run, anchored at today, so that
/// tests against the running clock never meet an expired certificate or CRL
/// whatever the date (the keys themselves are the committed ones).
pub(crate) fn keys_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| keys_anchored_at(chrono::Utc::now()))
        .clone()
}

/// A complete keys directory generated as `vanthu-dev dev-keys --anchor`
/// does; it lives until the test process ends.
pub(crate) fn keys_anchored_at(anchor: chrono::DateTime<chrono::Utc>) -> std::path::PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("vanthu-keys-")
        .tempdir()
        .unwrap()
        .keep();
    let org = committed_keys_dir().join("org.toml");
    vanthu_dev::devkeys::generate_dir(&org, &dir, anchor).expect("dev-keys");
    dir
}

/// `vanthu ARGS`: (succeeded, stdout then stderr).
pub(crate) fn vanthu_text(args: &[&str]) -> (bool, String) {
    let out = vanthu(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `script` (under the repository) with the test venv's Python
/// (`make test-deps`), `args`, and `stdin`; its output.
pub(crate) fn venv_python(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(root.join("target/test-venv/bin/python"))
        .arg(root.join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test venv's python (make test-deps)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// An HTTP client for tests (vanthu's outbound client: rustls on ring,
/// which every reqwest client here needs).
pub(crate) fn http() -> reqwest::Client {
    vanthu::outbound::client(Duration::from_secs(120), None).expect("an HTTP client")
}

/// A development token for `official`.
pub(crate) fn token(official: &str) -> String {
    let pem = std::fs::read(keys_dir().join("jwt/jwt.key")).unwrap();
    vanthu::http::auth::mint_official(&pem, official, chrono::Duration::hours(1)).unwrap()
}

/// A new file for one server's log lines, in `target/test-logs/`, which
/// `make test` empties before the run and checks after it
/// (`tests/logs/no_secrets.py`: no token, key or document content).
pub(crate) fn server_log() -> (PathBuf, std::fs::File) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{}-{n}.log", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

/// `vanthu serve --listen 127.0.0.1:0 --data-dir DIR`, logging at info,
/// with no other setting: production mode unless the caller says otherwise.
pub(crate) fn serve_command(data_dir: &Path) -> Command {
    serve_command_on(data_dir, "127.0.0.1:0")
}

/// As `serve_command`, listening on `listen`.
pub(crate) fn serve_command_on(data_dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(VANTHU);
    cmd.args(["serve", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        // Everything the service logs at info, and vanthu's debug spans:
        // `make test` reads every line for tokens and document content.
        .env("VANTHU_LOG", "info,vanthu=debug")
        // Dozens of servers run at once: no floor and no reserve (a floor
        // is at least 64 MiB and its reserve as large: `store::space`);
        // the disk tests (disk.rs) set their own.
        .env("VANTHU_STORE_MIN_FREE_BYTES", "0")
        .env("VANTHU_STORE_RESERVE_BYTES", "0")
        .env_remove("VANTHU_DEV")
        .env_remove("VANTHU_DEMO")
        .env_remove("VANTHU_DEV_CLOCK")
        .env_remove("VANTHU_KEYS_DIR");
    cmd
}

/// `vanthu serve` on 127.0.0.1:0 with its own data dir; killed on drop.
pub(crate) struct TestServer {
    child: Child,
    pub url: String,
}

impl TestServer {
    pub(crate) fn spawn(data_dir: &Path) -> TestServer {
        Self::spawn_with(data_dir, &[])
    }

    /// With extra environment, e.g. `("VANTHU_DEV_CLOCK", "true")`, in
    /// development mode with this run's development keys.
    /// On a JetStream run (`VANTHU_TEST_BACKEND=jetstream`), on the shared
    /// cluster's stream of `data_dir` (a restart finds its log again).
    pub(crate) fn spawn_with(data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
        let mut cmd = serve_command(data_dir);
        cmd.env("VANTHU_DEV", "true")
            .env("VANTHU_KEYS_DIR", keys_dir());
        cmd.envs(crate::cluster::backend_env(data_dir));
        cmd.envs(env.iter().copied());
        Self::spawn_command(cmd).expect("server printed its URL within 60 s")
    }

    /// As `spawn_with`, listening on `listen` (a port chosen beforehand,
    /// so that two servers can name each other).
    pub(crate) fn spawn_on(data_dir: &Path, listen: &str, env: &[(&str, &str)]) -> TestServer {
        let mut cmd = serve_command_on(data_dir, listen);
        cmd.env("VANTHU_DEV", "true")
            .env("VANTHU_KEYS_DIR", keys_dir());
        cmd.envs(crate::cluster::backend_env(data_dir));
        cmd.envs(env.iter().copied());
        Self::spawn_command(cmd).expect("server printed its URL within 60 s")
    }

    /// Starts `cmd` (a `serve_command`) and waits for its URL; None when it
    /// exits or stays silent for 60 s. Its log lines go to a `server_log`
    /// file, printed when it does not start.
    pub(crate) fn spawn_command(cmd: Command) -> Option<TestServer> {
        let (path, file) = server_log();
        let server = Self::spawn_logging_to(cmd, Stdio::from(file));
        if server.is_none() {
            eprintln!(
                "the server did not start; its log ({}):\n{}",
                path.display(),
                std::fs::read_to_string(&path).unwrap_or_default()
            );
        }
        server
    }

    /// As `spawn_command`, with the server's log lines (stderr) to `stderr`.
    pub(crate) fn spawn_logging_to(mut cmd: Command, stderr: Stdio) -> Option<TestServer> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn vanthu serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vanthu listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        // A JetStream node first catches up with its stream (a cluster
        // busy with elections on a loaded machine can take a while).
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Some(TestServer { child, url }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        http().get(format!("{}{path}", self.url))
    }

    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        http().post(format!("{}{path}", self.url))
    }
}

impl TestServer {
    /// The server's process id (for /proc/{pid}/status).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `-HUP`) to the server.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Whether the server process is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.child.wait().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of one test server.
pub(crate) struct Api {
    pub server: TestServer,
    pub http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// Status, headers and JSON body of a response.
pub(crate) struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Api {
    pub(crate) fn start(env: &[(&str, &str)]) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let mut api = Api::on(dir.path(), env);
        api._dir = Some(dir);
        api
    }

    /// A server on an existing data directory (kept when the server dies).
    pub(crate) fn on(dir: &std::path::Path, env: &[(&str, &str)]) -> Api {
        Api::of(TestServer::spawn_with(dir, env))
    }

    /// A client of a server started otherwise.
    pub(crate) fn of(server: TestServer) -> Api {
        Api {
            server,
            http: crate::helpers::http(),
            _dir: None,
        }
    }

    /// Plays the demo story against this server with the development keys
    /// in `keys` (the server runs with the development clock): its outcome
    /// and its transcript.
    pub(crate) async fn demo_story(&self, keys: &Path) -> (vanthu_dev::demo::Outcome, String) {
        let mut out = Vec::<u8>::new();
        let outcome = vanthu_dev::demo::Demo::new(&self.server.url, keys, &mut out)
            .unwrap()
            .run()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
        (outcome, String::from_utf8(out).unwrap())
    }

    /// Waits until every projection has applied the whole log.
    pub(crate) async fn caught_up(&self) -> Value {
        eventually(
            "the projections to catch up with the log",
            Duration::from_secs(20),
            || async move {
                let r = self
                    .send(self.http.get(format!("{}/readyz", self.server.url)))
                    .await;
                let behind = r.body["projections"]
                    .as_array()
                    .map(|ps| ps.iter().any(|p| p["lag"] != 0))
                    .unwrap_or(true);
                (!behind).then_some(r.body)
            },
        )
        .await
    }

    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub(crate) fn request(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server.url))
            .bearer_auth(token(who))
    }

    pub(crate) async fn post(&self, who: &str, path: &str, body: Value) -> Resp {
        self.send(self.request(who, reqwest::Method::POST, path).json(&body))
            .await
    }

    pub(crate) async fn get(&self, who: &str, path: &str) -> Resp {
        self.send(self.request(who, reqwest::Method::GET, path))
            .await
    }

    /// A counter of `/readyz` (a JSON pointer such as `/blobs/collections`:
    /// complete passes of a background task).
    pub(crate) async fn counter(&self, pointer: &str) -> u64 {
        let ready = self
            .send(self.http.get(format!("{}/readyz", self.server.url)))
            .await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        ready
            .body
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {pointer} in {}", ready.body))
    }

    /// Waits until the background task that `pointer` counts has run at
    /// least one complete pass that began after this call (two more than
    /// now: the one under way may have begun before), within a minute.
    pub(crate) async fn after_a_pass(&self, pointer: &str) {
        let from = self.counter(pointer).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.counter(pointer).await < from + 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{pointer} did not pass twice in 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The log's head position (from /readyz).
    pub(crate) async fn head(&self) -> u64 {
        let r = self
            .send(self.http.get(format!("{}/readyz", self.server.url)))
            .await;
        r.body["log"]["head"].as_u64().unwrap()
    }

    pub(crate) async fn blob(&self, who: &str, bytes: &[u8]) -> String {
        let r = self
            .send(
                self.request(who, reqwest::Method::POST, "/v1/blobs")
                    .body(bytes.to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["sha256"].as_str().unwrap().to_owned()
    }

    /// A draft by `author` of `doc_type` to `recipients`; returns its id.
    pub(crate) async fn draft(&self, author: &str, doc_type: &str, recipients: Value) -> String {
        let sha = self
            .blob(author, format!("{author} {doc_type}").as_bytes())
            .await;
        let r = self
            .post(
                author,
                "/v1/documents",
                json!({
                    "doc_type": doc_type,
                    "title": format!("Văn bản {doc_type} thử nghiệm"),
                    "content": [{ "name": "noi-dung.txt", "sha256": sha }],
                    "recipients": recipients,
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Routes the document to `to` for signing (asserting it worked).
    pub(crate) async fn route_for_signing(&self, id: &str, by: &str, to: &str) {
        let r = self
            .route(id, by, json!({ "to": to, "purpose": "signing" }))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Fetches the signing payload as `signer` and signs it with their key.
    pub(crate) async fn signed_jws(&self, id: &str, signer: &str, authority: &str) -> String {
        let p = self
            .get(
                signer,
                &format!("/v1/documents/{id}/signing-payload?authority={authority}"),
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        vanthu_dev::demo::sign_as(&keys_dir(), signer, &p.body["payload"]).unwrap()
    }

    pub(crate) async fn sign(&self, id: &str, signer: &str, authority: &str) -> Resp {
        let jws = self.signed_jws(id, signer, authority).await;
        self.submit_signature(id, signer, json!({ "jws": jws }))
            .await
    }

    /// Drafted by `author`, routed to and signed by `signer`.
    pub(crate) async fn signed(
        &self,
        author: &str,
        signer: &str,
        authority: &str,
        doc_type: &str,
        recipients: Value,
    ) -> String {
        let id = self.draft(author, doc_type, recipients).await;
        self.route_for_signing(&id, author, signer).await;
        let r = self.sign(&id, signer, authority).await;
        assert_eq!(r.status, 200, "{}", r.body);
        id
    }

    /// A plan of SVHTT to `recipients` (UBND among them), issued, received
    /// by UBND and assigned to its unit KT; its id and the assignment's response.
    pub(crate) async fn assigned_plan(&self, recipients: Value) -> (String, Resp) {
        let id = self
            .signed("svhtt-cv-qlvh", "svhtt-pgd-1", "KT.", "KH", recipients)
            .await;
        let r = self.issue_receive_assign(&id).await;
        (id, r)
    }

    /// A signed document of SVHTT issued by its clerk, received by UBND and
    /// assigned to its unit KT; the assignment's response.
    pub(crate) async fn issue_receive_assign(&self, id: &str) -> Resp {
        assert_eq!(self.issue(id, "svhtt-van-thu").await.status, 200);
        let r = self.receive(id, "ubnd-van-thu", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = self
            .assign(
                id,
                "ubnd-pct-1",
                json!({ "lead": "KT", "instruction": "Chủ trì" }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r
    }

    /// A report of UBND's unit KT to SVHTT, signed TM. and issued: a reply.
    pub(crate) async fn issued_ubnd_reply(&self) -> String {
        let reply = self
            .signed(
                "ubnd-cv-kt",
                "ubnd-chu-tich",
                "TM.",
                "BC",
                json!([{ "agency": "SVHTT" }]),
            )
            .await;
        assert_eq!(self.issue(&reply, "ubnd-van-thu").await.status, 200);
        reply
    }

    /// A document of UBND (drafted in KT, signed TM. by the chairman) issued
    /// to `recipients`: its id and the issue's position.
    pub(crate) async fn ubnd_issues(
        &self,
        title: &str,
        confidentiality: &str,
        recipients: Value,
    ) -> (String, u64) {
        let sha = self.blob("ubnd-cv-kt", title.as_bytes()).await;
        let r = self
            .post(
                "ubnd-cv-kt",
                "/v1/documents",
                json!({ "doc_type": "CV", "title": title, "confidentiality": confidentiality,
                        "content": [{ "name": "cong-van.txt", "sha256": sha }], "recipients": recipients }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        self.route_for_signing(&id, "ubnd-cv-kt", "ubnd-chu-tich")
            .await;
        assert_eq!(self.sign(&id, "ubnd-chu-tich", "TM.").await.status, 200);
        let r = self.issue(&id, "ubnd-van-thu").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let at = r.headers["vanthu-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (id, at)
    }

    /// Issues the document as `clerk` (an empty body).
    pub(crate) async fn issue(&self, id: &str, clerk: &str) -> Resp {
        self.issue_with(id, clerk, json!({})).await
    }

    // One method per command: `POST /v1/documents/{id}/<part>` as `who`.

    /// A new revision of the draft.
    pub(crate) async fn revise(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/revisions"), body)
            .await
    }

    /// Routes the document (to sign, review or give an opinion).
    pub(crate) async fn route(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/routes"), body)
            .await
    }

    /// Returns the draft to its author.
    pub(crate) async fn return_(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/returns"), body)
            .await
    }

    /// Asks for opinions, or gives one.
    pub(crate) async fn opinion(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/opinions"), body)
            .await
    }

    /// Submits a signature (`{"jws": …}`).
    pub(crate) async fn submit_signature(
        &self,
        id: impl std::fmt::Display,
        who: &str,
        body: Value,
    ) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/signatures"), body)
            .await
    }

    /// Issues the document (the body is usually `{}`).
    pub(crate) async fn issue_with(
        &self,
        id: impl std::fmt::Display,
        who: &str,
        body: Value,
    ) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/issue"), body)
            .await
    }

    /// Recalls the issued document.
    pub(crate) async fn recall(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/recall"), body)
            .await
    }

    /// Replaces the issued document with another.
    pub(crate) async fn replace(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/replacement"), body)
            .await
    }

    /// Receives the document into a recipient's register.
    pub(crate) async fn receive(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/receipts"), body)
            .await
    }

    /// Assigns the received document to units.
    pub(crate) async fn assign(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/assignments"), body)
            .await
    }

    /// Moves a reply or handling deadline.
    pub(crate) async fn extend(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(
            who,
            &format!("/v1/documents/{id}/deadline-extensions"),
            body,
        )
        .await
    }

    /// Links an issued reply.
    pub(crate) async fn reply(&self, id: impl std::fmt::Display, who: &str, body: Value) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/replies"), body)
            .await
    }

    /// Marks the recipient's handling complete.
    pub(crate) async fn complete(
        &self,
        id: impl std::fmt::Display,
        who: &str,
        body: Value,
    ) -> Resp {
        self.post(who, &format!("/v1/documents/{id}/completions"), body)
            .await
    }
}

/// `body` with run-specific values (ids, hashes) replaced by names, for a
/// snapshot that is the same on every run.
pub(crate) fn scrubbed(body: &Value, known: &[(&str, &str)]) -> Value {
    let mut text = body.to_string();
    for (value, name) in known {
        text = text.replace(value, name);
    }
    serde_json::from_str(&text).unwrap()
}

/// `vanthu verify` on `bundle` (the JSON bytes of a bundle) against the
/// root certificate and the log key of `keys`; asserts that it passes.
pub(crate) fn verifies_offline(bundle: &[u8], keys: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, bundle).unwrap();
    let root = keys.join("ca/root.pem");
    let log_key = keys.join("log/log.vkey");
    let out = vanthu(&[
        "verify",
        path.to_str().unwrap(),
        "--trust",
        root.to_str().unwrap(),
        "--log-key",
        log_key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A keys directory of the operator's own (random) keys: token key, root CA
/// and its CRL, no seals.
pub(crate) fn own_keys() -> tempfile::TempDir {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa, Issuer,
        KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: String| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let jwt = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    write("jwt/jwt.pub.pem", jwt.public_key_pem());
    let log = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    write("log/log.key", log.serialize_pem());
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Operator Root CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = params.self_signed(&root_key).unwrap();
    write("ca/root.pem", root.pem());
    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::days(1),
        next_update: now + time::Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&Issuer::new(params, root_key))
    .unwrap();
    write("ca/crl.pem", crl.pem().unwrap());
    dir
}
