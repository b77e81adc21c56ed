#!/usr/bin/env bash
# CI: wsprobe check (every probe) and a bounded wsprobe fuzz against our own echo
# servers, the event loop (examples/echo, plain and with permessage-deflate) and
# the blocking layer (examples/echo_blocking). Any violation, hang or dead server
# fails the run. JUnit reports and reproducers go to probe/ci-out/.
#
#   probe/ci.sh [FUZZ_CASES=300] [SEED=1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CASES="${1:-300}"
SEED="${2:-1}"
OUT="$ROOT/probe/ci-out"
rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --features probe --bin wsprobe
cargo build --release --example echo_blocking
cargo build --release --features deflate --example echo
cp target/release/examples/echo target/release/examples/echo-probe-ci
EX="$ROOT/target/release/examples"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status=0
run() { # name command-with-{port}
  local name=$1 port cmd pid
  port=$(free_port)
  cmd=${2//\{port\}/$port}
  bash -c "exec $cmd" > "$OUT/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null || { echo "probe/ci.sh: $name did not start (see $OUT/$name.log)"; status=1; return; }
  echo "== wsprobe check: $name"
  if ! target/release/wsprobe check "ws://127.0.0.1:$port/" --pid "$pid" --junit "$OUT/$name.junit.xml" \
       --json "$OUT/$name.json" 2>/dev/null; then
    status=1
  fi
  echo "== wsprobe fuzz: $name ($CASES cases, seed $SEED)"
  if ! target/release/wsprobe fuzz "ws://127.0.0.1:$port/" --pid "$pid" --seed "$SEED" --cases "$CASES" \
       --out "$OUT" 2>/dev/null; then
    status=1
    for f in "$OUT"/*.repro; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
  fi
  kill -0 "$pid" 2>/dev/null || { echo "probe/ci.sh: $name died"; status=1; }
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
run echo "$EX/echo-probe-ci --addr 127.0.0.1:{port} --plain --workers 1 --quiet"
run echo-deflate "$EX/echo-probe-ci --addr 127.0.0.1:{port} --plain --workers 2 --quiet --deflate"
run echo_blocking "$EX/echo_blocking --addr 127.0.0.1:{port} --plain"
if [ "$status" -eq 0 ]; then echo "probe/ci.sh: every probe held, fuzz found nothing"; fi
exit "$status"
