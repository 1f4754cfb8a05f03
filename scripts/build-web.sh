#!/usr/bin/env bash
# Builds the browser package: the engine for wasm32 (release), wasm-bindgen's ES module and
# TypeScript types, and the hand-written Worker/page API, into bindings/wasm/pkg (an npm
# package directory), then copies it into web-demo/pkg for the demo app.
# Installs what is missing: clang (SQLite for wasm32), the wasm32 target, and
# wasm-bindgen-cli pinned to the workspace's exact wasm-bindgen version.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install clang llvm
rust_target wasm32-unknown-unknown

version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! have wasm-bindgen || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$version" ]; then
  echo "== installing wasm-bindgen-cli $version"
  # --locked first; when the registry lacks a locked dependency version, resolve afresh.
  cargo install --locked wasm-bindgen-cli --version "$version" ||
    cargo install wasm-bindgen-cli --version "$version"
fi

target="${CARGO_TARGET_DIR:-target}"
echo "== build the engine for wasm32"
cargo build -q -p concord-wasm --target wasm32-unknown-unknown --release
pkg=bindings/wasm/pkg
rm -rf "$pkg"
wasm-bindgen --target web --out-dir "$pkg" \
  "$target/wasm32-unknown-unknown/release/concord_wasm.wasm"
cp bindings/wasm/js/concord.js bindings/wasm/js/worker.js bindings/wasm/js/text_diff.js bindings/wasm/js/index.d.ts "$pkg/"
cp bindings/wasm/package.json "$pkg/package.json"
rm -rf web-demo/pkg
cp -r "$pkg" web-demo/pkg
ls -l "$pkg"/*.wasm
