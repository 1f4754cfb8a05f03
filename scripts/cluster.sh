#!/usr/bin/env bash
# Starts a 3-node Concord relay cluster on loopback (clients on 127.0.0.1:8801-8803, nodes
# talk on 127.0.0.1:9801-9803), data in ./concord-cluster/nN, and prints each node's
# /cluster. Ctrl-C stops all three. NODES=5 starts five.
#   curl -s http://127.0.0.1:8801/cluster        # role, term, leader, lag
#   concord sync --server ws://127.0.0.1:8801/sync,ws://127.0.0.1:8802/sync,ws://127.0.0.1:8803/sync
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-web.sh >/dev/null
cargo build -q -p concord-server -p concord-cli
bin="${CARGO_TARGET_DIR:-target}/debug"
nodes="${NODES:-3}"
root="${CONCORD_CLUSTER_DIR:-./concord-cluster}"
secret="${CONCORD_CLUSTER_SECRET:-local-cluster-secret}"
mkdir -p "$root"

peers=""
for i in $(seq 1 "$nodes"); do
  peers+="[[cluster.peers]]
id = $i
client = \"127.0.0.1:880$i\"
cluster = \"127.0.0.1:980$i\"
"
done

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for i in $(seq 1 "$nodes"); do
  mkdir -p "$root/n$i"
  cat > "$root/n$i.toml" <<TOML
listen = "127.0.0.1:880$i"
data_dir = "$root/n$i"
static_dir = "web-demo"
[cluster]
node_id = $i
listen = "127.0.0.1:980$i"
secret = "$secret"
bootstrap = $([ "$i" = 1 ] && echo true || echo false)
$peers
TOML
  "$bin/concord-server" --config "$root/n$i.toml" >"$root/n$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$nodes"); do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:880$i/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
sleep 2
for i in $(seq 1 "$nodes"); do
  echo "node $i: $(curl -fsS "http://127.0.0.1:880$i/cluster")"
done
nodes_param=$(seq -s, -f "ws://127.0.0.1:880%g/sync" 1 "$nodes")
echo "demo with the cluster panel: http://127.0.0.1:8801/?nodes=$nodes_param"
echo "logs in $root/n*.log; Ctrl-C stops the cluster"
wait
