#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a short time (FUZZ_SECONDS, default
# 10). Corpora and crash artifacts go under the target directory, outside the clone;
# a crash fails the script and leaves its input in $FUZZ_DIR/artifacts/<target>/.
#
#   bash scripts/fuzz_smoke.sh             # every target, 10 s each
#   FUZZ_SECONDS=300 bash scripts/fuzz_smoke.sh ws_frames jwt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Pinned: installed once into ~/.cargo/bin, built outside the project's target dir.
CARGO_FUZZ_VERSION=0.13.2
if ! cargo install --list | grep -x "cargo-fuzz v$CARGO_FUZZ_VERSION:" >/dev/null; then
  (unset CARGO_TARGET_DIR; cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION")
fi

FUZZ_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gyre-target}/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-10}"
mkdir -p "$FUZZ_DIR"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O --target-dir "$FUZZ_DIR/build"
for target in "${targets[@]}"; do
  mkdir -p "$FUZZ_DIR/corpus/$target" "$FUZZ_DIR/artifacts/$target"
  echo "-- $target: ${SECONDS_EACH}s"
  log="$FUZZ_DIR/$target.log"
  if ! cargo +nightly fuzz run -O --target-dir "$FUZZ_DIR/build" "$target" \
    "$FUZZ_DIR/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
    -artifact_prefix="$FUZZ_DIR/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; inputs in $FUZZ_DIR/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units' "$log" || true
done
