#!/usr/bin/env bash
# Short smoke runs of the latency/CPU scenarios of BENCHMARKS.md ("Many small channels and
# fixed rates"): the `gyre` binary against the bench reference server, side by side with
# `gyre-bench compare`, one run each on debug builds. Nothing here is timed or compared:
# a run fails only if a scenario cannot complete (a lost or duplicated message, a server
# that does not start). The plots land in $GYRE_BENCH_OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -p gyre-bench -p gyre-server --bins
bin="$CARGO_TARGET_DIR/debug"
out="${GYRE_BENCH_OUT:-$(mktemp -d)}"
mkdir -p "$out"
gyre="$bin/gyre -c crates/bench/configs/gyre-memory.json -p {port}"
ref="$bin/gyre-bench reference --port {port}"

compare() { # compare <label> <scenario args...>
  local label=$1; shift
  echo "== bench smoke: $label"
  "$bin/gyre-bench" compare --a "$ref" --a-name reference --b "$gyre" --b-name gyre \
    --runs 1 -- "$@"
}

compare "many channels: 200 x 1 subscriber, API publishes" \
  many-channels -q -s ws://{addr}/connection/websocket --api http://{addr}/api \
  --api-key bench --server-pid {pid} -n 2000 -ns 200 -np 2 -ms 128 mc
compare "fixed rate: 200 subscribers, 20 publications/s" \
  latency -q -s ws://{addr}/connection/websocket --api http://{addr}/api \
  --api-key bench --server-pid {pid} -r 20 -d 3 -ns 200 -np 1 -ms 128 lat
# One plot of each scenario against Gyre alone.
port=$((20000 + RANDOM % 20000))
$bin/gyre -c crates/bench/configs/gyre-memory.json -p "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
"$bin/gyre-bench" many-channels -q -s "ws://127.0.0.1:$port/connection/websocket" \
  --api "http://127.0.0.1:$port/api" --api-key bench --server-pid "$pid" \
  -n 1000 -ns 100 -np 1 --plot "$out/many-channels.svg" mc
"$bin/gyre-bench" latency -q -s "ws://127.0.0.1:$port/connection/websocket" \
  --api "http://127.0.0.1:$port/api" --api-key bench --server-pid "$pid" \
  -r 20 -d 2 -ns 100 -np 1 --plot "$out/latency.svg" lat
# The same, timed by the kernel's receive timestamps (a failing recvmsg fails the run).
"$bin/gyre-bench" latency -q --socket-clock -s "ws://127.0.0.1:$port/connection/websocket" \
  --api "http://127.0.0.1:$port/api" --api-key bench --server-pid "$pid" \
  -r 20 -d 2 -ns 100 -np 1 lat
test -s "$out/many-channels.svg" && test -s "$out/latency.svg"
echo "bench smoke: plots in $out"
