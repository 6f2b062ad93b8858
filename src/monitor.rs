//! The auditor's monitor (`vanthu log monitor`), run from cron by a
//! receiving province or an inspector: fetches the newest checkpoint,
//! checks the log key's signature, checks it is consistent with the last
//! checkpoint it accepted (kept in a state file), and checks that the
//! tiles it downloads hash to the checkpoint's root.
//!
//! Must never: accept a checkpoint the log key did not sign, or write a
//! checkpoint to its state before every check passed.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::crypto::merkle::{self, Hash, Subtrees, TiledTree, TILE_WIDTH};
use crate::crypto::note::{self, Checkpoint};

/// Why the monitor raised the alarm or could not check.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot fetch {0}: {1}")]
    Fetch(String, String),
    #[error("the state file {0}: {1}")]
    State(String, String),
    #[error("the log's checkpoint: {0}")]
    Checkpoint(#[from] note::NoteError),
    #[error("ROLLBACK: the log now shows {new} records, but it showed {old} before")]
    Rollback { old: u64, new: u64 },
    #[error("FORK: the checkpoint of {new} records is not consistent with the one of {old} seen before: {why}")]
    Fork { old: u64, new: u64, why: String },
    #[error("TILES: {0}")]
    Tiles(String),
}

/// What one run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The checkpoint accepted before, if any.
    pub previous: Option<u64>,
    /// The checkpoint accepted now.
    pub checkpoint: Checkpoint,
    /// Tiles downloaded and checked.
    pub tiles: usize,
}

/// One run against the log at `url` (its `/log` prefix's parent), trusting
/// the note verifier key `vkey`, remembering in `state`. With `full`, every
/// tile of the tree is downloaded and every hash checked against the tile
/// below it; otherwise the tiles the root needs.
pub async fn run(url: &str, vkey: &str, state: &Path, full: bool) -> Result<Outcome, MonitorError> {
    let url = url.trim_end_matches('/').to_owned();
    let http = crate::outbound::client(Duration::from_secs(60), None)
        .map_err(|e| MonitorError::Fetch(url.clone(), e.to_string()))?;
    let state_name = state.display().to_string();
    let previous = match std::fs::read(state) {
        Ok(bytes) => Some(note::open(&bytes, vkey).map_err(|e| {
            MonitorError::State(
                state_name.clone(),
                format!("holds no checkpoint signed by this key: {e}"),
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(MonitorError::State(state_name, e.to_string())),
    };
    let bytes = fetch(&http, &format!("{url}/log/checkpoint")).await?;
    let checkpoint = note::open(&bytes, vkey)?;
    if let Some(old) = &previous {
        consistent(&http, &url, old, &checkpoint).await?;
    }
    let tiles = check_tiles(http, url, checkpoint.clone(), full).await?;
    let tmp = state.with_extension("tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, state))
        .map_err(|e| MonitorError::State(state_name, e.to_string()))?;
    Ok(Outcome {
        previous: previous.map(|p| p.size),
        checkpoint,
        tiles,
    })
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, MonitorError> {
    let fail = |e: String| MonitorError::Fetch(url.to_owned(), e);
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !r.status().is_success() {
        return Err(fail(format!("HTTP {}", r.status())));
    }
    Ok(r.bytes().await.map_err(|e| fail(e.to_string()))?.to_vec())
}

/// The new checkpoint extends the old one: not smaller, the same root at
/// the same size, else a consistency proof that verifies.
async fn consistent(
    http: &reqwest::Client,
    url: &str,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), MonitorError> {
    let fork = |why: String| MonitorError::Fork {
        old: old.size,
        new: new.size,
        why,
    };
    if new.size < old.size {
        return Err(MonitorError::Rollback {
            old: old.size,
            new: new.size,
        });
    }
    let proof: Vec<Hash> = if new.size == old.size || old.size == 0 {
        Vec::new()
    } else {
        let body = fetch(
            http,
            &format!(
                "{url}/v1/log/proof/consistency?from={}&to={}",
                old.size, new.size
            ),
        )
        .await?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| fork(format!("the consistency proof is not JSON: {e}")))?;
        body["hashes"]
            .as_array()
            .ok_or_else(|| fork("the consistency proof has no hashes".into()))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|h| B64.decode(h).ok())
                    .and_then(|h| Hash::try_from(h).ok())
                    .ok_or_else(|| fork("a proof hash is not 32 bytes of base64".into()))
            })
            .collect::<Result<_, _>>()?
    };
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
        .map_err(|e| fork(e.to_string()))
}

/// Downloads tiles and checks they hash to the checkpoint's root; with
/// `full`, every tile, each full one also against its hash one level up.
async fn check_tiles(
    http: reqwest::Client,
    url: String,
    checkpoint: Checkpoint,
    full: bool,
) -> Result<usize, MonitorError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let fetched = std::cell::Cell::new(0usize);
        let get_tile = |level: u8, index: u64, width: u64| -> Result<Vec<Hash>, MonitorError> {
            let path = merkle::tile_path(level, index, width);
            let bytes = runtime.block_on(fetch(&http, &format!("{url}/log/tile/{path}")))?;
            fetched.set(fetched.get() + 1);
            if bytes.len() as u64 != 32 * width {
                return Err(MonitorError::Tiles(format!(
                    "tile {path} has {} bytes, not {}",
                    bytes.len(),
                    32 * width
                )));
            }
            Ok(bytes
                .chunks(32)
                .map(|c| c.try_into().expect("32-byte chunks"))
                .collect())
        };
        let tree = TiledTree::new(checkpoint.size, &get_tile);
        if tree.root()? != checkpoint.root {
            return Err(MonitorError::Tiles(format!(
                "the tiles do not hash to the root of the checkpoint of {} records",
                checkpoint.size
            )));
        }
        if full {
            for t in merkle::tiles(checkpoint.size) {
                if t.width != TILE_WIDTH {
                    continue;
                }
                let hashes = get_tile(t.level, t.index, t.width)?;
                let Ok(tile_root) = merkle::root(&hashes[..], TILE_WIDTH);
                let (start, end) = t.leaves();
                if tree.subtree(start, end)? != tile_root {
                    return Err(MonitorError::Tiles(format!(
                        "tile {} does not hash to its hash in the level above",
                        t.path()
                    )));
                }
            }
        }
        Ok(fetched.get())
    })
    .await
    .map_err(|e| MonitorError::Tiles(e.to_string()))?
}
