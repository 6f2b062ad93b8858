#!/usr/bin/env bash
# `make cluster`: a JetStream cluster of three nats-server nodes (R3, fsync on
# every write) and two vanthu API nodes on it, all on loopback, in
# development mode with the demo organisation (docs/JETSTREAM.md).
#
#   nats   n1 4222  n2 4223  n3 4224   (cluster 6222-6224, monitoring 8222-8224)
#   vanthu http://127.0.0.1:8080 and http://127.0.0.1:8081
#
# Usage: ops/cluster.sh NATS_SERVER VANTHU DIR. Ctrl-C stops everything;
# DIR keeps the data, so a second run continues the same log.
set -euo pipefail

nats=${1:?nats-server binary}
vanthu=${2:?vanthu binary}
dir=${3:?directory}
min=2.14.6

version=$("$nats" --version | sed -n 's/^nats-server: v//p')
if [ -z "$version" ] || [ "$(printf '%s\n%s\n' "$min" "$version" | sort -V | head -n1)" != "$min" ]; then
    echo "nats-server ${version:-of unknown version} is too old: the JetStream log needs >= $min (atomic batches)" >&2
    exit 1
fi

mkdir -p "$dir"
pids=()
stop() {
    trap - INT TERM EXIT
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

routes="nats-route://127.0.0.1:6222, nats-route://127.0.0.1:6223, nats-route://127.0.0.1:6224"
for i in 1 2 3; do
    cat > "$dir/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((4221 + i))
http: 127.0.0.1:$((8221 + i))
jetstream { store_dir: "$dir/n$i", sync_interval: always }
cluster { name: vanthu, listen: 127.0.0.1:$((6221 + i)), routes: [$routes] }
EOF
    "$nats" -c "$dir/n$i.conf" 2> "$dir/n$i.log" &
    pids+=($!)
done

# JetStream answers once the cluster has a meta leader.
for _ in $(seq 1 300); do
    if python3 - <<'EOF' 2>/dev/null; then break; fi
import json, urllib.request
jsz = json.load(urllib.request.urlopen("http://127.0.0.1:8222/jsz", timeout=1))
raise SystemExit(0 if jsz.get("meta_cluster", {}).get("leader") else 1)
EOF
    sleep 0.2
done

export VANTHU_STORE_BACKEND=jetstream
export VANTHU_STORE_JETSTREAM_URLS=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
for i in 1 2; do
    "$vanthu" serve --dev --listen "127.0.0.1:$((8079 + i))" --data-dir "$dir/vanthu$i" \
        2> "$dir/vanthu$i.log" &
    pids+=($!)
    # The second node starts on the log the first created (demo included).
    for _ in $(seq 1 300); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$((8079 + i))/readyz', timeout=1)" 2>/dev/null && break
        sleep 0.2
    done
done

echo "nats-server v$version: 127.0.0.1:4222-4224 (monitoring :8222-8224); logs in $dir"
echo "vanthu: http://127.0.0.1:8080 and http://127.0.0.1:8081 (stream VANTHU, R3). Ctrl-C stops all."
wait -n
echo "a process of the cluster exited; stopping the others" >&2
