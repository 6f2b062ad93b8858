#!/usr/bin/env bash
# Installs what the page tests (tests/it/ui.rs) drive: Debian's Chromium
# and its ChromeDriver, at /usr/bin/chromium and /usr/bin/chromedriver.
# As root it installs with apt-get; otherwise it prints the command and stops.
#
#   ops/browser-deps.sh           check, install when missing (`make test-deps`)
#   ops/browser-deps.sh --check   only report: prints what it found, exit 1 if not
#
# VANTHU_BROWSER_ROOT prefixes both paths, so a test can check the script
# against a fake filesystem root.
set -euo pipefail

root="${VANTHU_BROWSER_ROOT:-}"
browser="$root/usr/bin/chromium"
driver="$root/usr/bin/chromedriver"

found() { [ -x "$browser" ] && [ -x "$driver" ]; }

if [ "${1:-}" = "--check" ]; then
  if found; then echo "$browser $driver"; exit 0; fi
  echo "vanthu: no Chromium with ChromeDriver (want $browser and $driver); install chromium chromium-driver" >&2
  exit 1
fi

if ! found; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "vanthu: installing chromium and chromium-driver (the page tests drive them)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "vanthu: Chromium and ChromeDriver are missing; the page tests need them. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi
