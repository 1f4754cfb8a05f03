#!/usr/bin/env bash
# The binding suites: builds the library and concord-server, installs what is missing
# (tools.sh), starts a real relay, and runs the Kotlin suite on a JVM and the Python
# suite with pytest against the wheel built by maturin. Swift is checked by
# `cargo test -p concord-uniffi` (tests/swift_current.rs).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$ROOT"

echo "== bindings: building concord-uniffi and concord-server"
cargo build -q -p concord-uniffi -p concord-server
kotlin_tools
python_tools
trap stop_server EXIT
start_server

"$UNIFFI/scripts/test-kotlin.sh"
"$UNIFFI/scripts/test-python.sh"
