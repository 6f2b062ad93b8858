//! Test harness: temp dirs, the real server on a random port, the CLI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vanthu::store::{EventLog, LogOptions};

/// Path of the `vanthu` binary Cargo built for these tests.
pub const VANTHU: &str = env!("CARGO_BIN_EXE_vanthu");

pub fn open_log(dir: &Path) -> EventLog {
    EventLog::open(dir, LogOptions::default()).expect("open log")
}

/// Runs `vanthu ARGS` to completion.
pub fn vanthu(args: &[&str]) -> Output {
    Command::new(VANTHU)
        .args(args)
        .output()
        .expect("run vanthu")
}

/// The development keys and demo organisation.
pub fn keys_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev")
}

/// A development token for `official`.
pub fn token(official: &str) -> String {
    let pem = std::fs::read(keys_dir().join("jwt/jwt.key")).unwrap();
    vanthu::api::auth::mint(&pem, official, &[], chrono::Duration::hours(1)).unwrap()
}

/// `vanthu serve` on 127.0.0.1:0 with its own data dir; killed on drop.
pub struct TestServer {
    child: Child,
    pub url: String,
}

impl TestServer {
    pub fn spawn(data_dir: &Path) -> TestServer {
        Self::spawn_with(data_dir, &[])
    }

    /// With extra environment, e.g. `("VANTHU_DEV_CLOCK", "true")`.
    pub fn spawn_with(data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
        let mut child = Command::new(VANTHU)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("VANTHU_LOG", "warn")
            .env("VANTHU_KEYS_DIR", keys_dir())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server printed its URL within 30 s");
        TestServer { child, url }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().get(format!("{}{path}", self.url))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().post(format!("{}{path}", self.url))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
