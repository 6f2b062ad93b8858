//! Crash safety: a child process appends in a loop and prints every
//! acknowledged position; the parent kills it with SIGKILL at random moments,
//! reopens the log and checks that every acknowledged event is there, at its
//! position, and that the log is gapless; that the Merkle tree covers
//! exactly the log and is the tree of its records; and that the newest
//! signed checkpoint is consistent with the one seen before the kill.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::helpers::open_log;

/// The child: `tests/bin/crash_child.rs`, built by `cargo test` as an
/// example beside this test binary.
fn crash_child() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let child = debug.join("examples").join("crash_child");
    assert!(
        child.exists(),
        "{} is missing: `cargo test` builds it (or `cargo build --example crash_child`)",
        child.display()
    );
    child
}

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct XorShift(u64);
impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    let _limit = crate::helpers::time_limit();
    const KILLS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("VANTHU_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: VANTHU_TEST_SEED={seed}");
    let mut rng = XorShift(seed);
    let mut acked: HashMap<u64, Uuid> = HashMap::new();
    let mut checkpoint: Option<vanthu::crypto::note::Checkpoint> = None;
    let exe = crash_child();
    let stderr_log = tempfile::NamedTempFile::new().unwrap();

    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_log.reopen().unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Most rounds kill mid-stream (after the first ack); some kill during
        // start-up and recovery.
        let wait_for_ack = round % 4 != 3;
        let mut lines = Vec::new();
        if wait_for_ack {
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(l) if l.starts_with("ACK ") => {
                        lines.push(l);
                        break;
                    }
                    Ok(l) => lines.push(l),
                    Err(_) => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child ended by itself ({status}) before it was killed:\n{}",
            std::fs::read_to_string(stderr_log.path()).unwrap_or_default()
        );
        reader.join().unwrap();
        lines.extend(rx.try_iter());

        let mut new = 0;
        for line in lines.iter().filter_map(|l| l.strip_prefix("ACK ")) {
            let mut parts = line.split(' ');
            let (Some(pos), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
                continue; // a line cut short by the kill
            };
            let (Ok(pos), Ok(id)) = (pos.parse::<u64>(), id.parse::<Uuid>()) else {
                continue;
            };
            assert!(
                acked.insert(pos, id).is_none_or(|old| old == id),
                "position {pos} acknowledged twice"
            );
            new += 1;
        }

        let log = open_log(dir.path());
        let all = log.read_all(1, usize::MAX).unwrap();
        let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
        assert_eq!(
            positions,
            (1..=log.head()).collect::<Vec<_>>(),
            "round {round}: gapless"
        );
        let stored: HashMap<u64, Uuid> = all.iter().map(|r| (r.position, r.event_id)).collect();
        for (pos, id) in &acked {
            assert_eq!(
                stored.get(pos),
                Some(id),
                "round {round}: acknowledged event at {pos} lost"
            );
        }
        checkpoint = tree_and_checkpoint(&log, &all, checkpoint, round);
        eprintln!("round {round}: {new} new acks, head {}", log.head());
    }
    assert!(
        acked.len() > 100,
        "the child appended too little to mean anything: {}",
        acked.len()
    );
    let report = vanthu::store::check(dir.path()).unwrap();
    assert_eq!(report.tail.verified, report.tail.head);
    assert_eq!(report.tree.unwrap().leaves, report.tail.head);
    assert!(report.checkpoint.is_some());
}

/// After a restart: the tree is the RFC 6962 tree of the records, and the
/// newest checkpoint (signed by the child's key, not beyond the head) is
/// consistent with `before`, the newest one of the previous round.
fn tree_and_checkpoint(
    log: &vanthu::store::RocksLog,
    records: &[vanthu::store::Record],
    before: Option<vanthu::crypto::note::Checkpoint>,
    round: usize,
) -> Option<vanthu::crypto::note::Checkpoint> {
    use vanthu::crypto::{merkle, note};
    let leaves: Vec<merkle::Hash> = records
        .iter()
        .map(|r| merkle::leaf_hash(&vanthu::store::codec::encode(r).unwrap()))
        .collect();
    let head = log.head();
    let tree = log.tree_at(head).unwrap();
    let Ok(want) = merkle::root(&leaves[..], head);
    assert_eq!(
        tree.root().unwrap(),
        want,
        "round {round}: the tree is not the records'"
    );
    let public = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]).verifying_key();
    let vkey = note::verifier_key(vanthu::config::DEV_TLOG_ORIGIN, &public.to_bytes());
    let Some((size, bytes)) = log.latest_checkpoint().unwrap() else {
        assert!(
            before.is_none(),
            "round {round}: a signed checkpoint disappeared"
        );
        return None;
    };
    let now = note::open(&bytes, &vkey).unwrap();
    assert_eq!(now.size, size);
    assert!(size <= head, "round {round}: a checkpoint beyond the head");
    assert_eq!(log.tree_at(size).unwrap().root().unwrap(), now.root);
    if let Some(old) = before {
        assert!(
            old.size <= now.size,
            "round {round}: the checkpoints went back"
        );
        let proof = merkle::consistency_proof(&tree, old.size, now.size).unwrap();
        merkle::verify_consistency(old.size, now.size, &old.root, &now.root, &proof)
            .unwrap_or_else(|e| panic!("round {round}: checkpoints inconsistent: {e}"));
    }
    Some(now)
}
