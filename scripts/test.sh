#!/usr/bin/env bash
# The whole test suite: every Rust test of the workspace, then the end-to-end
# compatibility suite (the real centrifuge JS SDK, raw WebSocket frames and the chat
# example in headless Chromium) against freshly built server binaries, then the Python
# client compatibility suite (PyPI `cent` and `centrifuge-python` against `gyre`).
#
# A failing Rust test stops the script at once. The two compatibility suites both run
# whatever the other's outcome; the script then exits non-zero if either failed, and its
# last line sums the counts of both: `total: N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

echo "== cargo test --workspace"
cargo test --workspace

echo "== building the end-to-end binaries"
# gyre-server too: the event proxy tests (e2e/test/proxy.test.js) drive the `gyre` binary.
cargo build -p gyre-testkit -p gyre-example-chat -p gyre-server --bins

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
  GYRE_BIN="$CARGO_TARGET_DIR/debug/gyre" \
  GYRE_CHAT_BIN="$CARGO_TARGET_DIR/debug/gyre-example-chat" \
  GYRE_FOSSIL="$CARGO_TARGET_DIR/debug/gyre-fossil" \
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

echo "== Python client compatibility suite (compat/python)"
# A virtualenv in the target directory (outside the clone when CARGO_TARGET_DIR is set),
# recreated when it no longer runs (e.g. after a Python upgrade).
venv="$CARGO_TARGET_DIR/pyvenv"
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r compat/python/requirements.txt
cargo build -p gyre-server --bins
junit="$(mktemp)"
trap 'rm -f "$tap" "$junit"' EXIT
py_status=0
GYRE_BIN="$CARGO_TARGET_DIR/debug/gyre" \
  "$venv/bin/python" -m pytest compat/python -q --junitxml="$junit" || py_status=$?
# pass fail skipped, from the JUnit report (errors count as failures).
py_counts=$("$venv/bin/python" - "$junit" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 0 0")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(total - failed - skipped, failed, skipped)
PY
)
read -r py_pass py_fail py_skipped <<<"$py_counts"
echo "python: $py_pass passed, $py_fail failed, $py_skipped skipped"
if [ "$py_status" -ne 0 ]; then
  # Also pytest's 5 (no test collected): the suite must not vanish silently.
  echo "Python client compatibility suite failed (exit $py_status)" >&2
fi

echo "total: $((${pass:-0} + py_pass)) passed, $((${fail:-0} + py_fail)) failed, $((${skipped:-0} + py_skipped)) skipped"
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
exit "$py_status"
