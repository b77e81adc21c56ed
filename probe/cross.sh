#!/usr/bin/env bash
# wsprobe check against every echo server of the benchmark yardstick and ours, one
# after another on loopback; writes docs/wsprobe-servers.md (probe x server table)
# and keeps each server's JSON report in probe/results/.
#
#   probe/cross.sh [YARDSTICK_DIR]      default: ../shared/bench
#
# Builds the yardstick in a writable copy (BENCH_WORK, default /tmp/silverback-bench;
# it needs golang-go, golang-github-gorilla-websocket-dev and libwebsockets-dev from
# Debian for gorilla and libwebsockets), our echo servers and wsprobe. A server
# that is missing is reported as such, not skipped silently. DEADLINE (default 5)
# is passed to wsprobe --deadline. After each check, a bounded `wsprobe fuzz`
# (FUZZ_CASES=100 cases of seed 1, --deadline 2, at most 2 findings, each shrunk;
# reproducers in probe/results/NAME-repro/). CHECK=0 runs the fuzz part alone,
# FUZZ_CASES=0 the check part alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${1:-$ROOT/../shared/bench}"
WORK="${BENCH_WORK:-/tmp/silverback-bench}"
DEADLINE="${DEADLINE:-5}"
FUZZ_CASES="${FUZZ_CASES:-100}"
CHECK="${CHECK:-1}"
[ -f "$SRC/run.sh" ] || { echo "cross.sh: no yardstick at $SRC" >&2; exit 2; }
if [ ! -f "$WORK/run.sh" ]; then mkdir -p "$WORK"; cp -r "$SRC"/. "$WORK"/; fi
(cd "$WORK" && ./build.sh)
cd "$ROOT"
cargo build --release --features probe --bin wsprobe
cargo build --release --example echo_blocking
cargo build --release --features deflate --example echo
cp target/release/examples/echo target/release/examples/echo-deflate-probe
EX="$ROOT/target/release/examples"
OUT="$ROOT/probe/results"
mkdir -p "$OUT"
servers=(
  "silverback|$EX/echo-deflate-probe --addr 127.0.0.1:{port} --plain --workers 1 --quiet --deflate"
  "silverback-blocking|$EX/echo_blocking --addr 127.0.0.1:{port} --plain"
  "tungstenite|$WORK/target/release/tungstenite-echo {port}"
  "tokio-tungstenite|$WORK/target/release/tokio-tungstenite-echo {port}"
  "fastwebsockets|$WORK/target/release/fastwebsockets-echo {port}"
  "ws-rs|$WORK/target/release/ws-rs-echo {port}"
  "gorilla|env GOMAXPROCS=1 $WORK/bin/gorilla-echo {port} message"
  "libwebsockets|$WORK/bin/lws-echo {port}"
)
port=19400
for s in "${servers[@]}"; do
  name=${s%%|*} cmd=${s#*|}
  port=$((port + 1))
  cmd=${cmd//\{port\}/$port}
  bin=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /\//) { print $i; exit } }' <<<"$cmd")
  if [ ! -x "$bin" ]; then
    echo "{\"target\":\"$name\",\"missing\":\"$bin\"}" > "$OUT/$name.json"
    echo "cross.sh: $name: $bin missing (see build.sh's messages)" >&2
    continue
  fi
  bash -c "exec $cmd" > "/tmp/wsprobe-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  echo "== $name (pid $pid, port $port)"
  if [ "$CHECK" = 1 ]; then
    target/release/wsprobe check "ws://127.0.0.1:$port/" --pid "$pid" --deadline "$DEADLINE" \
      --json "$OUT/$name.json" 2>/dev/null | tail -1 || true
  fi
  if [ "$FUZZ_CASES" -gt 0 ]; then
    rm -rf "$OUT/$name-repro"; mkdir -p "$OUT/$name-repro"
    target/release/wsprobe fuzz "ws://127.0.0.1:$port/" --pid "$pid" --deadline 2 --seed 1 \
      --cases "$FUZZ_CASES" --max-findings 2 --out "$OUT/$name-repro" > "$OUT/$name.fuzz.txt" 2>/dev/null || true
    tail -1 "$OUT/$name.fuzz.txt"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
python3 "$ROOT/probe/table.py" "$OUT" > "$ROOT/docs/wsprobe-servers.md"
echo "cross.sh: docs/wsprobe-servers.md written"
