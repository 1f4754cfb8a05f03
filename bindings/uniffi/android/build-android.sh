#!/usr/bin/env bash
# Builds the Android library's native parts (needs the Android NDK, ANDROID_NDK_HOME set):
# the Rust library for each ABI with cargo-ndk into src/main/jniLibs, and the generated
# Kotlin into src/main/kotlin. Then `gradle :concord:assembleRelease` (or include this
# directory as a module of an app's Gradle build). Not run here: no Android SDK.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../../.. && pwd)"
command -v cargo-ndk >/dev/null || cargo install cargo-ndk
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
cargo ndk --manifest-path "$ROOT/Cargo.toml" -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 \
  -o src/main/jniLibs build -p concord-uniffi --release
T="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --manifest-path "$ROOT/Cargo.toml" -p concord-uniffi --release
"$T/release/uniffi-bindgen" generate --library "$T/release/libconcord_uniffi.so" \
  --language kotlin --out-dir src/main/kotlin
echo "jniLibs and Kotlin sources ready in $(pwd)/src/main"
