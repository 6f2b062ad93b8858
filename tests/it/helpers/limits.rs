//! Per-test time limits. Every test in tests/it opens with
//! `let _limit = crate::helpers::time_limit();` (tests/it/tidy.rs checks it;
//! `tests/tools/time_limits.py` inserts it). One watchdog thread watches the
//! guards; when a test outlives its limit the watchdog names it (libtest
//! names each test's thread after the test), kills this process's children
//! (servers, NATS nodes, browsers) and exits the whole test process with a
//! failure, so a wait that hangs fails the run at once and says where,
//! instead of holding CI until its own timeout. It works alike for sync and
//! async tests and for a test that blocks its thread: the watchdog never runs
//! on a test's thread.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

/// A test's default limit: far below a CI job's own timeout, and twice the
/// longest a test was seen to take (the 1,000-document feed test, about 5
/// minutes on two cores shared by a dozen busy processes).
const DEFAULT_SECS: u64 = 10 * 60;

/// The default on the JetStream pass (`VANTHU_TEST_BACKEND=jetstream`): the
/// first test to need the shared cluster waits for its start, which may try
/// three times for two minutes each when elections are slow on two cores.
const DEFAULT_JETSTREAM_SECS: u64 = 20 * 60;

/// Multiplies every limit (a number, 1 when unset): for a machine much
/// slower or busier than CI's.
const SCALE: &str = "VANTHU_TEST_TIME_SCALE";

/// The watchdog's exit status (libtest's own for a failed run).
const EXIT: i32 = 101;

/// Holds a test's limit while it lives; dropped at the test's end, even when
/// the test panics. Bind it (`let _limit = …`): `let _ = …` drops it at once.
#[must_use = "the limit holds only while the guard lives: `let _limit = time_limit();`"]
pub(crate) struct TimeLimit(u64);

/// The default limit for the calling test: 10 minutes, or 20 on the
/// JetStream pass.
pub(crate) fn time_limit() -> TimeLimit {
    time_limit_secs(if crate::cluster::jetstream_run() {
        DEFAULT_JETSTREAM_SECS
    } else {
        DEFAULT_SECS
    })
}

/// A limit of `secs` seconds for the calling test (for the few that need
/// longer than the default).
pub(crate) fn time_limit_secs(secs: u64) -> TimeLimit {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static WATCHDOG: Once = Once::new();
    WATCHDOG.call_once(|| {
        std::thread::Builder::new()
            .name("test time limits".into())
            .spawn(watch)
            .expect("the time-limit watchdog thread");
    });
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let scale = std::env::var(SCALE)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0);
    let test = std::thread::current()
        .name()
        .unwrap_or("<a test on an unnamed thread>")
        .to_owned();
    running().insert(
        id,
        Running {
            test,
            started: Instant::now(),
            limit: Duration::from_secs_f64(secs as f64 * scale),
        },
    );
    TimeLimit(id)
}

impl Drop for TimeLimit {
    fn drop(&mut self) {
        running().remove(&self.0);
    }
}

/// A test that holds a guard.
struct Running {
    test: String,
    started: Instant,
    limit: Duration,
}

fn running() -> MutexGuard<'static, BTreeMap<u64, Running>> {
    static RUNNING: Mutex<BTreeMap<u64, Running>> = Mutex::new(BTreeMap::new());
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Once a second: is a test past its limit? Then report and end the process.
fn watch() {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let running = running();
        let now = Instant::now();
        let Some(over) = running
            .values()
            .find(|r| now.duration_since(r.started) > r.limit)
        else {
            continue;
        };
        let others: Vec<String> = running
            .values()
            .filter(|r| r.test != over.test)
            .map(|r| format!("{} ({} s)", r.test, now.duration_since(r.started).as_secs()))
            .collect();
        let mut report = format!(
            "\ntest {} has run for {:.1} s, past its limit of {} s \
             (tests/it/helpers/limits.rs; {SCALE} multiplies the limits): \
             stopping the test run\n",
            over.test,
            now.duration_since(over.started).as_secs_f64(),
            over.limit.as_secs_f64()
        );
        if !others.is_empty() {
            report.push_str(&format!("still running: {}\n", others.join(", ")));
        }
        // Straight to the process's stderr: libtest captures only the
        // print macros, and this thread inherited a test's capture.
        let _ = std::io::stderr().write_all(report.as_bytes());
        kill_children();
        std::process::exit(EXIT);
    }
}

/// SIGKILL to every direct child of this process (they would outlive it:
/// no destructor runs on exit), except the shared NATS cluster's watcher
/// (tests/it/cluster.rs), which cleans up after this process once it is gone.
fn kill_children() {
    let watcher = format!("kill -0 {} ", std::process::id());
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(task) = task else { continue };
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmdline).contains(&watcher) {
                pids.push(pid.to_owned());
            }
        }
    }
    if !pids.is_empty() {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .status();
    }
}

/// Proves the watchdog on a copy of this test binary: a test that blocks
/// its thread past a one-second limit ends that process, failed, named, in
/// seconds rather than the minute it would block.
#[test]
fn a_test_past_its_limit_ends_the_run_and_is_named() {
    let _limit = crate::helpers::time_limit();
    let name = "helpers::limits::blocks_past_its_limit";
    let started = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--test-threads", "1"])
        .env("VANTHU_TEST_PAST_ITS_LIMIT", "1")
        .env_remove(SCALE)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT), "{stderr}");
    assert!(
        stderr.contains(&format!("test {name} has run for "))
            && stderr.contains("its limit of 1 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{stderr}");
}

/// The test the proof above runs (it does nothing unless asked to).
#[test]
#[ignore = "run by a_test_past_its_limit_ends_the_run_and_is_named"]
fn blocks_past_its_limit() {
    let _limit = crate::helpers::time_limit_secs(1);
    if std::env::var_os("VANTHU_TEST_PAST_ITS_LIMIT").is_some() {
        std::thread::sleep(Duration::from_secs(60));
    }
}
