#!/usr/bin/env bash
# Runs every test of the workspace (the cluster's fault suites on real processes included)
# and the browser suite, installing what the tests need on a fresh machine: clang/llvm
# (SQLite for wasm32) and the wasm32 Rust target here; Debian's chromium, playwright-core and
# wasm-bindgen-cli in ./scripts/test-web.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install clang llvm
rust_target wasm32-unknown-unknown

echo "== build (binaries are used by the end-to-end tests)"
cargo build --workspace --bins

echo "== core compiles for the browser (wasm32)"
cargo build -p concord-core --target wasm32-unknown-unknown

echo "== dependency rules (ARCHITECTURE.md)"
./scripts/check-architecture.sh

echo "== tests"
cargo test --workspace --no-fail-fast

echo "== browser suite (the engine in WASM, the demo app, Chromium)"
./scripts/test-web.sh
