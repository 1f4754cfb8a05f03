#!/usr/bin/env bash
# Runs `concord-bench yjs-load` against Concord (one node, and a 3-node cluster with the
# clients on node 1) and against @y/websocket-server from npm (interop/js), in one run:
# 10, 100 and 1,000 clients on one document, and 2,000 clients on 1,000 documents.
# Prints one JSON report per line (also appended to $OUT, default ./yjs-load.jsonl).
#   PROFILE=release ./scripts/bench-yjs.sh     (default: the dev build, deps optimised)
#   EDITS=10 BIG_EDITS=1 ./scripts/bench-yjs.sh  (edits per client: 10 and 100 clients; the big runs)
#   SKIP_BUILD=1 ./scripts/bench-yjs.sh           (use the binaries as built)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

profile="${PROFILE:-dev}"
if [ "$profile" = release ]; then
  [ -n "${SKIP_BUILD:-}" ] || cargo build -q --release -p concord-server -p concord-bench
  bin="${CARGO_TARGET_DIR:-target}/release"
else
  [ -n "${SKIP_BUILD:-}" ] || cargo build -q -p concord-server -p concord-bench
  bin="${CARGO_TARGET_DIR:-target}/debug"
fi
if [ ! -f interop/js/node_modules/.package-lock.json ] || [ interop/js/package-lock.json -nt interop/js/node_modules/.package-lock.json ]; then
  (cd interop/js && npm install --no-audit --no-fund)
fi
edits="${EDITS:-10}"
big_edits="${BIG_EDITS:-1}"
out="${OUT:-./yjs-load.jsonl}"
work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

wait_http() {
  for _ in $(seq 1 200); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

load() { # label url pid clients edits docs
  "$bin/concord-bench" yjs-load --label "$1" --url "$2" --server-pid "$3" \
    --clients "$4" --edits "$5" --docs "$6" --timeout "${TIMEOUT:-240}" --json | tee -a "$out"
}

runs() { # label url pid
  load "$1" "$2" "$3" 10 "$edits" 1
  load "$1" "$2" "$3" 100 "$edits" 1
  load "$1" "$2" "$3" 1000 "$big_edits" 1
  load "$1" "$2" "$3" 2000 "$big_edits" 1000
}

# Concord, one node.
"$bin/concord-server" --listen 127.0.0.1:18801 --data-dir "$work/single" >"$work/single.log" 2>&1 &
single=$!; pids+=("$single")
wait_http http://127.0.0.1:18801/healthz
runs concord-1-node ws://127.0.0.1:18801/yjs "$single"
kill "$single"

# Concord, 3-node cluster (write concern majority); the clients attach to node 1.
peers=""
for i in 1 2 3; do
  peers+="[[cluster.peers]]
id = $i
client = \"127.0.0.1:1881$i\"
cluster = \"127.0.0.1:1981$i\"
"
done
for i in 1 2 3; do
  cat > "$work/n$i.toml" <<TOML
listen = "127.0.0.1:1881$i"
data_dir = "$work/n$i"
[cluster]
node_id = $i
listen = "127.0.0.1:1981$i"
secret = "bench-secret"
bootstrap = $([ "$i" = 1 ] && echo true || echo false)
$peers
TOML
  "$bin/concord-server" --config "$work/n$i.toml" >"$work/n$i.log" 2>&1 &
  pids+=($!)
  [ "$i" = 1 ] && node1=$!
done
for i in 1 2 3; do wait_http "http://127.0.0.1:1881$i/healthz"; done
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:18811/cluster | grep -q '"leader":[0-9]' && break
  sleep 0.1
done
runs concord-3-nodes ws://127.0.0.1:18811/yjs "$node1"

# @y/websocket-server (in-memory, no persistence).
(cd interop/js && HOST=127.0.0.1 PORT=18821 exec node node_modules/@y/websocket-server/src/server.js) >"$work/yws.log" 2>&1 &
yws=$!; pids+=("$yws")
wait_port 18821
runs y-websocket-server ws://127.0.0.1:18821 "$yws"
