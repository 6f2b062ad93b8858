//! The log's Merkle tree (RFC 6962), stored as C2SP tlog-tiles hashes and
//! kept by the single writer in the same WriteBatch as the records it
//! covers, so the tree and the log cannot disagree after a crash.
//!
//! Level 0 is the `leaves` family (leaf `i` is the record at position
//! `i + 1`). The `tree` family holds the levels above: key `level (1) ‖
//! index (8, big-endian)` → the 32-byte root of the complete subtree of
//! 256^level leaves that starts at leaf `index · 256^level`. A tile
//! `L/N` is the 256 consecutive keys `(L, N·256 ..)`; a hash enters level
//! `L ≥ 1` only when the tile below it is full, so partial tiles are never
//! hashed into the level above, and every stored hash is immutable.
//!
//! Must never: write outside the writer's batch (or the one-off build of a
//! log written before the tree existed, before the writer starts), or
//! answer for a tree larger than the durable head.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::codec::keys;
use super::rocks::{cf, Db, CF_LEAVES, CF_TREE};
use super::StoreError;
use crate::crypto::merkle::{self, Hash, TiledTree, TILE_WIDTH};

/// Tile height in bits: 256 hashes per tile.
const HEIGHT: u32 = 8;

/// Levels a tree of at most 2^64 leaves can have above level 0.
const MAX_LEVEL: u8 = 7;

/// Key of the stored hash `index` at `level` (≥ 1).
pub(super) fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// How many complete hashes `level` has in a tree of `size` leaves.
fn count(size: u64, level: u8) -> u64 {
    size.checked_shr(HEIGHT * u32::from(level)).unwrap_or(0)
}

/// The root of a full tile (256 hashes: a perfect tree of height 8).
fn tile_root(hashes: &[Hash]) -> Hash {
    let Ok(h) = merkle::root(hashes, hashes.len() as u64);
    h
}

/// `count` consecutive hashes of `level` from `from`; a missing one is corruption.
fn read_hashes(db: &Db, level: u8, from: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
    let mut out = Vec::with_capacity(count as usize);
    if count == 0 {
        return Ok(out);
    }
    let (family, start) = if level == 0 {
        (CF_LEAVES, keys::position(from + 1).to_vec())
    } else {
        (CF_TREE, node_key(level, from).to_vec())
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        position: if level == 0 { from + 1 } else { 0 },
        reason,
    };
    for item in db.iterator_cf(
        &cf(db, family),
        IteratorMode::From(&start, Direction::Forward),
    ) {
        let (k, v) = item?;
        let expected = from + out.len() as u64;
        let index = if level == 0 {
            keys::parse_position(&k)?.wrapping_sub(1)
        } else if k.len() == 9 && k[0] == level {
            keys::parse_position(&k[1..])?
        } else {
            break;
        };
        if index != expected {
            break;
        }
        let hash: Hash = v.as_ref().try_into().map_err(|_| {
            corrupt(format!(
                "tree hash {level}/{index} has {} bytes, not 32",
                v.len()
            ))
        })?;
        out.push(hash);
        if out.len() as u64 == count {
            return Ok(out);
        }
    }
    Err(corrupt(format!(
        "tree hash {level}/{} is missing",
        from + out.len() as u64
    )))
}

/// The right edge of the tree: the hashes of the last, partial tile of
/// each level. Enough to extend the tree leaf by leaf without reading it.
#[derive(Debug, Clone, Default)]
pub(super) struct Frontier {
    size: u64,
    levels: Vec<Vec<Hash>>,
}

impl Frontier {
    /// The frontier of the stored tree of `size` leaves (at most 255
    /// hashes per level are read).
    pub(super) fn load(db: &Db, size: u64) -> Result<Self, StoreError> {
        let mut levels = Vec::new();
        let mut level = 0u8;
        loop {
            let n = count(size, level);
            if n == 0 && level > 0 {
                break;
            }
            let partial = n % TILE_WIDTH;
            levels.push(read_hashes(db, level, n - partial, partial)?);
            level += 1;
        }
        Ok(Self { size, levels })
    }

    /// Adds the next leaf; `emit(level, index, hash)` receives every hash
    /// that became complete at a level ≥ 1 (a tile below it filled).
    pub(super) fn push(&mut self, leaf: Hash, mut emit: impl FnMut(u8, u64, &Hash)) {
        self.size += 1;
        if self.levels.is_empty() {
            self.levels.push(Vec::with_capacity(TILE_WIDTH as usize));
        }
        self.levels[0].push(leaf);
        let mut level = 0usize;
        while self.levels[level].len() as u64 == TILE_WIDTH {
            let hash = tile_root(&self.levels[level]);
            self.levels[level].clear();
            level += 1;
            if self.levels.len() == level {
                self.levels.push(Vec::with_capacity(TILE_WIDTH as usize));
            }
            let l = level as u8;
            emit(l, count(self.size, l) - 1, &hash);
            self.levels[level].push(hash);
        }
    }

    /// Adds the next leaf, putting completed hashes into `wb`.
    pub(super) fn stage(&mut self, db: &Db, leaf: Hash, wb: &mut WriteBatch) {
        let mut tree = None;
        self.push(leaf, |level, index, hash| {
            let family = tree.get_or_insert_with(|| cf(db, CF_TREE));
            wb.put_cf(family, node_key(level, index), hash);
        });
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }
}

/// How many hashes `level` holds in the `tree` family.
fn stored_count(db: &Db, level: u8) -> Result<u64, StoreError> {
    let mut it = db.iterator_cf(
        &cf(db, CF_TREE),
        IteratorMode::From(&node_key(level, u64::MAX), Direction::Reverse),
    );
    match it.next() {
        Some(item) => {
            let (k, _) = item?;
            if k.len() == 9 && k[0] == level {
                Ok(keys::parse_position(&k[1..])? + 1)
            } else {
                Ok(0)
            }
        }
        None => Ok(0),
    }
}

/// What `check_at_open` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeAtOpen {
    /// The stored tree covers exactly the log.
    Covers,
    /// The log predates the tree: it was built from the leaf hashes once.
    Built,
}

/// Checks that the stored tree covers exactly `head` leaves (one seek per
/// level, no recomputation). A log written before the tree existed (no
/// tree hash at all) has its tree built here, once, before the writer
/// starts; any other disagreement is corruption.
pub(super) fn check_at_open(db: &Db, head: u64) -> Result<TreeAtOpen, StoreError> {
    let mut stored = Vec::new();
    for level in 1..=MAX_LEVEL {
        stored.push((level, stored_count(db, level)?, count(head, level)));
    }
    if stored.iter().all(|(_, have, _)| *have == 0) && head >= TILE_WIDTH {
        let built = rebuild(db, head, Mode::Write)?;
        tracing::info!(
            leaves = head,
            hashes = built.hashes,
            "built the Merkle tree of a log written before it existed"
        );
        return Ok(TreeAtOpen::Built);
    }
    for (level, have, want) in stored {
        if have != want {
            return Err(StoreError::Corrupt {
                position: head,
                reason: format!(
                    "the Merkle tree has {have} hashes at level {level} but a log of {head} records needs {want}"
                ),
            });
        }
    }
    Ok(TreeAtOpen::Covers)
}

enum Mode {
    Write,
    Compare,
}

/// What a full pass over the leaves found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    /// Leaves read.
    pub leaves: u64,
    /// Hashes of levels ≥ 1 written or compared.
    pub hashes: u64,
    /// The root of the whole tree.
    pub root: Hash,
}

/// Recomputes the tree from the leaf hashes, writing it (`Write`) or
/// comparing every stored hash with it (`Compare`).
fn rebuild(db: &Db, head: u64, mode: Mode) -> Result<Recomputed, StoreError> {
    let leaves = cf(db, CF_LEAVES);
    let tree = cf(db, CF_TREE);
    let mut frontier = Frontier::default();
    let mut wb = WriteBatch::default();
    let mut hashes = 0u64;
    let mut mismatch: Option<String> = None;
    for item in db.iterator_cf(&leaves, IteratorMode::Start) {
        let (k, v) = item?;
        let position = keys::parse_position(&k)?;
        if position > head {
            break;
        }
        if position != frontier.size() + 1 {
            return Err(StoreError::Corrupt {
                position,
                reason: format!("leaf hashes jump from {} to {position}", frontier.size()),
            });
        }
        let leaf: Hash = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            position,
            reason: "a leaf hash is not 32 bytes".into(),
        })?;
        let mut failed = None;
        frontier.push(leaf, |level, index, hash| {
            hashes += 1;
            match mode {
                Mode::Write => wb.put_cf(&tree, node_key(level, index), hash),
                Mode::Compare => match db.get_pinned_cf(&tree, node_key(level, index)) {
                    Ok(Some(stored)) if stored.as_ref() == hash => {}
                    Ok(_) => {
                        mismatch.get_or_insert_with(|| {
                            format!("tree hash {level}/{index} does not match the leaves")
                        });
                    }
                    Err(e) => failed = Some(e),
                },
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        if wb.len() >= 4096 {
            db.write(std::mem::take(&mut wb))?;
        }
    }
    if frontier.size() != head {
        return Err(StoreError::Corrupt {
            position: frontier.size() + 1,
            reason: format!(
                "leaf hashes end at {} below the head {head}",
                frontier.size()
            ),
        });
    }
    if let Some(reason) = mismatch {
        return Err(StoreError::Corrupt {
            position: 0,
            reason,
        });
    }
    if matches!(mode, Mode::Write) {
        db.write_opt(wb, &super::rocks::sync_write())?;
    }
    let root = reader(db, head).root()?;
    Ok(Recomputed {
        leaves: head,
        hashes,
        root,
    })
}

/// Recomputes the whole tree from the leaf hashes and compares every
/// stored hash, and that no level holds more than the log needs (for
/// `vanthu check`; the leaf hashes themselves are checked against the
/// records by the caller).
pub fn verify(db: &Db, head: u64) -> Result<Recomputed, StoreError> {
    if db.cf_handle(CF_TREE).is_none() {
        return Err(StoreError::Corrupt {
            position: head,
            reason: "the log has no Merkle tree (start the service once to build it)".into(),
        });
    }
    for level in 1..=MAX_LEVEL {
        let (have, want) = (stored_count(db, level)?, count(head, level));
        if have != want {
            return Err(StoreError::Corrupt {
                position: head,
                reason: format!(
                    "the Merkle tree has {have} hashes at level {level} but a log of {head} records needs {want}"
                ),
            });
        }
    }
    rebuild(db, head, Mode::Compare)
}

/// The tree of the first `size` leaves, read from the stored tiles.
pub type TreeReader<'a> =
    TiledTree<Box<dyn Fn(u8, u64, u64) -> Result<Vec<Hash>, StoreError> + 'a>>;

/// A reader of the stored tree of `size` leaves (`size` must not exceed
/// the durable head).
pub(super) fn reader(db: &Db, size: u64) -> TreeReader<'_> {
    TiledTree::new(
        size,
        Box::new(move |level, tile, width| read_hashes(db, level, tile * TILE_WIDTH, width)),
    )
}

/// The bytes of tile `level/index` of width `width` (1..=256) in the tree
/// of `size` leaves: its hashes concatenated; `None` if the tree does not
/// have them (yet).
pub fn tile(
    db: &Db,
    size: u64,
    level: u8,
    index: u64,
    width: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if level > MAX_LEVEL || width == 0 || width > TILE_WIDTH {
        return Ok(None);
    }
    let Some(from) = index.checked_mul(TILE_WIDTH) else {
        return Ok(None);
    };
    if from.saturating_add(width) > count(size, level) {
        return Ok(None);
    }
    Ok(Some(read_hashes(db, level, from, width)?.concat()))
}
