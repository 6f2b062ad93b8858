#!/usr/bin/env bash
# What `make bench` needs beyond the build: wrk (HTTP load) and PostgreSQL 15
# (server and pgbench, the baseline), from Debian's packages. As root it
# installs the missing ones with apt-get; otherwise it prints the command.
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg" ] || [ ! -x "$pg/postgres" ] || [ ! -x "$pg/pgbench" ]; then
  missing+=(postgresql postgresql-contrib)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "vanthu bench: installing ${missing[*]}..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "vanthu bench: missing ${missing[*]}. Run:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
