//! Projection tables: one RocksDB column family per projection (`p.<name>`)
//! holding its rows and its checkpoint (the last log position applied),
//! always written together in one `WriteBatch`, so a crash never leaves rows
//! without their checkpoint or the reverse.
//!
//! Must never: touch the log's own families, or write a row folded from
//! the log without the checkpoint that covers it. Keys starting with 0x00
//! are reserved.

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::rocks::Db;
use super::StoreError;

/// Key of the checkpoint inside a table's family.
const CHECKPOINT: &[u8] = b"\x00checkpoint";

/// Column family name of the projection `name`.
pub fn family(name: &str) -> String {
    format!("p.{name}")
}

/// Rows as (key, value), in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Pending changes: key → new value, or `None` to delete.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One projection's table.
#[derive(Clone)]
pub struct Table {
    db: Arc<Db>,
    memory: super::rocks::Memory,
    family: String,
}

impl Table {
    pub(super) fn open(
        db: Arc<Db>,
        memory: &super::rocks::Memory,
        name: &str,
    ) -> Result<Self, StoreError> {
        let family = family(name);
        if db.cf_handle(&family).is_none() {
            db.create_cf(&family, &super::rocks::table_options(memory))?;
        }
        Ok(Self {
            db,
            memory: memory.clone(),
            family,
        })
    }

    fn cf(&self) -> Arc<rocksdb::BoundColumnFamily<'_>> {
        super::rocks::cf(&self.db, &self.family)
    }

    /// The last log position applied (0 = none).
    pub fn checkpoint(&self) -> Result<u64, StoreError> {
        match self.db.get_pinned_cf(&self.cf(), CHECKPOINT)? {
            None => Ok(0),
            Some(v) => Ok(super::codec::keys::parse_position(&v)?),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(&self.cf(), key)?)
    }

    /// Up to `limit` rows whose key starts with `prefix`, in key order,
    /// strictly after `after` when given.
    pub fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        let start = after.unwrap_or(prefix);
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(
            &self.cf(),
            within(prefix),
            IteratorMode::From(start, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            if after.is_some_and(|a| k.as_ref() == a) {
                continue;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Up to `limit` rows whose key starts with `prefix`, from `from`
    /// (inclusive), in key order.
    pub fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(
            &self.cf(),
            within(prefix),
            IteratorMode::From(from, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Writes `changes` and the new checkpoint in one batch.
    pub fn commit(&self, changes: Changes, checkpoint: u64) -> Result<(), StoreError> {
        Ok(self.db.write(self.batch(changes, checkpoint)?)?)
    }

    /// Writes rows that no log record folds into: what the outside world
    /// answered (a webhook delivery's attempts), or what the clock made
    /// due. The checkpoint is not touched; a table that has such rows is
    /// never rebuilt.
    pub fn write_outside(&self, changes: Changes) -> Result<(), StoreError> {
        Ok(self.db.write(self.rows(changes, 0)?)?)
    }

    /// [`commit`](Self::commit) without the write-ahead log, for a rebuild:
    /// a crash loses what no flush wrote, rows and checkpoint together (a
    /// family's memtable flushes whole). [`flush`](Self::flush) at the end.
    pub fn commit_unlogged(&self, changes: Changes, checkpoint: u64) -> Result<(), StoreError> {
        let mut o = rocksdb::WriteOptions::default();
        o.disable_wal(true);
        Ok(self.db.write_opt(self.batch(changes, checkpoint)?, &o)?)
    }

    /// Writes the table's memtable to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.db.flush_cf(&self.cf())?)
    }

    fn batch(&self, changes: Changes, checkpoint: u64) -> Result<WriteBatch, StoreError> {
        let mut batch = self.rows(changes, checkpoint)?;
        batch.put_cf(&self.cf(), CHECKPOINT, checkpoint.to_be_bytes());
        Ok(batch)
    }

    /// A batch of `changes` (`checkpoint` names the position in an error).
    fn rows(&self, changes: Changes, checkpoint: u64) -> Result<WriteBatch, StoreError> {
        let cf = self.cf();
        let mut batch = WriteBatch::default();
        for (k, v) in changes {
            if k.first() == Some(&0) {
                return Err(StoreError::Corrupt {
                    position: checkpoint,
                    reason: "a projection row key starts with the reserved 0x00".into(),
                });
            }
            match v {
                Some(v) => batch.put_cf(&cf, k, v),
                None => batch.delete_cf(&cf, k),
            }
        }
        Ok(batch)
    }

    /// Every row and the checkpoint, in key order (for comparing a live
    /// table with a rebuilt one).
    pub fn dump(&self) -> Result<Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(&self.cf(), IteratorMode::Start) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Compacts the whole table into its last level: the tombstones of
    /// rows that moved are dropped, and a read seeks in one sorted run.
    pub fn compact(&self) {
        self.db
            .compact_range_cf(&self.cf(), None::<&[u8]>, None::<&[u8]>);
    }

    /// Holds background compaction off (`false`) while a rebuild writes the
    /// table, or lets it run again (`true`).
    pub fn set_auto_compaction(&self, on: bool) -> Result<(), StoreError> {
        let off = if on { "false" } else { "true" };
        Ok(self
            .db
            .set_options_cf(&self.cf(), &[("disable_auto_compactions", off)])?)
    }

    /// Drops every row and the checkpoint (before a rebuild).
    pub fn clear(&self) -> Result<(), StoreError> {
        self.db.drop_cf(&self.family)?;
        self.db
            .create_cf(&self.family, &super::rocks::table_options(&self.memory))?;
        Ok(())
    }
}

/// Read options that end an iteration at the last key starting with
/// `prefix`: RocksDB then stops there instead of reading on (through the
/// next range's tombstones, or its first block) to find a key past it.
fn within(prefix: &[u8]) -> ReadOptions {
    let mut o = ReadOptions::default();
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            o.set_iterate_upper_bound(end);
            break;
        }
    }
    o
}
