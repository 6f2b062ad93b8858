//! RocksDB specifics: column families, options, opening, tail verification,
//! and the raw-write baseline the store benchmark compares against.
//!
//! Families: `log` (position → record bytes), `leaves` (position → leaf hash),
//! `streams` (stream ‖ version → position), `heads` (stream → last version),
//! `ids` (event id / dedup key → position / outcome), `tree` (the Merkle
//! tree's hashes above the leaves, see `tree`); outside the log proper,
//! `checkpoints` (tree size → signed checkpoint) and `blobs`.
//!
//! Must never: write to the log families outside the single writer (the
//! benchmark baseline writes only to its own throw-away database).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, Direction, IteratorMode, MultiThreaded, Options,
    WriteBatch, WriteOptions,
};

use super::codec::{self, keys};
use super::StoreError;

/// The database handle shared by the writer and readers.
pub type Db = rocksdb::DBWithThreadMode<MultiThreaded>;

pub const CF_LOG: &str = "log";
pub const CF_LEAVES: &str = "leaves";
pub const CF_STREAMS: &str = "streams";
pub const CF_HEADS: &str = "heads";
pub const CF_IDS: &str = "ids";
pub const CF_TREE: &str = "tree";

/// Signed checkpoints by tree size, written by the checkpoint signer.
pub const CF_CHECKPOINTS: &str = "checkpoints";

/// Content-addressed blobs (document files), outside the log proper.
pub const CF_BLOBS: &str = "blobs";

/// Every family the log owns.
pub const LOG_FAMILIES: [&str; 6] = [CF_LOG, CF_LEAVES, CF_STREAMS, CF_HEADS, CF_IDS, CF_TREE];

/// The memory RocksDB may use, from one setting (`store.memory_mb`): one
/// LRU block cache shared by every family, holding data, index and filter
/// blocks, and one write-buffer manager that charges every memtable to the
/// same cache, so blocks and memtables together stay within its capacity
/// however many families (projections) there are and however large the
/// data grows.
#[derive(Clone)]
pub struct Memory {
    cache: rocksdb::Cache,
    buffers: rocksdb::WriteBufferManager,
    bytes: usize,
}

impl Memory {
    /// At least 16 MiB.
    pub fn new(bytes: usize) -> Self {
        let bytes = bytes.max(16 << 20);
        let cache = rocksdb::Cache::new_lru_cache(bytes);
        // Memtables may take half; past it the largest is flushed.
        let buffers = rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(
            bytes / 2,
            false,
            cache.clone(),
        );
        Self {
            cache,
            buffers,
            bytes,
        }
    }

    /// The most one family's memtable holds before it is flushed.
    pub fn write_buffer(&self) -> u64 {
        (self.bytes as u64 / 8).min(64 << 20)
    }

    /// Bytes the cache holds now (blocks and charged memtables).
    pub fn usage(&self) -> usize {
        self.cache.get_usage()
    }

    /// Bytes it may hold.
    pub fn capacity(&self) -> usize {
        self.bytes
    }

    /// A family's options on this memory: its blocks (index and filters
    /// too) in the shared cache, memtables of at most an eighth of it.
    fn family(&self, mut o: Options, mut t: BlockBasedOptions) -> Options {
        t.set_block_cache(&self.cache);
        t.set_cache_index_and_filter_blocks(true);
        t.set_cache_index_and_filter_blocks_with_high_priority(true);
        t.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Partitioned index and filters: a seek reads the pinned top level
        // and one 4 KiB partition, not a file's whole index block, which in
        // a table of a few million rows outgrows what a cache shard keeps
        // (at 2M events every deadline page read one from disk and
        // decompressed it: 1.75 ms of CPU per page).
        t.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
        t.set_partition_filters(true);
        t.set_metadata_block_size(4096);
        t.set_pin_top_level_index_and_filter(true);
        o.set_block_based_table_factory(&t);
        o.set_write_buffer_size(self.write_buffer() as usize);
        o
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_MB << 20)
    }
}

/// `store.memory_mb`'s default.
pub const DEFAULT_MEMORY_MB: usize = 256;

fn db_options(memory: &Memory) -> Options {
    let mut o = Options::default();
    o.set_write_buffer_manager(&memory.buffers);
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    // Two cores on the reference machine: one for flush, one for compaction.
    o.increase_parallelism(2);
    o.set_max_background_jobs(2);
    // Keep the WAL honest: no manual flushing, no unordered writes (readers
    // rely on a WriteBatch becoming visible all at once).
    o.set_manual_wal_flush(false);
    // Bound the WAL (older memtables are flushed beyond it): a restart
    // replays at most this much, which the space reserve (`space.rs`) covers.
    o.set_max_total_wal_size(MAX_TOTAL_WAL_SIZE);
    o
}

/// Most bytes of WAL kept before memtables are flushed.
pub const MAX_TOTAL_WAL_SIZE: u64 = 64 << 20;

fn cf_options(name: &str, memory: &Memory) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let mut t = BlockBasedOptions::default();
    if matches!(name, CF_IDS | CF_HEADS | CF_STREAMS) {
        // Point lookups on every append (mostly misses for new event ids):
        // bloom filters in the tables and in the memtable make misses cheap.
        t.set_bloom_filter(10.0, false);
        o.set_memtable_whole_key_filtering(true);
        o.set_memtable_prefix_bloom_ratio(0.05);
    }
    if name == CF_BLOBS {
        // Large values go to blob files (BlobDB), keeping the LSM small.
        o.set_enable_blob_files(true);
        o.set_min_blob_size(4096);
        o.set_compression_type(rocksdb::DBCompressionType::None);
    }
    memory.family(o, t)
}

/// Options of a projection family. Rows move between key ranges (an inbox
/// item from pending to done), so a range holds the tombstones of the rows
/// that left it, and a page read must step over them until compaction drops
/// them: a file whose entries are half tombstones is marked for compaction
/// at once. A bloom filter makes a point lookup of a missing row (before a
/// delete, `Tx::delete`) cheap.
pub fn table_options(memory: &Memory) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.add_compact_on_deletion_collector_factory(1024, 512, 0.5);
    let mut t = BlockBasedOptions::default();
    t.set_bloom_filter(10.0, false);
    memory.family(o, t)
}

/// Opens an existing database read-only (for `vanthu check`): creates nothing.
pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
    // A service killed during its very first start may have left fewer
    // families than a full log has: open whatever exists, as `open` would.
    let existing = Db::list_cf(&Options::default(), path)?;
    let cfs = LOG_FAMILIES
        .iter()
        .chain(&[CF_CHECKPOINTS])
        .filter(|name| existing.iter().any(|e| e == *name))
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, &Memory::default())));
    Ok(Db::open_cf_descriptors_read_only(
        &Options::default(),
        path,
        cfs,
        false,
    )?)
}

/// Opens (or creates) the database with the log's families, within `memory`.
pub fn open(path: &Path, memory: &Memory) -> Result<Arc<Db>, StoreError> {
    std::fs::create_dir_all(path).map_err(|e| StoreError::Io(path.display().to_string(), e))?;
    let mut names: Vec<String> = LOG_FAMILIES
        .iter()
        .chain(&[CF_BLOBS, CF_CHECKPOINTS])
        .map(|n| n.to_string())
        .collect();
    // Projection tables (`p.<name>`) created by earlier runs must be opened too.
    for existing in Db::list_cf(&Options::default(), path).unwrap_or_default() {
        if existing != "default" && !names.contains(&existing) {
            names.push(existing);
        }
    }
    let cfs = names.iter().map(|name| {
        let options = if name.starts_with("p.") {
            table_options(memory)
        } else {
            cf_options(name, memory)
        };
        ColumnFamilyDescriptor::new(name, options)
    });
    let db = Db::open_cf_descriptors(&db_options(memory), path, cfs)?;
    Ok(Arc::new(db))
}

/// Flushes every column family's memtable and syncs the WAL: after this a
/// reopen has nothing to replay.
pub fn flush_all(db: &Db) -> Result<(), StoreError> {
    for name in Db::list_cf(&Options::default(), db.path())? {
        if let Some(cf) = db.cf_handle(&name) {
            db.flush_cf(&cf)?;
        }
    }
    db.flush_wal(true)?;
    Ok(())
}

/// Sync-write options: an append is acknowledged only after its WAL fsync.
pub fn sync_write() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Returns a family handle; the families are created at open, so absence is a bug.
pub fn cf<'a>(db: &'a Db, name: &str) -> Arc<rocksdb::BoundColumnFamily<'a>> {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is created at open"))
}

/// The last position in the log (0 when empty).
pub fn last_position(db: &Db) -> Result<u64, StoreError> {
    let mut it = db.iterator_cf(&cf(db, CF_LOG), IteratorMode::End);
    match it.next() {
        None => Ok(0),
        Some(item) => {
            let (k, _) = item?;
            Ok(keys::parse_position(&k)?)
        }
    }
}

/// What the tail check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailReport {
    /// Last position in the log.
    pub head: u64,
    /// How many records were re-hashed.
    pub verified: u64,
    /// `recorded_at` of the last record, if any.
    pub last_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Verifies the last `n` records: keys contiguous, each record decodes, its
/// position field matches its key, and its leaf hash matches the stored one.
/// With `n = 0` only the last record is decoded (for its time).
pub fn verify_tail(db: &Db, n: u64) -> Result<TailReport, StoreError> {
    let head = last_position(db)?;
    let leaves_head = {
        let mut it = db.iterator_cf(&cf(db, CF_LEAVES), IteratorMode::End);
        match it.next() {
            None => 0,
            Some(item) => keys::parse_position(&item?.0)?,
        }
    };
    if leaves_head != head {
        return Err(StoreError::Corrupt {
            position: head.max(leaves_head),
            reason: format!("log ends at {head} but leaf hashes end at {leaves_head}"),
        });
    }
    if head == 0 {
        return Ok(TailReport {
            head,
            verified: 0,
            last_recorded_at: None,
        });
    }
    // The newest record is always decoded (the writer needs its time); only
    // the last `n` are checked.
    let from = head.saturating_sub(n.max(1) - 1).max(1);
    let check_hashes = n > 0;
    let log = cf(db, CF_LOG);
    let leaves = cf(db, CF_LEAVES);
    let mut expected = from;
    let mut last_recorded_at = None;
    let start = keys::position(from);
    for item in db.iterator_cf(&log, IteratorMode::From(&start, Direction::Forward)) {
        let (k, v) = item?;
        let pos = keys::parse_position(&k).map_err(|e| StoreError::Corrupt {
            position: expected,
            reason: format!("bad key after position {}: {e}", expected - 1),
        })?;
        let corrupt = |reason: String| StoreError::Corrupt {
            position: pos,
            reason,
        };
        if pos != expected {
            return Err(corrupt(format!("gap: expected position {expected}")));
        }
        let record = codec::decode(&v).map_err(|e| corrupt(format!("undecodable: {e}")))?;
        if record.position != pos {
            return Err(corrupt(format!("record says position {}", record.position)));
        }
        if check_hashes {
            let stored = db
                .get_cf(&leaves, keys::position(pos))?
                .ok_or_else(|| corrupt("leaf hash missing".into()))?;
            if stored.as_slice() != codec::leaf_hash(&v) {
                return Err(corrupt("leaf hash does not match the record bytes".into()));
            }
        }
        last_recorded_at = Some(record.recorded_at);
        expected += 1;
    }
    if expected != head + 1 {
        return Err(StoreError::Corrupt {
            position: expected,
            reason: format!("log ends at {} but its last key is {head}", expected - 1),
        });
    }
    Ok(TailReport {
        head,
        verified: if check_hashes { head - from + 1 } else { 0 },
        last_recorded_at,
    })
}

/// Raw baseline for the benchmark: pre-encoded single-event WriteBatches of
/// the same keys and sizes an append writes, each written with `sync=true`
/// by `writers` threads (RocksDB's own group commit merges concurrent ones).
/// Returns per-write latencies in seconds and the wall time from the moment
/// all writers were ready to the last acknowledged write.
pub fn raw_sync_writes(
    path: &Path,
    writers: usize,
    events: usize,
    record: &[u8],
) -> Result<(Vec<f64>, f64), StoreError> {
    // The same options as the log's (same memory, same families).
    let db = open(path, &Memory::default())?;
    let per_writer = events.div_ceil(writers.max(1));
    let barrier = Arc::new(std::sync::Barrier::new(writers.max(1)));
    let handles: Vec<_> = (0..writers.max(1))
        .map(|w| {
            let db = Arc::clone(&db);
            let record = record.to_vec();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(
                move || -> Result<(Vec<f64>, Instant, Instant), StoreError> {
                    // Pre-encode every batch before the clock matters.
                    let batches: Vec<WriteBatch> = (0..per_writer)
                        .map(|i| {
                            let pos = (w * per_writer + i + 1) as u64;
                            let stream = format!("bench-raw-{w}");
                            let mut b = WriteBatch::default();
                            b.put_cf(&cf(&db, CF_LOG), keys::position(pos), &record);
                            b.put_cf(
                                &cf(&db, CF_LEAVES),
                                keys::position(pos),
                                codec::leaf_hash(&record),
                            );
                            b.put_cf(
                                &cf(&db, CF_STREAMS),
                                keys::stream_version(&stream, i as u64 + 1),
                                pos.to_be_bytes(),
                            );
                            b.put_cf(
                                &cf(&db, CF_HEADS),
                                stream.as_bytes(),
                                (i as u64 + 1).to_be_bytes(),
                            );
                            let id = uuid::Uuid::now_v7();
                            let ids = cf(&db, CF_IDS);
                            b.put_cf(&ids, keys::event_id(&id), pos.to_be_bytes());
                            // The append's dedup entry: position, count, fingerprint.
                            b.put_cf(&ids, keys::first_event(&id), [7u8; 44]);
                            b
                        })
                        .collect();
                    let opts = sync_write();
                    let mut lat = Vec::with_capacity(per_writer);
                    barrier.wait();
                    let start = Instant::now();
                    for b in batches {
                        let t = Instant::now();
                        db.write_opt(b, &opts)?;
                        lat.push(t.elapsed().as_secs_f64());
                    }
                    Ok((lat, start, Instant::now()))
                },
            )
        })
        .collect();
    let mut all = Vec::with_capacity(events);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for h in handles {
        let (lat, start, end) = h.join().expect("raw writer thread panicked")?;
        all.extend(lat);
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    let wall = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    Ok((all, wall))
}
