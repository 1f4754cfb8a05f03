#!/usr/bin/env bash
# The Kotlin suite on a real JVM: generates the Kotlin sources, compiles them with the test
# (kotlinc), runs it with JNA loading the built library. Needs CONCORD_URL/CONCORD_TOKEN
# (test.sh starts a relay and sets them).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
kotlin_tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BINDGEN" generate --no-format --library "$LIB" --language kotlin --out-dir "$work/src" >/dev/null
echo "== kotlin: compiling (kotlinc)"
JAVA_OPTS="-Xss4m" "$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$KOTLIN_CP" \
  "$work/src/dev/concord/concord.kt" "$UNIFFI/tests/kotlin/${KOTLIN_MAIN:-ConcordTest}.kt" \
  -d "$work/test.jar" 2>&1 | grep -v "^warning" || true
[ -f "$work/test.jar" ] || { echo "kotlin compilation failed"; exit 1; }
echo "== kotlin: running on the JVM"
mkdir -p "$work/tmp"
CONCORD_TMP="${CONCORD_TMP:-$work/tmp}" java -Djna.library.path="$(dirname "$LIB")" \
  -cp "$work/test.jar:$KOTLIN_CP" "${KOTLIN_MAIN:-ConcordTest}Kt" "$@"
