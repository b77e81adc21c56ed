#!/usr/bin/env bash
# A fleet of devices after a server restart: CONNS event-loop clients
# (`loadgen reconnect`, ClientBuilder::reconnect with full-jitter backoff whose
# first window is WINDOW seconds) on examples/echo --plain; the server is killed
# (SIGKILL) at 3 s and started again DOWN seconds later on the same port. Prints
# loadgen's JSON line: when each client made its first attempt after the loss
# (the jitter's spread, per 100 ms), when each was back, and the peak rate of
# reconnects the server accepted (per 100 ms bucket, as per second).
#
#   benches/reconnect_storm.sh [CONNS=1000] [WINDOW=1] [DOWN=0.5]
#
# Server on CPU 0, clients on CPU 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CONNS=${1:-1000} WINDOW=${2:-1} DOWN=${3:-0.5}
cargo build --quiet --release --example echo --example loadgen
EX="$ROOT/target/release/examples"
PORT=$((20000 + RANDOM % 20000))
SERVER=(taskset -c 0 "$EX/echo" --addr "127.0.0.1:$PORT" --plain --quiet)
cleanup() { pkill -f "echo --addr 127.0.0.1:$PORT" 2>/dev/null || true; }
trap cleanup EXIT
"${SERVER[@]}" >/dev/null 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  sleep 0.05
done
RESTART_AT=$(python3 -c "print(3 + $DOWN)")
taskset -c 1 "$EX/loadgen" reconnect --url "ws://127.0.0.1:$PORT/" --conns "$CONNS" \
  --window "$WINDOW" --max-delay 8 --duration $((12 + ${WINDOW%.*} * 3)) \
  --at "3:kill -9 $PID" \
  --at "$RESTART_AT:${SERVER[*]} >/dev/null 2>&1 &"
