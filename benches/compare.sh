#!/usr/bin/env bash
# The side-by-side comparison with the yardstick's anchor servers (tungstenite,
# tokio-tungstenite, fastwebsockets, ws-rs, gorilla, libwebsockets), in one run.
#
#   benches/compare.sh [YARDSTICK_DIR]      default: the shared yardstick beside this checkout
#
# Copies the yardstick to a writable work dir (BENCH_WORK, default /tmp/silverback-bench;
# an existing copy is reused, with its build), builds it unless NO_BUILD=1 (it needs
# golang-go, golang-github-gorilla-websocket-dev and libwebsockets-dev from Debian),
# builds our echo servers in release mode, adds them to the server list the way the
# yardstick's README describes, and runs its run.sh. Every knob of run.sh passes
# through the environment (REPS, DURATION, ONLY, PHASES, ...). The summary is printed
# and copied to docs/bench-latest.md, and drawn as docs/charts/cpu-per-message.svg
# and docs/charts/idle-memory.svg (benches/charts.py); docs/BENCHMARKS.md is curated
# by hand from it.
# Not part of `cargo test` or CI: it needs a quiet machine and about 30 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${1:-$ROOT/../shared/bench}"
WORK="${BENCH_WORK:-/tmp/silverback-bench}"
[ -f "$SRC/run.sh" ] || { echo "compare.sh: no yardstick at $SRC (pass its path)" >&2; exit 2; }
if [ ! -f "$WORK/run.sh" ]; then
  mkdir -p "$WORK"
  cp -r "$SRC"/. "$WORK"/
fi
(cd "$ROOT" && cargo build --release --example echo --example echo_blocking)
if [ "${NO_BUILD:-0}" != 1 ]; then (cd "$WORK" && ./build.sh); fi
EX="$ROOT/target/release/examples"
cd "$WORK"
before=$(ls -1 raw 2>/dev/null | sort | tail -1 || true)
NO_BUILD=1 ./run.sh \
  "silverback|19110|$EX/echo --addr 127.0.0.1:{port} --plain --workers 1 --quiet" \
  "silverback-blocking|19111|$EX/echo_blocking --addr 127.0.0.1:{port} --plain"
after=$(ls -1 raw | sort | tail -1)
if [ "$after" != "$before" ] && [ -f "raw/$after/summary.md" ]; then
  # Paths of this checkout are written relative to it.
  sed "s|$ROOT/||g" "raw/$after/summary.md" > "$ROOT/docs/bench-latest.md"
  echo "compare.sh: summary copied to docs/bench-latest.md (raw data: $WORK/raw/$after)"
  # The charts of that table: CPU per message per server and size, idle memory.
  python3 "$ROOT/benches/charts.py" bench-latest "$ROOT/docs/bench-latest.md" "$ROOT/docs/charts"
fi
