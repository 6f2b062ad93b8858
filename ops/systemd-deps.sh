#!/usr/bin/env bash
# Installs what the unit test of ops/vanthu.service (tests/it/server.rs)
# runs: systemd-analyze, from Debian's systemd package, at
# /usr/bin/systemd-analyze. `systemd-analyze verify` and `security --offline`
# work on a unit file without systemd running (a container is fine).
# As root it installs with apt-get; otherwise it prints the command and stops.
#
#   ops/systemd-deps.sh           check, install when missing (`make test-deps`)
#   ops/systemd-deps.sh --check   only report: prints what it found, exit 1 if not
#
# VANTHU_SYSTEMD_ROOT prefixes the path, so a test can check the script
# against a fake filesystem root.
set -euo pipefail

root="${VANTHU_SYSTEMD_ROOT:-}"
analyze="$root/usr/bin/systemd-analyze"

found() { [ -x "$analyze" ]; }

if [ "${1:-}" = "--check" ]; then
  if found; then echo "$analyze"; exit 0; fi
  echo "vanthu: no systemd-analyze (want $analyze); install systemd" >&2
  exit 1
fi

if ! found; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "vanthu: installing systemd (the unit test runs systemd-analyze)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  else
    echo "vanthu: systemd-analyze is missing; the unit test needs it. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y systemd" >&2
    exit 1
  fi
fi
