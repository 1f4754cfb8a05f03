#!/usr/bin/env bash
# Runs every test of the workspace (the cluster's fault suites on real processes and the
# Yjs / automerge-repo interop tests included) and the browser suite, installing what the
# tests need on a fresh machine: clang/llvm (SQLite for wasm32), the wasm32 Rust target, node
# and the npm packages of the interop tests (interop/js) here; Debian's chromium,
# playwright-core and wasm-bindgen-cli in ./scripts/test-web.sh.
# The binding suites install their own tools (bindings/uniffi/scripts/tools.sh: JDK, JNA,
# kotlinc, maturin, pytest).
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
  (cd interop/js && npm install --no-audit --no-fund)
fi

echo "== tests"
cargo test --workspace --no-fail-fast

echo "== bindings: Kotlin on a JVM and Python against a real relay"
./bindings/uniffi/scripts/test.sh

echo "== browser suite (the engine in WASM, the demo app, Chromium)"
./scripts/test-web.sh
