#!/usr/bin/env bash
# Regenerates the committed Swift sources (swift/Sources, swift/Headers) from the built library. Run it
# after changing the API; `cargo test -p concord-uniffi --test swift_current` fails while
# they are stale.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"
cargo build -q -p concord-uniffi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BINDGEN" generate --no-format --library "$LIB" --language swift --out-dir "$work" >/dev/null
cp "$work/Concord.swift" "$UNIFFI/swift/Sources/Concord/Concord.swift"
cp "$work/ConcordFFI.h" "$UNIFFI/swift/Headers/ConcordFFI.h"
cp "$work/ConcordFFI.modulemap" "$UNIFFI/swift/Headers/module.modulemap"
echo "Swift sources regenerated in bindings/uniffi/swift/Sources"
