#!/usr/bin/env bash
# Installs what building vanthu needs beyond a Rust toolchain and gcc:
# libclang, because the rocksdb crate generates its C bindings with bindgen.
# As root it installs with apt-get; otherwise it prints the command and stops.
#
#   ops/dev-deps.sh           check, install when missing (the Makefile's `deps`)
#   ops/dev-deps.sh --check   only report: prints the libclang found, exit 1 if none
#
# libclang is looked for exactly where bindgen's clang-sys (1.9, `runtime`
# feature, as librocksdb-sys uses it) looks: LIBCLANG_PATH alone when set;
# otherwise `llvm-config --prefix`/{bin,lib,lib64}, LD_LIBRARY_PATH,
# LIBRARY_PATH and the fixed Linux directory globs; file names libclang.so,
# libclang-*.so, libclang.so.*, libclang-*.so.*, never libclang-cpp (the C++
# library that Debian's libclang-cpp14 ships, which bindgen cannot use), and
# only ELF files (clang-sys validates what it finds before loading it).
# VANTHU_DEPS_ROOT prefixes every fixed path, so a test can run the search
# against a fake filesystem root.
set -euo pipefail

root="${VANTHU_DEPS_ROOT:-}"

# Whether $1 is a shared library clang-sys could load: a regular file (or a
# link to one) starting with the ELF magic, as its validate_library checks.
is_elf() {
  [ -f "$1" ] && [ -r "$1" ] && [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]
}

# Prints the libclang files clang-sys would accept in directory $1.
libclang_in() {
  local dir=$1 f name
  [ -d "$dir" ] || return 0
  for f in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
    is_elf "$f" || continue
    name=${f##*/}
    case "$name" in *-cpp.*) continue ;; esac
    echo "$f"
  done
}

find_libclang() {
  local d prefix llvm_config
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    # A file path that is itself a libclang, or a directory holding one.
    if [ -f "$LIBCLANG_PATH" ]; then
      libclang_in "$(dirname "$LIBCLANG_PATH")" | grep -Fx "$LIBCLANG_PATH" && return 0
    fi
    libclang_in "$LIBCLANG_PATH"
    return 0
  fi
  llvm_config="${LLVM_CONFIG_PATH:-llvm-config}"
  if prefix=$("$llvm_config" --prefix 2>/dev/null) && [ -n "$prefix" ]; then
    for d in bin lib lib64; do libclang_in "$root$prefix/$d"; done
  fi
  local IFS=:
  for d in ${LD_LIBRARY_PATH:-} ${LIBRARY_PATH:-}; do [ -n "$d" ] && libclang_in "$d"; done
  unset IFS
  shopt -s nullglob nocaseglob
  for d in "$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/* \
           "$root"/usr/local/lib* "$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*; do
    [ -d "$d" ] && libclang_in "$d"
  done
  shopt -u nullglob nocaseglob
}

found=$(find_libclang | head -n 1 || true)

if [ "${1:-}" = "--check" ]; then
  if [ -n "$found" ]; then echo "$found"; exit 0; fi
  echo "vanthu: no libclang (libclang-cpp does not count); install libclang-dev" >&2
  exit 1
fi

if [ -z "$found" ]; then
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
