#!/usr/bin/env bash
# How the event loop scales with loops on this machine, and what SO_REUSEPORT
# changes: examples/echo --plain with 1 loop, 2 loops with the default hand-off
# (loop 0 accepts and hands sockets round-robin), and 2 loops with one
# SO_REUSEPORT listener each (feature reuseport). For each: new connections per
# second (loadgen connect: connect, upgrade, close, CONNS in flight) and echoes
# per second with the server's CPU per message (loadgen echo, 100 connections,
# 20 B). Medians of ROUNDS interleaved rounds.
#
#   benches/scaling.sh [ROUNDS=3] [SECS=4]
#
# The server may use both cores (taskset -c 0,1) and so does the load generator:
# on a 2-vCPU machine the second loop competes with loadgen for the second core,
# so read the 2-loop rows as "what a second loop costs or gains when the machine
# is shared", not as a 2-core server. Builds what it needs (release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-4}
# shellcheck source=benches/lib.sh
source benches/lib.sh
cargo build --release --quiet --example echo --features reuseport
cargo build --release --quiet --example loadgen
BIN=target/release/examples/echo
LG=target/release/examples/loadgen
OUT=$(mktemp)
trap 'rm -f "$OUT"; stop_server' EXIT

run() { # LABEL ARGS...
  local label=$1
  shift
  PORT=$((PORT + 1))
  taskset -c 0,1 "$BIN" --addr "127.0.0.1:$PORT" --plain --quiet "$@" >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  local c e
  c=$(taskset -c 0,1 "$LG" connect --url "ws://127.0.0.1:$PORT/" --conns "${CONNS:-16}" \
    --duration "$SECS" --server-pid "$SERVER_PID" 2>/dev/null | tail -1)
  e=$(taskset -c 0,1 "$LG" echo --url "ws://127.0.0.1:$PORT/" --conns 100 --size 20 \
    --duration "$SECS" --server-pid "$SERVER_PID" 2>/dev/null | tail -1)
  stop_server
  echo "$label|$c|$e" | tee -a "$OUT"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  run "1 loop" --workers 1
  run "2 loops, hand-off" --workers 2
  run "2 loops, SO_REUSEPORT" --workers 2 --reuseport
done

python3 - "$OUT" <<'PY'
import json, sys, statistics, collections
rows = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    label, c, e = line.rstrip("\n").split("|")
    if label not in order:
        order.append(label)
    rows[label].append((json.loads(c), json.loads(e)))
med = lambda xs: statistics.median(xs)
print("\n| server | handshakes/s | server CPU µs/handshake | echoes/s (100 conns, 20 B) | server CPU µs/msg | runs |")
print("|---|---|---|---|---|---|")
for label in order:
    v = rows[label]
    print(f"| {label} | {med(c['per_s'] for c, _ in v):.0f} | {med(c['server_cpu_us_per_handshake'] for c, _ in v):.1f} "
          f"| {med(e['msgs_per_s'] for _, e in v):.0f} | {med(e['server_cpu_us_per_msg'] for _, e in v):.2f} | {len(v)} |")
PY
