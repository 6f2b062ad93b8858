//! Backups: an online, consistent copy of the whole database (the log, the
//! Merkle tree and checkpoints, the projections and the document files are
//! all families of one RocksDB, so one RocksDB checkpoint captures them at
//! one instant) with a manifest; and restoring one into an empty directory.
//!
//! A backup directory holds `db/` (the checkpoint: SST files hard-linked
//! when on the same file system, else copied; memtables flushed first, so it
//! needs no WAL) and `manifest.json`.
//!
//! Must never: write into a directory that is not empty, restore over a
//! store without being told to (`force`) or while a service has it open
//! (RocksDB's `LOCK`), delete the store it replaces, or put in place a
//! backup that did not verify.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{rocks, tree, RocksLog, StoreError};

/// Format tag of manifests this code writes and reads.
pub const FORMAT: &str = "vanthu.backup.v1";

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The vanthu version that took it.
    pub version: String,
    /// Position of the last record in the backup.
    pub head: u64,
    /// That record's leaf hash (base64), if any.
    pub last_leaf_hash: Option<String>,
    /// The Merkle tree's root over all `head` records (base64).
    pub merkle_root: String,
    /// Tree size of the newest signed checkpoint in the backup, if any.
    pub checkpoint_size: Option<u64>,
}

/// Why a backup or a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} is not empty: a backup goes into a new or empty directory")]
    NotEmpty(PathBuf),
    #[error("{0} is not empty; give --force to replace what is there")]
    TargetNotEmpty(PathBuf),
    #[error("{0} is not a backup: {1}")]
    NotABackup(PathBuf, String),
    #[error("the restored store does not match the manifest: {0}")]
    Mismatch(String),
    #[error("{0} is in use: {1}; stop the service first (nothing was changed)")]
    InUse(PathBuf, String),
    #[error("{0} is in the way (left by an earlier restore); move it elsewhere first (nothing was changed)")]
    InTheWay(PathBuf),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io(path.display().to_string(), e)
}

/// Whether `dir` is absent or an empty directory.
fn vacant(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

impl RocksLog {
    /// Takes a consistent backup into `dest` (absent or empty) while the log
    /// runs, and writes its manifest there.
    pub fn backup(
        &self,
        dest: &Path,
        taken_at: DateTime<Utc>,
    ) -> Result<BackupManifest, BackupError> {
        if !vacant(dest)? {
            return Err(BackupError::NotEmpty(dest.to_owned()));
        }
        std::fs::create_dir_all(dest).map_err(io(dest))?;
        let db_dir = dest.join("db");
        rocksdb::checkpoint::Checkpoint::new(&self.inner.db)
            .and_then(|c| c.create_checkpoint(&db_dir))
            .map_err(StoreError::from)?;
        let manifest = describe(&db_dir, taken_at)?;
        let path = dest.join("manifest.json");
        let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| io(&path)(e.into()))?;
        json.push(b'\n');
        std::fs::write(&path, json).map_err(io(&path))?;
        Ok(manifest)
    }
}

/// The manifest of the database in `db_dir` (opened read-only).
fn describe(db_dir: &Path, taken_at: DateTime<Utc>) -> Result<BackupManifest, StoreError> {
    let db = rocks::open_read_only(db_dir)?;
    let head = rocks::last_position(&db)?;
    let leaf = db
        .get_cf(&rocks::cf(&db, rocks::CF_LEAVES), head.to_be_bytes())
        .map_err(StoreError::from)?
        .map(|h| B64.encode(h));
    let root = tree::reader(&db, head).root()?;
    let checkpoint_size = match db.cf_handle(rocks::CF_CHECKPOINTS) {
        Some(cf) => match db.iterator_cf(&cf, rocksdb::IteratorMode::End).next() {
            Some(item) => Some(super::codec::keys::parse_position(&item?.0)?),
            None => None,
        },
        None => None,
    };
    Ok(BackupManifest {
        format: FORMAT.into(),
        taken_at,
        version: env!("CARGO_PKG_VERSION").into(),
        head,
        last_leaf_hash: leaf,
        merkle_root: B64.encode(root),
        checkpoint_size,
    })
}

/// Whether a process holds RocksDB's lock on the store in `dir`: the
/// reason if so. RocksDB takes a POSIX record lock (`fcntl(F_SETLK)`) on
/// `LOCK` for as long as the database is open, read-write; this takes the
/// same lock for a moment and gives it back. A directory without `LOCK`
/// was never opened read-write, so nobody holds it.
pub fn held(dir: &Path) -> Result<Option<String>, BackupError> {
    use rustix::fs::{fcntl_lock, FlockOperation};
    let lock = dir.join("LOCK");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&lock)(e)),
    };
    match fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            let _ = fcntl_lock(&file, FlockOperation::NonBlockingUnlock);
            Ok(None)
        }
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
            Ok(Some(format!(
                "another process has the store open (it holds {})",
                lock.display()
            )))
        }
        Err(e) => Err(io(&lock)(e.into())),
    }
}

/// `<dir>` with `suffix` added to its last component, beside it.
fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf, BackupError> {
    let name = dir.file_name().ok_or_else(|| {
        io(dir)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a data directory to restore into needs a name",
        ))
    })?;
    let mut name = name.to_owned();
    name.push(suffix);
    Ok(dir.with_file_name(name))
}

/// Flushes `path` (a file or a directory) to disk.
fn sync(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Restores the backup in `backup` into `target` (absent or empty, or, with
/// `force`, a stopped store), verifying it first: the backup is copied into
/// `<target>.restoring`, the whole restored log is checked there
/// (`store::check`) with its head, last leaf and Merkle root compared with
/// the manifest's, and only then is a store at `target` renamed to
/// `<target>.before-restore` and the restored one renamed into place. A
/// backup that does not verify leaves `target` as it was. Refused while a
/// process holds `target`'s RocksDB lock (a running service).
pub fn restore(backup: &Path, target: &Path, force: bool) -> Result<BackupManifest, BackupError> {
    let target = &std::path::absolute(target).map_err(io(target))?;
    let path = backup.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BackupError::NotABackup(backup.to_owned(), format!("manifest.json: {e}")))?;
    let manifest: BackupManifest = serde_json::from_str(&text)
        .map_err(|e| BackupError::NotABackup(backup.to_owned(), format!("manifest.json: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::NotABackup(
            backup.to_owned(),
            format!("format {:?}, expected {FORMAT}", manifest.format),
        ));
    }
    let source = backup.join("db");
    if !source.join("CURRENT").exists() {
        return Err(BackupError::NotABackup(
            backup.to_owned(),
            "no db/ in it".into(),
        ));
    }
    let occupied = !vacant(target)?;
    if occupied && !force {
        return Err(BackupError::TargetNotEmpty(target.to_owned()));
    }
    let refuse_if_held = || match held(target)? {
        Some(why) => Err(BackupError::InUse(target.to_owned(), why)),
        None => Ok(()),
    };
    let before = sibling(target, ".before-restore")?;
    if occupied {
        refuse_if_held()?;
        if before.symlink_metadata().is_ok() {
            return Err(BackupError::InTheWay(before));
        }
    }
    // Our own name: what an interrupted restore left there is discarded.
    let staging = sibling(target, ".restoring")?;
    if staging.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let built = build(&source, &staging, &manifest);
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if occupied {
        // Asked again: a service may have started on it meanwhile.
        refuse_if_held()?;
        std::fs::rename(target, &before).map_err(io(target))?;
    } else if target.exists() {
        std::fs::remove_dir(target).map_err(io(target))?;
    }
    std::fs::rename(&staging, target).map_err(io(&staging))?;
    if let Some(parent) = target.parent() {
        sync(parent)?;
    }
    Ok(manifest)
}

/// Copies the backup's database from `source` into `staging` (new), makes
/// it durable, and verifies it against `manifest`.
fn build(source: &Path, staging: &Path, manifest: &BackupManifest) -> Result<(), BackupError> {
    std::fs::create_dir_all(staging).map_err(io(staging))?;
    for entry in std::fs::read_dir(source).map_err(io(source))? {
        let entry = entry.map_err(io(source))?;
        let from = entry.path();
        let to = staging.join(entry.file_name());
        std::fs::copy(&from, &to).map_err(io(&from))?;
        sync(&to)?;
    }
    sync(staging)?;
    let checked = super::check(staging)?;
    let restored = describe(staging, manifest.taken_at)?;
    let same = checked.tail.head == manifest.head
        && restored.head == manifest.head
        && restored.last_leaf_hash == manifest.last_leaf_hash
        && restored.merkle_root == manifest.merkle_root;
    if !same {
        return Err(BackupError::Mismatch(format!(
            "head {} (manifest {}), root {} (manifest {})",
            restored.head, manifest.head, restored.merkle_root, manifest.merkle_root
        )));
    }
    Ok(())
}
