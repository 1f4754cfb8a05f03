#!/usr/bin/env bash
# Runs every test of the workspace (the cluster's fault suites on real processes included),
# installing what the tests need on a fresh machine: clang/llvm (SQLite for wasm32), the
# wasm32 Rust target, and node + the npm packages of the interop tests (interop/js). The
# browser suite is ./scripts/test-web.sh (it installs Debian's chromium, playwright-core and
# wasm-bindgen-cli itself).
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

echo "== npm packages of the interop tests (yjs, y-websocket, automerge-repo; interop/js)"
command -v node >/dev/null || apt_install nodejs npm
if [ ! -f interop/js/node_modules/.package-lock.json ] || [ interop/js/package-lock.json -nt interop/js/node_modules/.package-lock.json ]; then
  (cd interop/js && npm ci --no-audit --no-fund)
fi

echo "== tests"
cargo test --workspace --no-fail-fast

# The browser suite (chromium + playwright-core, ~10 min): ./scripts/test-web.sh. Not yet part
# of this command: it has not been run on a fresh machine inside the CI budget.
