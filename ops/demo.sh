#!/usr/bin/env bash
# `make demo`: starts a fresh vanthu on a temporary data directory with the
# development clock (so the late reply can happen without waiting ten days)
# and development keys generated for today (so no certificate or CRL has
# expired, whatever the date), plays the demo story against it, and stops it.
# To play it against your own server instead:
# VANTHU_DEV_CLOCK=true vanthu serve --dev, then vanthu-dev demo --url URL.
set -euo pipefail
BIN=${1:-./target/release/vanthu}
DEV=${2:-./target/release/vanthu-dev}
dir=$(mktemp -d)
out="$dir/server.out"
trap 'kill "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$DEV" dev-keys --org keys-dev/org.toml --out "$dir/keys" >/dev/null
export VANTHU_KEYS_DIR="$dir/keys"
VANTHU_DEV_CLOCK=true VANTHU_LOG=warn "$BIN" serve --dev --listen 127.0.0.1:0 --data-dir "$dir/data" >"$out" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^vanthu listening on //p' "$out")
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  cat "$out" >&2
  echo "the server did not start" >&2
  exit 1
fi
"$DEV" demo --url "$url"
