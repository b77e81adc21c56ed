#!/usr/bin/env bash
# What a forward proxy adds to a client's opening handshake: COUNT handshakes in
# a row (`loadgen handshake`, the blocking Dialer, each closed at once) against
# examples/echo --plain (ws://) and examples/echo --tls-self-signed (wss://),
# direct, through tinyproxy (HTTP CONNECT) and through microsocks (SOCKS5, the
# client resolving the name, and socks5h, the proxy resolving it), all on
# loopback. Needs the Debian packages tinyproxy and microsocks. Prints each run's
# JSON line and a table of p50/p99 with the difference to direct.
#
#   benches/proxies.sh [COUNT=500]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COUNT=${1:-500}
for tool in tinyproxy microsocks; do
  command -v "$tool" >/dev/null || { echo "proxies.sh: needs $tool (Debian package $tool)" >&2; exit 2; }
done
cargo build --quiet --release --example echo
cargo build --quiet --release --features tls --example echo --target-dir target/bench-tls
cargo build --quiet --release --features tls --example loadgen --target-dir target/bench-tls
EX="$ROOT/target/release/examples" TX="$ROOT/target/bench-tls/release/examples"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "proxies.sh: nothing listens on $1" >&2; exit 1
}
WS=$(port) WSS=$(port) HP=$(port) SP=$(port)
"$EX/echo" --addr "127.0.0.1:$WS" --plain --quiet >/dev/null 2>&1 & PIDS+=($!)
(cd "$WORK" && TMPDIR="$WORK" exec "$TX/echo" --addr "127.0.0.1:$WSS" --plain --quiet --tls-self-signed >/dev/null 2>&1) & PIDS+=($!)
printf 'Port %s\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 64\nLogLevel Critical\nPidFile "%s/tp.pid"\n' \
  "$HP" "$WORK" > "$WORK/tinyproxy.conf"
tinyproxy -d -c "$WORK/tinyproxy.conf" >/dev/null 2>&1 & PIDS+=($!)
microsocks -i 127.0.0.1 -p "$SP" >/dev/null 2>&1 & PIDS+=($!)
for p in $WS $WSS $HP $SP; do wait_port "$p"; done
CERT=$(ls "$WORK"/silverback-*-cert.pem)
OUT="$WORK/out"
for target in "ws://127.0.0.1:$WS/" "wss://localhost:$WSS/"; do
  for proxy in none "http://127.0.0.1:$HP" "socks5://127.0.0.1:$SP" "socks5h://127.0.0.1:$SP"; do
    args=(handshake --url "$target" --count "$COUNT" --cafile "$CERT")
    [ "$proxy" = none ] || args+=(--proxy "$proxy")
    "$TX/loadgen" "${args[@]}" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
direct = {r["url"]: r for r in rows if r["proxy"] == "none"}
print("\n| target | via | p50 µs | p99 µs | p50 over direct |")
print("|---|---|---|---|---|")
for r in rows:
    d = direct[r["url"]]
    via = r["proxy"].split("://")[0] if r["proxy"] != "none" else "direct"
    print(f'| {r["url"].split(":")[0]} | {via} | {r["p50_us"]} | {r["p99_us"]} | {r["p50_us"] - d["p50_us"]:+} |')
PY
