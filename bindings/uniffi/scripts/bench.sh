#!/usr/bin/env bash
# The FFI benchmark (BENCHMARKS.md, section "Bindings"): the same calls from Rust, Kotlin
# and Python, release builds, one SQLite file each in a temporary directory.
set -euo pipefail
export PROFILE_DIR=release
source "$(dirname "$0")/tools.sh"
cd "$ROOT"
cargo build -q -p concord-uniffi --bin uniffi-bindgen
cargo build -q --release -p concord-uniffi --lib --example ffi_bench
kotlin_tools
python_tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$TARGET/release/examples/ffi_bench" "$work"
mkdir -p "$work/kt"
CONCORD_TMP="$work/kt" KOTLIN_MAIN=Bench "$UNIFFI/scripts/test-kotlin.sh" | grep "^kotlin "
(cd "$UNIFFI" && "$TOOLS/venv/bin/maturin" build --release --quiet --out "$work/wheels") >/dev/null 2>&1
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/wheels/concord-*.whl
"$work/venv/bin/python" "$UNIFFI/tests/python/bench.py" "$work"
