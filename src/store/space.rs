//! Disk space for the log. RocksDB that runs out of space stops writing
//! until it is reopened, and a reopen needs room to replay its WAL. So the
//! log refuses new appends and blobs while the data directory's file system
//! has less than `min_free` bytes available (they answer "storage full",
//! nothing written, and succeed again by themselves once space is freed),
//! and keeps a reserve file of `reserve` bytes that an open gives back when
//! space is short, so a restart on a full disk can still replay the WAL.
//!
//! Must never: let a user write start below `min_free`, or delete any file
//! but its own reserve.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The reserve file in the data directory.
pub const RESERVE_FILE: &str = "VANTHU-SPACE-RESERVE";

/// How much room the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpacePolicy {
    /// Appends and blobs are refused while less is available.
    pub min_free: u64,
    /// Size of the reserve file (0: none).
    pub reserve: u64,
}

impl SpacePolicy {
    /// What the service keeps by default (`store.min_free_bytes`,
    /// `store.reserve_bytes`): room for two full WALs
    /// (`rocks::MAX_TOTAL_WAL_SIZE`) and their flush, and one WAL's replay.
    pub const SERVICE: SpacePolicy = SpacePolicy {
        min_free: 256 << 20,
        reserve: 128 << 20,
    };
}

/// Off: no floor and no reserve (a log opened by a library user or a test
/// that has not asked for one).
impl Default for SpacePolicy {
    fn default() -> Self {
        Self {
            min_free: 0,
            reserve: 0,
        }
    }
}

/// The data directory's space, as `/readyz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceStatus {
    /// Bytes available on the file system (None: unknown).
    pub available_bytes: Option<u64>,
    pub min_free_bytes: u64,
    /// Bytes held in the reserve file.
    pub reserve_bytes: u64,
    /// Whether writes are being refused for lack of space.
    pub low: bool,
}

/// The data directory and its space policy.
#[derive(Debug, Clone)]
pub struct Space {
    dir: PathBuf,
    policy: SpacePolicy,
}

impl Space {
    pub fn new(dir: &Path, policy: SpacePolicy) -> Self {
        Self {
            dir: dir.to_owned(),
            policy,
        }
    }

    fn reserve_path(&self) -> PathBuf {
        self.dir.join(RESERVE_FILE)
    }

    /// Bytes available to the service on the data directory's file system.
    pub fn available(&self) -> Option<u64> {
        fs4::statvfs(&self.dir).ok().map(|s| s.available_space())
    }

    /// Whether `incoming` more bytes may be written: refused (with what to
    /// tell the caller) when that would leave less than `min_free`.
    pub fn check(&self, incoming: u64) -> Result<(), String> {
        if self.policy.min_free == 0 {
            return Ok(());
        }
        let Some(available) = self.available() else {
            return Ok(());
        };
        if available.saturating_sub(incoming) < self.policy.min_free {
            return Err(format!(
                "{available} bytes are available in the data directory and the service keeps at least {} free; nothing was written. The operator must free space (docs/OPERATIONS.md, \"Disk space\"); writes resume by themselves once there is room",
                self.policy.min_free
            ));
        }
        Ok(())
    }

    pub fn status(&self) -> SpaceStatus {
        let available = self.available();
        SpaceStatus {
            available_bytes: available,
            min_free_bytes: self.policy.min_free,
            reserve_bytes: std::fs::metadata(self.reserve_path()).map_or(0, |m| m.len()),
            low: available.is_some_and(|a| a < self.policy.min_free),
        }
    }

    /// Before opening: when less than `min_free` is available, gives the
    /// reserve back so RocksDB has room to replay its WAL.
    pub fn release_reserve_if_short(&self) {
        let path = self.reserve_path();
        if !path.exists() || self.available().is_none_or(|a| a >= self.policy.min_free) {
            return;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                freed = self.policy.reserve,
                "the disk is nearly full: released the space reserve so the log can open; free space, and the reserve is taken again at the next start"
            ),
            Err(e) => tracing::warn!(error = %e, "could not release the space reserve"),
        }
    }

    /// After opening: takes the reserve (allocated, not sparse) if it is
    /// missing and there is room for it beyond `min_free`.
    pub fn ensure_reserve(&self) {
        use fs4::FileExt;
        let path = self.reserve_path();
        if self.policy.reserve == 0 {
            let _ = std::fs::remove_file(&path);
            return;
        }
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == self.policy.reserve) {
            return;
        }
        let room = self
            .available()
            .is_some_and(|a| a >= self.policy.min_free + self.policy.reserve);
        if !room {
            tracing::warn!(
                reserve = self.policy.reserve,
                "not enough space to take the space reserve; a restart on a full disk may not open"
            );
            return;
        }
        let made = std::fs::File::create(&path).and_then(|f| {
            f.allocate(self.policy.reserve)?;
            f.sync_all()
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            tracing::warn!(error = %e, "could not take the space reserve");
        }
    }
}
