#!/usr/bin/env bash
# The Python suite: builds the wheel with maturin, installs it with pip into a fresh venv,
# runs pytest. Needs CONCORD_URL/CONCORD_TOKEN (test.sh starts a relay and sets them).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
python_tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== python: building the wheel (maturin)"
(cd "$UNIFFI" && "$TOOLS/venv/bin/maturin" build --quiet --out "$work/wheels") 2>&1 | grep -vE "^(📦|🔗|🐍|⚠️|🔨|✏️|📖)" || true
wheel=$(ls "$work"/wheels/concord-*.whl)
echo "== python: installing $(basename "$wheel") into a fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" pytest
echo "== python: pytest"
(cd "$UNIFFI/tests/python" && "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .)
