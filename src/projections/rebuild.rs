//! `vanthu rebuild`: drops projections and replays the whole log into them,
//! with a progress bar, on a stopped service's data directory.
//!
//! Must never: run while the service runs (RocksDB's lock refuses a second
//! opener anyway), or touch the log.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{all, Projections, BATCH};
use crate::store::RocksLog;

/// What one projection's rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub name: &'static str,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Rebuilds `only` (or every projection) from position 1.
pub fn rebuild(
    log: &RocksLog,
    only: Option<&str>,
    show_progress: bool,
) -> Result<Vec<Rebuilt>, Box<dyn std::error::Error + Send + Sync>> {
    let list: Vec<_> = all()
        .into_iter()
        .filter(|p| only.is_none_or(|n| n == p.name()))
        .collect();
    if list.is_empty() {
        let names: Vec<_> = all().iter().map(|p| p.name()).collect();
        return Err(format!(
            "no projection {:?}; one of {}",
            only.unwrap_or_default(),
            names.join(", ")
        )
        .into());
    }
    let projections = Projections::open(log, list)?;
    let names = projections.names();
    for name in &names {
        projections.clear(name)?;
    }
    let head = log.head();
    let bar = if show_progress {
        ProgressBar::new(head)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    // One pass over the log feeds every projection, folded in the memory
    // the service would give RocksDB (it is not running).
    let started = Instant::now();
    projections.fold(log.memory_capacity(), BATCH * 5, &|at| bar.set_position(at))?;
    // Rows that moved within the run (an inbox item from pending to done
    // across two batches) left tombstones: drop them now rather than let
    // the first page reads step over them.
    projections.compact();
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let events = projections.position(names[0]);
    let out = vec![Rebuilt {
        name: if names.len() == 1 { names[0] } else { "all" },
        events,
        seconds,
        events_per_second: if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        },
    }];
    Ok(out)
}
