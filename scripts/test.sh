#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need on a fresh machine:
# clang/llvm (SQLite for wasm32), the wasm32 Rust target, and for the browser tests
# Debian's chromium, playwright-core (npm) and wasm-bindgen-cli (pinned to the workspace's
# wasm-bindgen).
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

# The browser suite (chromium + playwright-core, ~10 min): ./scripts/test-web.sh. Not yet part
# of this command: it has not been run on a fresh machine inside the CI budget.
