#!/usr/bin/env bash
# The whole test suite: every Rust test of the workspace, then the end-to-end
# compatibility suite (the real centrifuge JS SDK, raw WebSocket frames and the chat
# example in headless Chromium) against freshly built server binaries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

echo "== cargo test --workspace"
cargo test --workspace

echo "== building the end-to-end binaries"
cargo build -p gyre-testkit -p gyre-example-chat --bins

echo "== npm ci (examples/chat, e2e)"
(cd examples/chat && npm ci --no-audit --no-fund)
(cd e2e && npm ci --no-audit --no-fund)

echo "== end-to-end suite"
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
status=0
(
  cd e2e
  GYRE_E2E_SERVER="$CARGO_TARGET_DIR/debug/gyre-e2e-server" \
  GYRE_CHAT_BIN="$CARGO_TARGET_DIR/debug/gyre-example-chat" \
    node --test --test-concurrency=1 --test-timeout=180000 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap" \
      test/*.test.js
) || status=$?

count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$tap" | tail -n 1; }
pass=$(count pass)
fail=$(count fail)
skipped=$(count skipped)
echo "e2e: ${pass:-0} passed, ${fail:-0} failed, ${skipped:-0} skipped"
if [ "$status" -ne 0 ]; then
  echo "end-to-end suite failed (exit $status)" >&2
fi
exit "$status"
