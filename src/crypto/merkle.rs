//! The Merkle tree of RFC 6962 §2.1 (RFC 9162 §2.1) over the log's leaf
//! hashes: the root of a tree of any size, inclusion and consistency
//! proofs (generated from any source of subtree hashes, so a tile store can
//! answer them without the whole tree in memory), their verification by
//! RFC 9162 §2.1.3.2 and §2.1.4.2, and the C2SP tlog-tiles path encoding.
//!
//! Must never: read storage itself (callers hand it hashes), or accept a
//! proof that does not recompute exactly the expected root and size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf, an interior node or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a record: SHA-256(0x00 ‖ record).
pub fn leaf_hash(record: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(record)
        .finalize()
        .into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 6962 splits.
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Whatever can give the hash of the subtree over leaves `start..end`
/// (MTH(D[start:end])): the leaves themselves, or stored tiles.
pub trait Subtrees {
    /// Why a hash could not be read (nothing, for leaves in memory).
    type Error;
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

/// The leaves in memory: subtree hashes computed on demand.
impl Subtrees for [Hash] {
    type Error = std::convert::Infallible;
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        Ok(match end - start {
            0 => empty_root(),
            1 => self[start as usize],
            n => {
                let k = split(n);
                node_hash(
                    &self.subtree(start, start + k)?,
                    &self.subtree(start + k, end)?,
                )
            }
        })
    }
}

/// MTH(D[0:size]): the root of the tree of the first `size` leaves.
pub fn root<T: Subtrees + ?Sized>(tree: &T, size: u64) -> Result<Hash, T::Error> {
    tree.subtree(0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves, leaf
/// sibling first (RFC 6962 §2.1.1 PATH). `index < size`.
pub fn inclusion_proof<T: Subtrees + ?Sized>(
    tree: &T,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, T::Error> {
    fn path<T: Subtrees + ?Sized>(
        t: &T,
        m: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<(), T::Error> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(t, m, start, start + k, out)?;
            out.push(t.subtree(start + k, end)?);
        } else {
            path(t, m - k, start + k, end, out)?;
            out.push(t.subtree(start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if index < size {
        path(tree, index, 0, size, &mut out)?;
    }
    Ok(out)
}

/// The consistency proof between the trees of `old` and `new` leaves
/// (RFC 6962 §2.1.2 PROOF); empty when `old` is 0 or equals `new`.
pub fn consistency_proof<T: Subtrees + ?Sized>(
    tree: &T,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, T::Error> {
    fn sub<T: Subtrees + ?Sized>(
        t: &T,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), T::Error> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(t.subtree(start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            sub(t, m, start, start + k, whole, out)?;
            out.push(t.subtree(start + k, end)?);
        } else {
            sub(t, m - k, start + k, end, false, out)?;
            out.push(t.subtree(start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        sub(tree, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a tree of {old} leaves cannot be a prefix of one of {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("the proof has {0} hashes, not as many as the sizes need")]
    WrongLength(usize),
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// Shifts `f` and `s` right together until `f` is odd or zero.
fn shift_while_even(f: &mut u64, s: &mut u64) {
    while *f != 0 && *f & 1 == 0 {
        *f >>= 1;
        *s >>= 1;
    }
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            shift_while_even(&mut f, &mut s);
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old` leaves with root `old_root` is a prefix
/// of the tree of `new` leaves with root `new_root` (RFC 9162 §2.1.4.2;
/// an empty old tree is a prefix of every tree, an equal size needs equal
/// roots and no proof).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if old == new && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength(0));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_while_even(&mut f, &mut s);
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Hashes per full tile (C2SP tlog-tiles: height 8).
pub const TILE_WIDTH: u64 = 256;

/// The path of a tile under `<prefix>/tile/` (C2SP tlog-tiles): level,
/// then the index in three-digit groups, `x` on all but the last
/// (1234067 → `x001/x234/067`), then `.p/<width>` for a partial tile
/// (`width` 1..=255; 0 or 256 mean a full tile).
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    let digits = index.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let digits = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = digits
        .as_bytes()
        .chunks(3)
        .map(|g| std::str::from_utf8(g).unwrap_or("000"))
        .collect();
    let mut path = format!("{level}/");
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            path.push('x');
        }
        path.push_str(g);
        if i + 1 < groups.len() {
            path.push('/');
        }
    }
    if !width.is_multiple_of(TILE_WIDTH) {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// What a path under `<prefix>/tile/` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// A hash tile: `<L>/<N>[.p/<W>]`.
    Hashes(Tile),
    /// An entry bundle: `entries/<N>[.p/<W>]` (`width` entries).
    Entries { index: u64, width: u64 },
}

/// Parses a path under `<prefix>/tile/` as C2SP tlog-tiles writes it, and
/// only that way: the level 0–63, the index in three-digit groups with `x`
/// on all but the last and no leading `x000` group, `.p/<W>` with W 1–255
/// in decimal without leading zeros. `None` for anything else.
pub fn parse_tile_path(path: &str) -> Option<TilePath> {
    let (head, rest) = path.split_once('/')?;
    let (rest, width) = match rest.split_once(".p/") {
        Some((index, w)) => {
            let canonical = !w.is_empty()
                && w.bytes().all(|b| b.is_ascii_digit())
                && !w.starts_with('0')
                && w.len() <= 3;
            let w: u64 = w.parse().ok().filter(|w| canonical && *w < TILE_WIDTH)?;
            (index, w)
        }
        None => (rest, TILE_WIDTH),
    };
    let groups: Vec<&str> = rest.split('/').collect();
    if groups.len() > 7 {
        return None;
    }
    let mut index: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { Some(*g) } else { g.strip_prefix('x') }?;
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    let level = if head == "entries" {
        None
    } else {
        let canonical = head.len() <= 2
            && head.bytes().all(|b| b.is_ascii_digit())
            && (head == "0" || !head.starts_with('0'));
        Some(head.parse::<u8>().ok().filter(|l| canonical && *l < 64)?)
    };
    // One spelling per tile: no leading zero groups (`x000/001`).
    let (_, tail) = path.split_once('/')?;
    if tile_path(0, index, width).strip_prefix("0/") != Some(tail) {
        return None;
    }
    Some(match level {
        Some(level) => TilePath::Hashes(Tile {
            level,
            index,
            width,
        }),
        None => TilePath::Entries { index, width },
    })
}

/// A tile of the tree: `width` hashes (1..=256) at `level`, the `index`th
/// tile of its level. Level 0 holds leaf hashes; a hash at level l ≥ 1 is
/// the root of a full tile below it, the subtree of 256^l leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub level: u8,
    pub index: u64,
    pub width: u64,
}

impl Tile {
    /// Its path under `<prefix>/tile/`.
    pub fn path(&self) -> String {
        tile_path(self.level, self.index, self.width)
    }

    /// The leaves `start..end` whose subtree hashes it holds: hash `i`
    /// covers leaves `(index·256 + i)·256^level` onward, 256^level of them.
    pub fn leaves(&self) -> (u64, u64) {
        let span = TILE_WIDTH.pow(u32::from(self.level));
        let first = self.index * TILE_WIDTH * span;
        (first, first + self.width * span)
    }
}

/// Every tile a tree of `size` leaves has: full tiles, then the partial one
/// of each level (its hashes are complete subtrees; a partial tile is never
/// hashed into the level above). Empty tiles are not listed.
pub fn tiles(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    let mut level = 0u8;
    // Hashes at this level: complete subtrees of 256^level leaves.
    let mut hashes = size;
    while hashes > 0 {
        for index in 0..hashes / TILE_WIDTH {
            out.push(Tile {
                level,
                index,
                width: TILE_WIDTH,
            });
        }
        if !hashes.is_multiple_of(TILE_WIDTH) {
            out.push(Tile {
                level,
                index: hashes / TILE_WIDTH,
                width: hashes % TILE_WIDTH,
            });
        }
        hashes /= TILE_WIDTH;
        level += 1;
    }
    out
}

/// Tiles read so far, by (level, tile index).
type TileCache = HashMap<(u8, u64), Rc<Vec<Hash>>>;

/// The tree of `size` leaves read from its tiles: `fetch(level, index,
/// width)` gives the first `width` hashes of tile `level/index`; each tile
/// is fetched at most once. Only complete subtrees are read: a subtree of
/// 2^j leaves is one stored hash when j is a multiple of 8, else the root
/// of 2^(j mod 8) hashes of the level below.
pub struct TiledTree<F> {
    size: u64,
    fetch: F,
    tiles: RefCell<TileCache>,
}

impl<F, E> TiledTree<F>
where
    F: Fn(u8, u64, u64) -> Result<Vec<Hash>, E>,
{
    pub fn new(size: u64, fetch: F) -> Self {
        Self {
            size,
            fetch,
            tiles: RefCell::new(HashMap::new()),
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the whole tree.
    pub fn root(&self) -> Result<Hash, E> {
        root(self, self.size)
    }

    /// Hash `index` of `level`: a complete subtree of 256^level leaves.
    fn hash(&self, level: u8, index: u64) -> Result<Hash, E> {
        let tile = index / TILE_WIDTH;
        let cached = self.tiles.borrow().get(&(level, tile)).cloned();
        let hashes = match cached {
            Some(h) => h,
            None => {
                let count = self.size >> (8 * u32::from(level));
                let width = (count - tile * TILE_WIDTH).min(TILE_WIDTH);
                let h = Rc::new((self.fetch)(level, tile, width)?);
                self.tiles.borrow_mut().insert((level, tile), Rc::clone(&h));
                h
            }
        };
        Ok(hashes[(index % TILE_WIDTH) as usize])
    }
}

impl<F, E> Subtrees for TiledTree<F>
where
    F: Fn(u8, u64, u64) -> Result<Vec<Hash>, E>,
{
    type Error = E;

    fn subtree(&self, start: u64, end: u64) -> Result<Hash, E> {
        let n = end - start;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let j = n.trailing_zeros();
            let level = (j / 8) as u8;
            let first = start >> (8 * u32::from(level));
            let width = 1u64 << (j % 8);
            if width == 1 {
                return self.hash(level, first);
            }
            let hashes = (first..first + width)
                .map(|i| self.hash(level, i))
                .collect::<Result<Vec<_>, _>>()?;
            let Ok(r) = root(&hashes[..], width);
            return Ok(r);
        }
        let k = split(n);
        Ok(node_hash(
            &self.subtree(start, start + k)?,
            &self.subtree(start + k, end)?,
        ))
    }
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
