//! Disk space for the log. RocksDB that runs out of space stops writing
//! until it is reopened, and a reopen needs room to replay its WAL. So the
//! log refuses new appends and blobs while the data directory's file system
//! has less than `min_free` bytes available (they answer "storage full",
//! nothing written, and succeed again by themselves once space is freed),
//! and keeps a reserve file of `reserve` bytes that an open gives back when
//! space is short, so a restart on a full disk can still replay the WAL.
//!
//! "Low" (what `/readyz`, `vanthu probe` and `vanthu_log_writable` report)
//! is judged by the same rule as the refusal, for the largest single write
//! the service accepts (`headroom`): low while less than `min_free +
//! headroom` is available. So whenever a write is refused for space, the
//! service already says it is low; it says so a little before small writes
//! are refused, so that a load balancer moves away first.
//!
//! Must never: let a user write start below `min_free`, report "not low"
//! while a write of `headroom` bytes would be refused, or delete any file
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
    /// The largest single write the log makes (a group commit of up to
    /// `max_batch_bytes`, and the largest file, package or command that can
    /// pass it): low below `min_free + headroom`.
    pub headroom: u64,
}

impl SpacePolicy {
    /// What the service keeps by default (`store.min_free_bytes`,
    /// `store.reserve_bytes`): room for two full WALs
    /// (`rocks::MAX_TOTAL_WAL_SIZE`) and their flush, and one WAL's replay.
    pub const SERVICE: SpacePolicy = SpacePolicy {
        min_free: 256 << 20,
        reserve: 128 << 20,
        headroom: 0,
    };

    /// The least `min_free` and `reserve` that protect the log when its
    /// memtables are at most `write_buffer` bytes each: everything not yet
    /// flushed, which the WAL bound keeps within [`crate::store::rocks::MAX_TOTAL_WAL_SIZE`]
    /// plus one memtable, must fit in a flush above the floor, and again in
    /// the reserve when a restart replays the WAL.
    pub fn least(write_buffer: u64) -> u64 {
        crate::store::rocks::MAX_TOTAL_WAL_SIZE + write_buffer
    }

    /// This policy with `min_free` and `reserve` raised to [`Self::least`]
    /// (a floor of 0 stays off: a library log or a test that asked for none),
    /// and what was raised, to warn about.
    pub fn at_least(self, write_buffer: u64) -> (SpacePolicy, Vec<String>) {
        let least = Self::least(write_buffer);
        let mut raised = Vec::new();
        let mut out = self;
        if out.min_free != 0 && out.min_free < least {
            raised.push(format!(
                "store.min_free_bytes {} is below {least}, one flush of everything the log holds unflushed (a {}-byte WAL bound and a {write_buffer}-byte memtable); using {least}",
                out.min_free,
                crate::store::rocks::MAX_TOTAL_WAL_SIZE
            ));
            out.min_free = least;
        }
        if out.min_free != 0 && out.reserve < least {
            raised.push(format!(
                "store.reserve_bytes {} is below {least}, what a restart on a full disk needs to replay the WAL; using {least}",
                out.reserve
            ));
            out.reserve = least;
        }
        (out, raised)
    }
}

/// Off: no floor and no reserve (a log opened by a library user or a test
/// that has not asked for one).
impl Default for SpacePolicy {
    fn default() -> Self {
        Self {
            min_free: 0,
            reserve: 0,
            headroom: 0,
        }
    }
}

/// The data directory's space, as `/readyz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceStatus {
    /// Bytes available on the file system (None: unknown).
    pub available_bytes: Option<u64>,
    pub min_free_bytes: u64,
    /// The largest single write accepted: low below `min_free_bytes` plus this.
    pub headroom_bytes: u64,
    /// Bytes held in the reserve file.
    pub reserve_bytes: u64,
    /// Whether a write of `headroom_bytes` would be refused for lack of
    /// space (smaller ones may still pass).
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
            headroom_bytes: self.policy.headroom,
            reserve_bytes: std::fs::metadata(self.reserve_path()).map_or(0, |m| m.len()),
            low: self.policy.min_free != 0
                && available
                    .is_some_and(|a| a < self.policy.min_free.saturating_add(self.policy.headroom)),
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
            .is_some_and(|a| a >= self.policy.min_free.saturating_add(self.policy.reserve));
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
