//! `vanthu-dev` as a developer runs it: the benchmark's agreed JSON, and a
//! keys directory from `dev-keys` that is complete.

use std::process::{Command, Output};

use serde_json::Value;

fn vanthu_dev(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vanthu-dev"))
        .args(args)
        .output()
        .expect("run vanthu-dev")
}

#[test]
fn bench_prints_the_agreed_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = vanthu_dev(&[
        "bench",
        "store",
        "--writers",
        "4",
        "--events",
        "40",
        "--rounds",
        "1",
        "--json",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "writers",
        "events",
        "vanthu_events_per_s",
        "raw_events_per_s",
        "ratio",
        "p50_ms",
        "p99_ms",
        "raw_single_sync_ms",
    ] {
        assert!(v[key].is_number(), "{key} missing in {v}");
    }
    assert_eq!(v["writers"], 4);
    assert_eq!(v["events"], 40);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "bench removes its databases"
    );
}

#[test]
fn dev_keys_writes_a_complete_keys_directory() {
    let dir = tempfile::tempdir().unwrap();
    let org = concat!(env!("CARGO_MANIFEST_DIR"), "/../keys-dev/org.toml");
    let out = vanthu_dev(&[
        "dev-keys",
        "--org",
        org,
        "--out",
        dir.path().to_str().unwrap(),
        "--anchor",
        "2031-03-04T05:06:07Z",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("development use only"));
    for file in [
        "org.toml",
        "manifest.json",
        "ca/root.pem",
        "ca/issuing.pem",
        "ca/crl.pem",
        "jwt/jwt.key",
    ] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
    let manifest = vanthu::devkeys::Manifest::load(dir.path()).unwrap();
    assert!(
        manifest.anchor.starts_with("2031-03-04"),
        "{}",
        manifest.anchor
    );
}

#[test]
fn help_lists_the_tools() {
    let out = vanthu_dev(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["dev-keys", "bench", "demo", "Not for production"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}
