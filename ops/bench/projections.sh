#!/usr/bin/env bash
# Projection rebuild rate and query latency at scale:
#   ops/bench/projections.sh [EVENTS] [DIR]
# 1. seeds DIR (default ./bench-projections, on disk, not /tmp) with about
#    EVENTS (default 1,000,000) realistic document events through the domain;
# 2. rebuilds every projection from the log (events/s), after timing
#    `vanthu check` on the same log as the baseline (read + hash every record);
# 3. starts the service on DIR and times inbox and deadline queries against
#    /healthz on the same server (p50/p99).
set -euo pipefail
EVENTS=${1:-1000000}
DIR=${2:-./bench-projections}
BIN=./target/release/vanthu
DEV=./target/release/vanthu-dev
cargo build --release --workspace
rm -rf "$DIR"
"$DEV" bench seed --dir "$DIR" --events "$EVENTS"
echo "baseline: read and hash the whole log"
/usr/bin/time -f "  %e s" "$BIN" check --data-dir "$DIR"
"$BIN" rebuild --data-dir "$DIR"
"$DEV" bench queries --dir "$DIR" --requests 1000
rm -rf "$DIR"
