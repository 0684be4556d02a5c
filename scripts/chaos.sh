#!/usr/bin/env bash
# CI-sized chaos runs of the loss checker (`gyre-bench chaos`, see RELIABILITY.md):
# 3 Gyre nodes on Redis with every fault kind (network faults in namespaces when run as
# root), a Sentinel failover run, and the NATS broker with the faults that apply to it
# (not a NATS restart nor a node SIGKILL: without history, publications in flight then
# can be lost without the clients being told — at most once, as upstream; RELIABILITY.md).
# Each run starts its own redis-server / Sentinels / nats-server on fixed ports from
# GYRE_CHAOS_PORT (default 22000) to +420 and exits non-zero on a silent gap, a
# duplicate or a publication with the wrong position. About 4 minutes in all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -p gyre-bench -p gyre-server --bins
bin="$CARGO_TARGET_DIR/debug"
port="${GYRE_CHAOS_PORT:-22000}"

netns=()
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v tc >/dev/null; then
  netns=(--netns)
else
  echo "chaos: not root or no ip/tc: the network faults are skipped" >&2
fi

status=0
chaos() { # chaos <label> <args...>
  local label=$1; shift
  echo "== chaos: $label"
  "$bin/gyre-bench" chaos --gyre "$bin/gyre" --progress 10 "$@" || {
    echo "chaos: $label FAILED" >&2
    status=1
  }
}

chaos "Redis, 3 nodes, every fault kind" --engine redis "${netns[@]}" --nodes 3 \
  --subs 30 --channels 6 --rate 200 --duration 80 --faults 35 --base-port "$port"
chaos "Redis Sentinel failover" --engine sentinel --nodes 3 --subs 30 --channels 6 \
  --rate 200 --duration 40 --faults 12 \
  --kinds sentinel-failover,client-cut,node-kill,node-term,server-disconnect \
  --base-port $((port + 150))
chaos "NATS broker" --engine nats --nodes 3 --subs 30 --channels 6 --rate 200 \
  --duration 50 --faults 21 --kinds client-cut,server-disconnect,node-term \
  --base-port $((port + 300))
exit $status
