#!/usr/bin/env bash
# Soak: `examples/loadgen soak` against `examples/echo`, plain and with
# permessage-deflate (small mode, a browser-like offer from the clients). Each run
# verifies every echo byte for byte and fails on a lost or corrupted message, an
# unexpected close, idle RSS after the churn more than 10 % above idle RSS before
# it, or server descriptors not back to their start (docs/soak.md).
#
#   soak/run.sh [SECONDS=60] [CONNS=1000] [INTERVAL=2] [--deflate-mode MODE]
#
# CI runs the defaults (1 minute, 1,000 connections, each acting every ~2 s);
# docs/soak.md has the 20-minute, 10,000-connection figures.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
conns=${2:-1000}
interval=${3:-2}
mode=small
if [ "${4:-}" = "--deflate-mode" ]; then mode=${5:?--deflate-mode needs a value}; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --features deflate --example echo --example loadgen
B=target/release/examples
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
status=0
for variant in plain deflate; do
  port=$(free_port)
  if [ "$variant" = plain ]; then sargs=(); cargs=(); else sargs=(--deflate --deflate-mode "$mode"); cargs=(--deflate); fi
  "$B/echo" --plain --workers 1 --addr "127.0.0.1:$port" "${sargs[@]}" >/dev/null 2>&1 &
  spid=$!
  # Wait until it listens (without connecting: a probe connection would be
  # counted in the server's descriptors at the start).
  python3 - "$port" <<'PY'
import sys, time
port = ":%04X" % int(sys.argv[1])
for _ in range(100):
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(f).readlines()[1:]:
                x = line.split()
                if x[1].endswith(port) and x[3] == "0A":
                    sys.exit(0)
        except OSError:
            pass
    time.sleep(0.1)
sys.exit("the echo server did not start listening")
PY
  echo "== soak $variant: $conns connections, ${secs} s"
  if ! timeout $((secs + 420)) "$B/loadgen" soak --url "ws://127.0.0.1:$port/websocket" \
      --conns "$conns" --duration "$secs" --interval "$interval" --report-every 30 \
      --server-pid "$spid" "${cargs[@]}"; then
    echo "soak $variant FAILED"
    status=1
  fi
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
done
exit $status
