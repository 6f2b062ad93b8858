//! The tree against RFC 6962's definitions, an independent implementation
//! (`ct-merkle`) over random sizes, and tampering.

use base64::Engine;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use proptest::prelude::*;

use super::*;

fn records(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("record {i}").into_bytes()).collect()
}

fn leaves(records: &[Vec<u8>]) -> Vec<Hash> {
    records.iter().map(|r| leaf_hash(r)).collect()
}

fn oracle(records: &[Vec<u8>]) -> MemoryBackedTree<sha2_11::Sha256, Vec<u8>> {
    let mut t = MemoryBackedTree::new();
    for r in records {
        t.push(r.clone());
    }
    t
}

fn flat(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

#[test]
fn the_definitions_hold_for_small_trees() {
    // MTH({}) is SHA-256 of nothing (C2SP's empty-tree root).
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(empty_root()),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    let l = leaves(&records(3));
    assert_eq!(root(&l[..], 0).unwrap(), empty_root());
    assert_eq!(root(&l[..], 1).unwrap(), l[0]);
    assert_eq!(root(&l[..], 2).unwrap(), node_hash(&l[0], &l[1]));
    // Three leaves split 2 + 1 (k is the largest power of two below n).
    assert_eq!(
        root(&l[..], 3).unwrap(),
        node_hash(&node_hash(&l[0], &l[1]), &l[2])
    );
    assert_eq!(
        inclusion_proof(&l[..], 2, 3).unwrap(),
        vec![node_hash(&l[0], &l[1])]
    );
    assert_eq!(inclusion_proof(&l[..], 0, 3).unwrap(), vec![l[1], l[2]]);
    assert_eq!(consistency_proof(&l[..], 2, 3).unwrap(), vec![l[2]]);
    assert_eq!(consistency_proof(&l[..], 1, 3).unwrap(), vec![l[1], l[2]]);
}

#[test]
fn tile_paths_follow_c2sp() {
    assert_eq!(tile_path(0, 1_234_067, 256), "0/x001/x234/067");
    assert_eq!(tile_path(0, 0, 256), "0/000");
    assert_eq!(tile_path(1, 1000, 0), "1/x001/000");
    assert_eq!(tile_path(2, 67, 1), "2/067.p/1");
    assert_eq!(tile_path(0, 273, 112), "0/273.p/112");
}

#[test]
fn tile_paths_parse_in_their_one_c2sp_spelling_only() {
    let hashes = |level, index, width| {
        Some(TilePath::Hashes(Tile {
            level,
            index,
            width,
        }))
    };
    assert_eq!(
        parse_tile_path("0/x001/x234/067"),
        hashes(0, 1_234_067, 256)
    );
    assert_eq!(parse_tile_path("0/000"), hashes(0, 0, 256));
    assert_eq!(parse_tile_path("2/067.p/1"), hashes(2, 67, 1));
    assert_eq!(parse_tile_path("63/273.p/255"), hashes(63, 273, 255));
    assert_eq!(
        parse_tile_path("entries/x001/000.p/17"),
        Some(TilePath::Entries {
            index: 1000,
            width: 17
        })
    );
    for t in [
        Tile {
            level: 1,
            index: 18_446_744_073_709_551_615,
            width: 256,
        },
        Tile {
            level: 0,
            index: 1000,
            width: 5,
        },
    ] {
        assert_eq!(parse_tile_path(&t.path()), Some(TilePath::Hashes(t)));
    }
    for bad in [
        "",
        "0",
        "0/",
        "0/1",
        "0/01",
        "0/0000",
        "0/x000/001",
        "0/001/002",
        "0/x1/002",
        "64/000",
        "00/000",
        "01/000",
        "-1/000",
        "a/000",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/01",
        "0/000.p/",
        "0/000.p/1/",
        "0/000/",
        "0/000.p",
        "0/ 000",
        "entries",
        "entries/",
        "entries/000.p/300",
        "Entries/000",
        "0/x018/x446/x744/x073/x709/x551/616",
        "0/x001/x002/x003/x004/x005/x006/x007/008",
    ] {
        assert_eq!(parse_tile_path(bad), None, "{bad:?}");
    }
}

#[test]
fn the_tiles_of_a_tree_are_those_c2sp_lists() {
    // tlog-tiles' example: 70,000 leaves are 273 full level-0 tiles and a
    // partial one of 112, one full level-1 tile and a partial one of 17,
    // and a partial level-2 tile of 1.
    let all = tiles(70_000);
    let full = |l: u8| {
        all.iter()
            .filter(|t| t.level == l && t.width == 256)
            .count()
    };
    let partial = |l: u8| {
        all.iter()
            .filter(|t| t.level == l && t.width < 256)
            .map(|t| (t.index, t.width))
            .collect::<Vec<_>>()
    };
    assert_eq!((full(0), partial(0)), (273, vec![(273, 112)]));
    assert_eq!((full(1), partial(1)), (1, vec![(1, 17)]));
    assert_eq!((full(2), partial(2)), (0, vec![(0, 1)]));
    assert_eq!(all.len(), 273 + 1 + 1 + 1 + 1);
    assert!(tiles(0).is_empty());
    assert_eq!(
        tiles(256),
        vec![
            Tile {
                level: 0,
                index: 0,
                width: 256
            },
            Tile {
                level: 1,
                index: 0,
                width: 1
            }
        ]
    );
    // Each tile hash is a complete subtree: level 1, hash 16 covers leaves
    // 16·256 .. 17·256.
    let t = Tile {
        level: 1,
        index: 0,
        width: 17,
    };
    assert_eq!(t.leaves(), (0, 17 * 256));
    assert_eq!(t.path(), "1/000.p/17");
    let t = Tile {
        level: 0,
        index: 273,
        width: 112,
    };
    assert_eq!(t.leaves(), (273 * 256, 273 * 256 + 112));
}

#[test]
fn edge_cases_are_refused_not_panics() {
    let l = leaves(&records(5));
    let r5 = root(&l[..], 5).unwrap();
    let r3 = root(&l[..], 3).unwrap();
    assert_eq!(
        verify_inclusion(5, 5, &l[0], &[], &r5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        verify_consistency(5, 3, &r5, &r3, &[]),
        Err(ProofError::SizesOutOfOrder { old: 5, new: 3 })
    );
    assert!(verify_consistency(0, 5, &empty_root(), &r5, &[]).is_ok());
    assert!(verify_consistency(5, 5, &r5, &r5, &[]).is_ok());
    assert_eq!(
        verify_consistency(5, 5, &r5, &r3, &[]),
        Err(ProofError::RootMismatch)
    );
    assert!(verify_consistency(3, 5, &r3, &r5, &[]).is_err());
    // A one-leaf tree: the leaf is the root, the proof is empty.
    assert!(verify_inclusion(0, 1, &l[0], &[], &l[0]).is_ok());
    assert!(verify_inclusion(0, 1, &l[0], &[l[1]], &l[0]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Roots and both kinds of proof are byte for byte what ct-merkle
    /// computes, and they verify; any flipped byte or wrong size fails.
    #[test]
    fn the_tree_agrees_with_an_independent_implementation(
        n in 1u64..600,
        pick in any::<u64>(),
        flip in any::<(usize, u8)>(),
    ) {
        let recs = records(n);
        let l = leaves(&recs);
        let t = oracle(&recs);
        let r = root(&l[..], n).unwrap();
        let theirs = t.root();
        prop_assert_eq!(&r[..], &theirs.as_bytes()[..]);

        let index = pick % n;
        let proof = inclusion_proof(&l[..], index, n).unwrap();
        prop_assert_eq!(flat(&proof), t.prove_inclusion(index as usize).as_bytes().to_vec());
        prop_assert!(verify_inclusion(index, n, &l[index as usize], &proof, &r).is_ok());
        // Another root, another leaf, or the leaf at its sibling's place: refused.
        prop_assert!(verify_inclusion(index, n, &l[index as usize], &proof, &node_hash(&r, &r)).is_err());
        prop_assert!(verify_inclusion(index, n, &leaf_hash(b"forged"), &proof, &r).is_err());
        if index ^ 1 < n {
            prop_assert!(verify_inclusion(index ^ 1, n, &l[index as usize], &proof, &r).is_err());
        }
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let (i, bit) = (flip.0 % (bad.len() * 32), 1u8 << (flip.1 % 8));
            bad[i / 32][i % 32] ^= bit;
            prop_assert!(verify_inclusion(index, n, &l[index as usize], &bad, &r).is_err());
        }

        let old = 1 + pick % n;
        let old_root = root(&l[..], old).unwrap();
        let proof = consistency_proof(&l[..], old, n).unwrap();
        if old < n {
            let theirs = t.prove_consistency((n - old) as usize);
            prop_assert_eq!(flat(&proof), theirs.as_bytes().to_vec());
        }
        prop_assert!(verify_consistency(old, n, &old_root, &r, &proof).is_ok());
        if old < n {
            let mut bad = proof.clone();
            let (i, bit) = (flip.0 % (bad.len() * 32), 1u8 << (flip.1 % 8));
            bad[i / 32][i % 32] ^= bit;
            prop_assert!(verify_consistency(old, n, &old_root, &r, &bad).is_err());
            prop_assert!(verify_consistency(old, n, &r, &r, &proof).is_err());
            prop_assert!(verify_consistency(old, n, &old_root, &node_hash(&r, &r), &proof).is_err());
        }
    }
}
