//! The crash test's child process (`tests/it/crash.rs`): appends in a loop
//! to the log in the directory it is given, from eight tasks, and prints
//! `ACK position event-id` for every acknowledged event, until it is killed
//! (or 30 s pass). It signs checkpoints every 20 ms meanwhile, with the
//! key `CHECKPOINT_KEY` names.
//!
//! Must never: print an acknowledgement before the append returned, or
//! exit by itself while the parent is still killing it.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;
use vanthu::store::{AppendError, ExpectedVersion, LogOptions, NewEvent, RocksLog, StreamAppend};

/// The secret of the checkpoint key (the parent verifies with its public half).
pub const CHECKPOINT_KEY: [u8; 32] = [5u8; 32];

fn main() {
    let dir = std::env::args().nth(1).expect("usage: crash_child DIR");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let log =
            RocksLog::open(std::path::Path::new(&dir), LogOptions::default()).expect("open log");
        let key = ed25519_dalek::SigningKey::from_bytes(&CHECKPOINT_KEY);
        let key = vanthu::crypto::note::LogKey::new(vanthu::config::DEV_TLOG_ORIGIN, key).unwrap();
        let checkpoints =
            vanthu::tlog::Checkpoints::open(log.clone(), std::sync::Arc::new(key), None)
                .expect("the stored checkpoints agree with the log");
        std::sync::Arc::new(checkpoints).spawn(Duration::from_millis(20));
        let deadline = Instant::now() + Duration::from_secs(30); // bounded if never killed
        let tasks: Vec<_> = (0..8)
            .map(|k| {
                let log = log.clone();
                tokio::spawn(async move {
                    let own = format!("crash-{k}");
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        i += 1;
                        let mut streams = vec![(own.clone(), 1 + (i % 3) as usize)];
                        if i.is_multiple_of(4) {
                            streams.push(("crash-shared".to_owned(), 1));
                        }
                        let mut req = Vec::new();
                        for (s, n) in &streams {
                            let v = log.stream_version(s).unwrap();
                            let events = (0..*n)
                                .map(|j| {
                                    NewEvent::new(
                                        "crash.appended.v1",
                                        json!({ "k": k, "i": i, "j": j }),
                                    )
                                })
                                .collect();
                            req.push(StreamAppend::new(
                                s,
                                v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
                                events,
                            ));
                        }
                        let ids: Vec<Uuid> = req
                            .iter()
                            .flat_map(|s| s.events.iter().map(|e| e.id))
                            .collect();
                        match log.append(req, None).await {
                            Ok(a) => {
                                let mut out = std::io::stdout().lock();
                                for (pos, id) in a.positions().zip(ids) {
                                    writeln!(out, "ACK {pos} {id}").unwrap();
                                }
                                out.flush().unwrap();
                            }
                            Err(AppendError::WrongExpectedVersion { .. }) => {}
                            Err(e) => panic!("child append failed: {e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}
