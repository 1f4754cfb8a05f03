# Sourced by the binding scripts: paths, and installing the tools they need when missing
# (JDK and JNA from Debian, kotlinc from npm's kotlin-compiler, maturin and pytest from
# PyPI into a venv). Everything lands in .tools/ at the repository root.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
source "$ROOT/scripts/lib.sh"
TOOLS="$ROOT/.tools"
UNIFFI="$ROOT/bindings/uniffi"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB="$TARGET/${PROFILE_DIR:-debug}/libconcord_uniffi.so"
# The generator reads the library it is given; its own build profile does not matter.
BINDGEN="$TARGET/debug/uniffi-bindgen"
KOTLIN_HOME="$TOOLS/kotlin/node_modules/kotlin-compiler"

# kotlinc + kotlin-stdlib + kotlinx-coroutines (npm), a JDK and JNA (Debian).
kotlin_tools() {
  have javac || apt_install openjdk-17-jdk-headless
  apt_install libjna-java
  if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
    echo "== installing kotlinc (npm kotlin-compiler)"
    mkdir -p "$TOOLS/kotlin"
    (cd "$TOOLS/kotlin" && npm install --silent --no-audit --no-fund kotlin-compiler >/dev/null)
  fi
  KOTLIN_CP="$KOTLIN_HOME/lib/kotlin-stdlib.jar:$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar:/usr/share/java/jna.jar"
}

# A venv with maturin and pytest.
python_tools() {
  have python3 || apt_install python3 python3-venv
  if [ ! -x "$TOOLS/venv/bin/maturin" ] || [ ! -x "$TOOLS/venv/bin/pytest" ]; then
    echo "== installing maturin and pytest (PyPI) into .tools/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install -q maturin pytest
  fi
}

# start_server: a real concord-server with signed tokens on a free port; sets CONCORD_URL,
# CONCORD_TOKEN and SERVER_PID (stop it with stop_server).
start_server() {
  have curl || apt_install curl
  local secret="uniffi-test-secret" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SERVER_DATA=$(mktemp -d)
  "$TARGET/debug/concord-server" --listen "127.0.0.1:$port" --data-dir "$SERVER_DATA/data" \
    --auth-secret "$secret" >"$SERVER_DATA/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_DATA/server.log"; return 1; }
    sleep 0.1
  done
  export CONCORD_URL="ws://127.0.0.1:$port"
  CONCORD_TOKEN=$("$TARGET/debug/concord-server" token --secret "$secret" --docs '*' --ttl 3600)
  export CONCORD_TOKEN
}

stop_server() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "${SERVER_DATA:-}" ] && rm -rf "$SERVER_DATA"
  SERVER_PID=""
}
