#!/usr/bin/env bash
# Installs what building vanthu needs beyond a Rust toolchain and gcc:
# libclang, because the rocksdb crate generates its C bindings with bindgen.
# As root it installs with apt-get; otherwise it prints the command and stops.
set -euo pipefail

have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null && return 0
  return 1
}

if ! have_libclang; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "vanthu: installing libclang-dev (needed by the rocksdb crate's bindgen)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    echo "vanthu: libclang is missing; the rocksdb crate needs it to build. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi

for tool in rustfmt clippy; do
  if ! cargo "${tool/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "vanthu: cargo $tool is missing; installing the rustup component..." >&2
    rustup component add "$tool"
  fi
done
