#!/usr/bin/env bash
# macOS only (Xcode command line tools + rustup): builds the Rust library for iOS devices,
# the iOS simulator and macOS, and packs it with the generated C header into
# ConcordFFI.xcframework, the binary target of Package.swift. Not run in CI here.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../../.. && pwd)"
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${TARGETS[@]}"; do
  rustup target add "$t"
  cargo build --manifest-path "$ROOT/Cargo.toml" -p concord-uniffi --release --target "$t"
done
T="${CARGO_TARGET_DIR:-$ROOT/target}"
work=$(mktemp -d)
mkdir -p "$work/headers" "$work/sim" "$work/mac"
cp Headers/ConcordFFI.h Headers/module.modulemap "$work/headers/"
lipo -create "$T/aarch64-apple-ios-sim/release/libconcord_uniffi.a" \
  "$T/x86_64-apple-ios/release/libconcord_uniffi.a" -output "$work/sim/libconcord_uniffi.a"
lipo -create "$T/aarch64-apple-darwin/release/libconcord_uniffi.a" \
  "$T/x86_64-apple-darwin/release/libconcord_uniffi.a" -output "$work/mac/libconcord_uniffi.a"
rm -rf ConcordFFI.xcframework
xcodebuild -create-xcframework \
  -library "$T/aarch64-apple-ios/release/libconcord_uniffi.a" -headers "$work/headers" \
  -library "$work/sim/libconcord_uniffi.a" -headers "$work/headers" \
  -library "$work/mac/libconcord_uniffi.a" -headers "$work/headers" \
  -output ConcordFFI.xcframework
rm -rf "$work"
echo "built $(pwd)/ConcordFFI.xcframework"
