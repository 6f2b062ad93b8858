//! Backups under write load and their restore: `vanthu backup` through the
//! running service's socket and `POST /v1/admin/backups`, both taken while
//! 64 clients write; each restores into a store that `vanthu check` accepts
//! and whose head, last leaf and Merkle root are the manifest's. Refusals:
//! a non-empty target without `--force`, a non-admin, a non-empty backup
//! directory, a target a running service has open (by its socket, and by
//! RocksDB's lock alone), and a truncated backup, which leaves the target as
//! it was; a restore over a stopped store keeps it as `.before-restore`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::{vanthu_text as run, Api};

#[tokio::test]
async fn backups_taken_under_load_restore_to_a_store_check_accepts() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backups = dir.path().join("backups");
    let api = Arc::new(Api::on(
        &data,
        &[("VANTHU_BACKUP_DIR", backups.to_str().unwrap())],
    ));

    // 64 clients drafting until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (api, stop, written) = (Arc::clone(&api), Arc::clone(&stop), Arc::clone(&written));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }]))
                        .await;
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while written.load(Ordering::Relaxed) < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The CLI, through the running service's socket, under load; the same
    // directory again is refused: it is not empty.
    let cli_out = dir.path().join("cli-backup");
    let backup = |out: &std::path::Path| {
        let (d, o) = (data.clone(), out.to_owned());
        tokio::task::spawn_blocking(move || {
            run(&[
                "backup",
                "--data-dir",
                d.to_str().unwrap(),
                o.to_str().unwrap(),
            ])
        })
    };
    let (ok, text) = backup(&cli_out).await.unwrap();
    assert!(ok, "{text}");
    let (ok, text) = backup(&cli_out).await.unwrap();
    assert!(!ok && text.contains("not empty"), "{text}");

    // An admin over HTTP, under load; anyone else is refused.
    let r = api.post("quan-tri", "/v1/admin/backups", json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let api_out = std::path::PathBuf::from(r.body["directory"].as_str().unwrap());
    assert!(api_out.starts_with(&backups));
    let r = api
        .post("svhtt-giam-doc", "/v1/admin/backups", json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let head = api.head().await;
    drop(api);

    for backup in [cli_out, api_out] {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
                .unwrap();
        let taken = manifest["head"].as_u64().unwrap();
        assert!(taken > 65 && taken <= head, "{manifest}");
        let target = dir.path().join(format!("restored-{taken}"));
        let (ok, text) = run(&[
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ]);
        assert!(ok, "{text}");
        let (ok, text) = run(&["check", "--data-dir", target.to_str().unwrap()]);
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("positions 1..={taken} gapless")),
            "{text}"
        );
        let root = manifest["merkle_root"].as_str().unwrap();
        assert!(text.contains(&format!("root {root}")), "{text}");
        // A non-empty target is refused without --force, replaced with it.
        let (ok, text) = run(&[
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ]);
        assert!(!ok && text.contains("--force"), "{text}");
        let (ok, text) = run(&[
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
            "--force",
        ]);
        assert!(ok, "{text}");
        // The restored store serves, at the backup's head.
        let restored = Api::on(&target, &[]);
        assert_eq!(restored.head().await, taken);
    }

    // A stopped store is backed up directly.
    let stopped_out = dir.path().join("stopped-backup");
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        stopped_out.to_str().unwrap(),
    ]);
    assert!(
        ok && text.contains(&format!("backup of {head} records")),
        "{text}"
    );
    // Not a backup: refused.
    let (ok, text) = run(&[
        "restore",
        data.to_str().unwrap(),
        "--data-dir",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("not a backup"), "{text}");
}

/// Every file under `dir` (relative name → bytes), to compare a store
/// before and after.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

/// `dir` with `suffix` added to its name, beside it.
fn beside(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = dir.file_name().unwrap().to_owned();
    name.push(suffix);
    dir.with_file_name(name)
}

/// `vanthu check`'s verdict on `dir`, and its text.
fn checked(dir: &std::path::Path) -> (bool, String) {
    run(&["check", "--data-dir", dir.to_str().unwrap()])
}

#[tokio::test]
async fn restore_refuses_a_store_a_running_service_has_open() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("backup");
    let api = Api::on(&data, &[]);
    api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }]))
        .await;
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let restore = || {
        run(&[
            "restore",
            out.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--force",
        ])
    };
    // The service answers on its socket: refused.
    let (ok, text) = restore();
    assert!(!ok && text.contains("in use"), "{text}");
    // Without the socket, RocksDB's lock still says the store is open.
    std::fs::remove_file(data.join("vanthu.sock")).unwrap();
    let (ok, text) = restore();
    assert!(
        !ok && text.contains("in use") && text.contains("LOCK"),
        "{text}"
    );
    assert!(!beside(&data, ".before-restore").exists());
    assert!(!beside(&data, ".restoring").exists());
    // The live store was not touched: it takes appends, and they stay.
    api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }]))
        .await;
    let head = api.head().await;
    drop(api);
    let (ok, text) = checked(&data);
    assert!(
        ok && text.contains(&format!("positions 1..={head} gapless")),
        "{text}"
    );
}

#[tokio::test]
async fn a_truncated_backup_leaves_the_target_as_it_was() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("backup");
    let api = Api::on(&data, &[]);
    api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }]))
        .await;
    let head = api.head().await;
    drop(api);
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    // The backup's largest SST, cut in half (hard-linked files are shared
    // with the store: cut a copy).
    let sst = std::fs::read_dir(out.join("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the backup has an SST");
    let bytes = std::fs::read(&sst).unwrap();
    std::fs::remove_file(&sst).unwrap();
    std::fs::write(&sst, &bytes[..bytes.len() / 2]).unwrap();

    let before = files(&data);
    let (ok, text) = run(&[
        "restore",
        out.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--force",
    ]);
    assert!(!ok, "{text}");
    assert!(files(&data) == before, "the target changed: {text}");
    assert!(!beside(&data, ".restoring").exists());
    assert!(!beside(&data, ".before-restore").exists());
    let (ok, text) = checked(&data);
    assert!(
        ok && text.contains(&format!("positions 1..={head} gapless")),
        "{text}"
    );
}

#[tokio::test]
async fn a_restore_over_a_stopped_store_keeps_it_beside() {
    let _limit = crate::helpers::time_limit();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("backup");
    let api = Api::on(&data, &[]);
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let taken = api.head().await;
    api.draft("svhtt-cv-qlvh", "CV", json!([{ "agency": "UBND" }]))
        .await;
    let head = api.head().await;
    assert!(head > taken);
    drop(api);

    let (ok, text) = run(&[
        "restore",
        out.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--force",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = checked(&data);
    assert!(
        ok && text.contains(&format!("positions 1..={taken} gapless")),
        "{text}"
    );
    // The store it replaced, whole, beside it; a second restore would put
    // another there, so it is refused until the operator moves it.
    let kept = beside(&data, ".before-restore");
    let (ok, text) = checked(&kept);
    assert!(
        ok && text.contains(&format!("positions 1..={head} gapless")),
        "{text}"
    );
    assert!(!beside(&data, ".restoring").exists());
    let (ok, text) = run(&[
        "restore",
        out.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--force",
    ]);
    assert!(!ok && text.contains("in the way"), "{text}");
}
