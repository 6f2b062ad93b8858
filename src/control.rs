//! The operator's local door into a running service: a Unix socket in the
//! data directory (`vanthu.sock`, mode 0600 from the moment it exists, so
//! only the service's own user can use it, as PostgreSQL's local socket), through which `vanthu backup
//! --data-dir DIR OUT` asks the running service for an online backup and
//! `vanthu probe` asks whether it is ready (what `/readyz` answers, without
//! HTTP or TLS: a container's health check). One request per connection,
//! one line each way: `backup <absolute path>` → `{"ok":true,"manifest":{…}}`,
//! `ready` → `{"ok":true,"ready":{…}}`, or `{"ok":false,"error":"…"}`.
//!
//! Must never: accept anything but the commands listed here, be reachable
//! by anyone the file system does not let in (not even for a moment), or
//! buffer a request line longer than `MAX_REQUEST`.

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

/// Longest request line served (`backup ` and a path of up to 4 KiB,
/// Linux's `PATH_MAX`); a longer one is refused, not buffered.
pub const MAX_REQUEST: usize = 8 << 10;

/// Listens on `data_dir/vanthu.sock` for as long as the runtime lives.
pub fn spawn(data_dir: &Path, log: RocksLog, ready: Readiness) -> std::io::Result<PathBuf> {
    let path = data_dir.join(SOCKET);
    // A socket left by a killed service: nobody answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(&path).is_err() {
        std::fs::remove_file(&path)?;
    }
    let listener = bind_private(&path)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
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

/// Binds a listening socket at `path` that has mode 0600 from the moment
/// the path exists: it is bound inside a new directory only this user can
/// enter (0700), given its mode there, and then linked to `path` (which
/// fails if something is there already, as `bind` would) and unlinked from
/// the directory. The process umask is never changed (other threads run).
pub fn bind_private(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(SOCKET.as_ref());
    let mut private = None;
    for n in 0..100u32 {
        let dir = parent.join(format!(
            ".{}.{}.{n}",
            name.to_string_lossy(),
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                private = Some(dir);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    let dir = private.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no private directory could be made for the control socket",
        )
    })?;
    let inner = dir.join(name);
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
        std::fs::hard_link(&inner, path)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&dir);
    bound
}

/// Reads one request line of at most `MAX_REQUEST` bytes: `None` when the
/// peer sent a longer one or nothing readable.
fn request(stream: &std::os::unix::net::UnixStream) -> Option<Result<String, &'static str>> {
    use std::io::Read;
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream).take(MAX_REQUEST as u64 + 1);
    if reader.read_until(b'\n', &mut line).is_err() {
        return None;
    }
    if line.len() > MAX_REQUEST {
        return Some(Err("the request is longer than the control socket reads"));
    }
    Some(String::from_utf8(line).map_err(|_| "the request is not UTF-8"))
}

fn serve(stream: std::os::unix::net::UnixStream, log: &RocksLog, ready: &Readiness) {
    let line = match request(&stream) {
        None => return,
        Some(Ok(line)) => line,
        Some(Err(why)) => {
            let mut writer = &stream;
            let _ = writeln!(writer, "{}", json!({ "ok": false, "error": why }));
            return;
        }
    };
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

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
