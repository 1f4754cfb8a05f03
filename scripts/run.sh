#!/usr/bin/env bash
# Builds Concord (and the browser package), starts the relay on 127.0.0.1:8787 (embedded
# SQLite in ./concord-data) serving the demo app at http://127.0.0.1:8787/, shows two CLI
# devices converging through it, then keeps the relay running (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-web.sh >/dev/null
cargo build -q -p concord-server -p concord-cli
bin="${CARGO_TARGET_DIR:-target}/debug"
listen="${CONCORD_LISTEN:-127.0.0.1:8787}"

"$bin/concord-server" --listen "$listen" --data-dir ./concord-data --static-dir web-demo &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "relay: $(curl -fsS "http://$listen/healthz")"

demo=./concord-demo
mkdir -p "$demo"
alice() { "$bin/concord" --db "$demo/alice.db" "$@"; }
bob() { "$bin/concord" --db "$demo/bob.db" "$@"; }
url="ws://$listen/sync"

echo "== alice creates a note and syncs"
alice create notes 2>/dev/null || true
alice put notes title '"Shopping"'
alice insert-text notes body 0 "milk"
alice sync --server "$url"
echo "== bob syncs, then both edit offline"
bob sync --server "$url"
alice insert-text notes body 4 ", eggs"
bob put notes owner '"bob"'
echo "== both sync"
alice sync --server "$url"
bob sync --server "$url"
alice sync --server "$url"
echo "alice: $(alice show notes)"
echo "bob:   $(bob show notes)"

echo
echo "Open the demo board at http://$listen/ (open it in two browser profiles to collaborate)."
echo "The relay is running at $url (data in ./concord-data). Try the CLI walk-through in"
echo "README.md from another terminal. Ctrl-C stops the relay."
wait $server
