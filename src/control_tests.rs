//! The control socket: never visible with another mode than 0600, and a
//! request line longer than `MAX_REQUEST` refused without being buffered.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

#[test]
fn the_socket_never_exists_with_the_umasks_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SOCKET);
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, wrong) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (path, stop, seen, wrong) = (path.clone(), stop.clone(), seen.clone(), wrong.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    seen.fetch_add(1, Ordering::Relaxed);
                    if m.permissions().mode() & 0o777 != 0o600 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // Until the watcher has seen the socket many times (each bind is short).
    let mut binds = 0;
    while seen.load(Ordering::Relaxed) < 20_000 && binds < 50_000 {
        let listener = bind_private(&path).unwrap();
        binds += 1;
        drop(listener);
        std::fs::remove_file(&path).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "the watcher never saw the socket"
    );
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "the socket was seen with another mode than 0600 ({binds} binds)"
    );
    // Nothing of the private directories is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_bound_socket_answers_and_a_second_bind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SOCKET);
    let listener = bind_private(&path).unwrap();
    listener.set_nonblocking(false).unwrap();
    let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let (server, _) = listener.accept().unwrap();
    (&client).write_all(b"x\n").unwrap();
    let mut line = String::new();
    BufReader::new(&server).read_line(&mut line).unwrap();
    assert_eq!(line, "x\n");
    assert!(bind_private(&path).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_request_longer_than_the_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), Default::default()).unwrap();
    let ready: Readiness = Arc::new(|| Ok(json!({})));
    let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
    let served = std::thread::spawn(move || serve(server, &log, &ready));
    // 64 MiB with no newline: the server must answer after MAX_REQUEST.
    let writer = {
        let client = client.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![b'a'; 1 << 20];
            let mut sent = 0usize;
            for _ in 0..64 {
                match (&client).write_all(&chunk) {
                    Ok(()) => sent += chunk.len(),
                    Err(_) => break,
                }
            }
            let _ = client.shutdown(std::net::Shutdown::Write);
            sent
        })
    };
    let mut reply = String::new();
    BufReader::new(&client).read_line(&mut reply).unwrap();
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("longer"),
        "{reply}"
    );
    served.join().unwrap();
    // The server stopped reading: the writer could not send it all.
    assert!(writer.join().unwrap() < 64 << 20);
}
