#!/usr/bin/env bash
# Server memory per idle connection, for one or more builds side by side:
#
#   benches/idle.sh DIR [DIR...]       (DIRs from benches/build_at.sh)
#
# For each build and kind, `loadgen idle` (the DIR's own) opens CONNS connections
# to the build's echo server (pinned to CPU 0; loadgen on CPU 1), holds them HOLD
# seconds and reports the server's RSS growth per connection (/proc/PID/status).
# Kinds: `handshake` (nothing after the upgrade), `1k` (one 1 KiB echo first),
# `small` (--deflate --deflate-mode small, one 1 KiB echo: compression state kept),
# `tls` (wss://, self-signed, handshake only). ROUNDS rounds, builds interleaved.
# Environment: CONNS=10000 HOLD=8 ROUNDS=2 KINDS="handshake 1k small tls".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
[ $# -ge 1 ] || { echo "usage: idle.sh DIR [DIR...]" >&2; exit 2; }
CONNS=${CONNS:-10000} HOLD=${HOLD:-8} ROUNDS=${ROUNDS:-2}
KINDS=${KINDS:-"handshake 1k small tls"}
out=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
  for kind in $KINDS; do
    for dir in "$@"; do
      lg=(taskset -c 1 "$dir/loadgen" idle --conns "$CONNS" --hold "$HOLD")
      case $kind in
        handshake) start_server "$dir/echo" --plain --workers 1 --quiet
                   url="ws://127.0.0.1:$PORT/" ;;
        1k)        start_server "$dir/echo" --plain --workers 1 --quiet
                   url="ws://127.0.0.1:$PORT/"; lg+=(--message 1024) ;;
        small)     start_server "$dir/echo_deflate" --plain --workers 1 --quiet --deflate --deflate-mode small
                   url="ws://127.0.0.1:$PORT/"; lg+=(--message 1024 --deflate --deflate-mode small) ;;
        tls)       [ -x "$dir/echo_tls" ] || continue
                   start_server "$dir/echo_tls" --plain --workers 1 --quiet --tls-self-signed
                   url="wss://localhost:$PORT/"; lg+=(--cafile "$(server_cert)") ;;
        *) echo "idle.sh: unknown kind $kind" >&2; exit 2 ;;
      esac
      line=$("${lg[@]}" --url "$url" --server-pid "$SERVER_PID" 2>/dev/null | tail -1)
      stop_server
      echo "$(basename "$dir") $kind $line" | tee -a "$out"
    done
  done
done
python3 - "$out" <<'PY'
import json, sys, collections
cells = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    build, kind, js = line.split(' ', 2)
    d = json.loads(js)
    if d.get("established") != d.get("wanted"):
        print(f"warning: {build} {kind}: {d.get('established')} of {d.get('wanted')} connections", file=sys.stderr)
    if (build, kind) not in cells: order.append((build, kind))
    cells[(build, kind)].append(d["kib_per_conn"])
print("\n| build | kind | server RSS KiB per idle connection (each round) |")
print("|---|---|---|")
for build, kind in sorted(order, key=lambda k: (k[1], k[0])):
    print(f"| {build} | {kind} | {' / '.join(f'{v:.2f}' for v in cells[(build, kind)])} |")
PY
rm -f "$out"
