//! The operator's local door into a running service: a Unix socket in the
//! data directory (`vanthu.sock`, mode 0600, so only the service's own user
//! can use it, as PostgreSQL's local socket), through which `vanthu backup
//! --data-dir DIR OUT` asks the running service for an online backup and
//! `vanthu probe` asks whether it is ready (what `/readyz` answers, without
//! HTTP or TLS: a container's health check). One request per connection,
//! one line each way: `backup <absolute path>` → `{"ok":true,"manifest":{…}}`,
//! `ready` → `{"ok":true,"ready":{…}}`, or `{"ok":false,"error":"…"}`.
//!
//! Must never: accept anything but the commands listed here, or be reachable
//! by anyone the file system does not let in.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::store::backup::{BackupError, BackupManifest};
use crate::store::RocksLog;

/// The socket's name in the data directory.
pub const SOCKET: &str = "vanthu.sock";

/// The time a backup is stamped with: the operator's real time, whatever
/// the development clock says (as a record's `recorded_at`).
#[allow(clippy::disallowed_methods)]
pub fn backup_time() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The service's readiness: `/readyz`'s report, or its problem (as JSON).
pub type Readiness = std::sync::Arc<dyn Fn() -> Result<Value, Value> + Send + Sync>;

/// Listens on `data_dir/vanthu.sock` for as long as the runtime lives.
pub fn spawn(data_dir: &Path, log: RocksLog, ready: Readiness) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(SOCKET);
    // A socket left by a killed service: nobody answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(&path).is_err() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            let ready = ready.clone();
            tokio::task::spawn_blocking(move || {
                if let Ok(stream) = stream.into_std() {
                    let _ = stream.set_nonblocking(false);
                    serve(stream, &log, &ready);
                }
            });
        }
    });
    Ok(path)
}

fn serve(stream: std::os::unix::net::UnixStream, log: &RocksLog, ready: &Readiness) {
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let line = line.trim_end();
    let reply = match line.split_once(' ') {
        None if line == "ready" => match ready() {
            Ok(report) => json!({ "ok": true, "ready": report }),
            Err(problem) => json!({
                "ok": false,
                "error": problem["detail"].as_str().or(problem["title"].as_str()).unwrap_or("not ready"),
                "problem": problem,
            }),
        },
        Some(("backup", dest)) if Path::new(dest).is_absolute() => {
            match log.backup(Path::new(dest), backup_time()) {
                Ok(manifest) => {
                    tracing::info!(dest, head = manifest.head, "backup taken");
                    json!({ "ok": true, "manifest": manifest })
                }
                Err(e) => json!({ "ok": false, "error": e.to_string() }),
            }
        }
        _ => json!({ "ok": false, "error": "expected: ready, or backup <absolute path>" }),
    };
    let mut writer = &stream;
    let _ = writeln!(writer, "{reply}");
}

/// Why `vanthu backup` could not take a backup.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the running service refused: {0}")]
    Refused(String),
    #[error("talking to the running service on {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Takes a backup of the store in `data_dir` into `dest`: through the
/// running service's socket when one answers, else by opening the stopped
/// store itself.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<BackupManifest, ClientError> {
    let dest =
        std::path::absolute(dest).map_err(|e| ClientError::Io(dest.display().to_string(), e))?;
    let socket = data_dir.join(SOCKET);
    if let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) {
        let reply = ask(&socket, stream, &format!("backup {}", dest.display()))?;
        return serde_json::from_value(reply["manifest"].clone())
            .map_err(|e| ClientError::Io(socket.display().to_string(), std::io::Error::other(e)));
    }
    let log = RocksLog::open(data_dir, Default::default())?;
    Ok(log.backup(&dest, backup_time())?)
}

/// Whether a service answers on `data_dir`'s socket (it is running there).
pub fn answers(data_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(data_dir.join(SOCKET)).is_ok()
}

/// Asks the service running on `data_dir` whether it is ready (what
/// `/readyz` would answer): its report, or why not.
pub fn probe(data_dir: &Path) -> Result<Value, ClientError> {
    let socket = data_dir.join(SOCKET);
    let stream = std::os::unix::net::UnixStream::connect(&socket)
        .map_err(|e| ClientError::Io(socket.display().to_string(), e))?;
    Ok(ask(&socket, stream, "ready")?["ready"].take())
}

/// Sends one request line and reads the one-line answer; a refusal is an
/// error carrying its reason.
fn ask(
    socket: &Path,
    stream: std::os::unix::net::UnixStream,
    request: &str,
) -> Result<Value, ClientError> {
    let name = socket.display().to_string();
    let io = |e| ClientError::Io(name.clone(), e);
    let mut writer = &stream;
    writeln!(writer, "{request}").map_err(io)?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).map_err(io)?;
    let reply: Value = serde_json::from_str(&line).map_err(|e| io(std::io::Error::other(e)))?;
    if reply["ok"] != true {
        return Err(ClientError::Refused(
            reply["error"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned(),
        ));
    }
    Ok(reply)
}
