#!/usr/bin/env bash
# Profiles the service under one wrk workload with perf (Debian linux-perf):
#   ops/bench/profile.sh [draft|inbox|healthz|signatures|flows] [SECONDS]
# Starts a release `vanthu serve --dev` on a temporary data directory, runs
# the workload at 64 connections (wrk, or `vanthu-dev bench signatures|flows`
# for the ones needing client-side signatures; signatures are sampled from
# the submissions on, after the documents are prepared) while `perf record`
# samples the server,
# and prints the top of `perf report` (by self time and by children), so a
# claim about where the CPU goes can be checked by anyone.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORKLOAD=${1:-draft}
SECONDS_=${2:-15}
command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 1; }
BIN=./target/release/vanthu
DEV=./target/release/vanthu-dev
mkdir -p target/bench
work=$(mktemp -d -p target vanthu-profile-XXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$DEV" dev-keys --org keys-dev/org.toml --out "$work/keys" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VANTHU_LOG=warn VANTHU_KEYS_DIR="$work/keys" "$BIN" serve --dev --data-dir "$work/data" \
  --listen "127.0.0.1:$port" > "$work/out" 2> "$work/log" &
pid=$!
until grep -q listening "$work/out" 2>/dev/null; do sleep 0.1; done
token=$("$BIN" token --official svhtt-cv-qlvh --key "$work/keys/jwt/jwt.key")
sha=$(curl -sf -X POST -H "Authorization: Bearer $token" --data-binary "noi dung" \
  "http://127.0.0.1:$port/v1/blobs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
case "$WORKLOAD" in
  draft) script=draft.lua; export BENCH_PATH=/ ;;
  inbox) script=get.lua; export BENCH_PATH="/v1/inbox?limit=20" ;;
  healthz) script=get.lua; export BENCH_PATH=/healthz; token= ;;
  signatures|flows) script= ;;
  *) echo "unknown workload $WORKLOAD" >&2; exit 2 ;;
esac
export BENCH_LUA_DIR=ops/bench/wrk BENCH_TOKEN="$token" BENCH_SHA="$sha" BENCH_RUN=$$
perf_start() {
  perf record -F "${FREQ:-199}" --call-graph "${CALLGRAPH:-dwarf,32768}" -p "$pid" \
    -o "target/bench/perf-$WORKLOAD.data" "$@" 2> /dev/null &
  perf_pid=$!
}
load=("$DEV" bench "$WORKLOAD" --url "http://127.0.0.1:$port" --keys-dir "$work/keys")
case "$WORKLOAD" in
  signatures)
    coproc LOAD { "${load[@]}" --count $((1500 * SECONDS_)) --wait; }
    read -r ready <&"${LOAD[0]}"
    echo "$ready"
    perf_start
    echo go >&"${LOAD[1]}"
    cat <&"${LOAD[0]}"
    kill -INT "$perf_pid" ;;
  flows)
    perf_start
    "${load[@]}" --seconds "$SECONDS_"
    kill -INT "$perf_pid" ;;
  *)
    perf_start -- sleep "$SECONDS_"
    wrk -t2 -c64 -d"${SECONDS_}s" -s "ops/bench/wrk/$script" "http://127.0.0.1:$port" | grep -E "Requests/sec|BENCH_JSON" ;;
esac
wait $perf_pid || true
echo "== self time"
perf report -i "target/bench/perf-$WORKLOAD.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -40
echo "== with children"
perf report -i "target/bench/perf-$WORKLOAD.data" --children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -60
