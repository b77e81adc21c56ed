#!/usr/bin/env bash
# wss:// side by side with a TLS anchor, in one run: silverback's echo with
# --tls-self-signed against tokio-tungstenite + tokio-rustls (benches/anchors/tls-echo,
# rustls with the ring provider like ours, one thread like ours with --workers 1),
# both with a self-signed ECDSA P-256 certificate for localhost, TLS 1.3.
#
#   benches/tls_anchor.sh [ROUNDS=3] [SECS=4]
#
# Per round, servers interleaved (server on CPU 0, this checkout's loadgen on CPU 1):
#   echo     100 connections, closed loop, 20 B / 1 KiB / 64 KiB: server CPU per message
#   connect  16 handshakes in flight (TCP + TLS + upgrade + close): handshakes/s and
#            server CPU per handshake
#   idle     IDLE_N (10000) wss:// connections held IDLE_HOLD (8) s: server RSS per
#            connection
# Writes docs/tls-latest.md and docs/charts/tls-cpu.svg; results in target/bench/tls/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
ROUNDS=${1:-3} SECS=${2:-4} IDLE_N=${IDLE_N:-10000} IDLE_HOLD=${IDLE_HOLD:-8}
OUT=target/bench/tls
mkdir -p "$OUT"
benches/build_at.sh worktree target/bench/tls-after >/dev/null
(cd benches/anchors/tls-echo && CARGO_TARGET_DIR="$ROOT/target/bench-anchors" cargo build --quiet --release --locked)
OURS=target/bench/tls-after/echo_tls LG=target/bench/tls-after/loadgen
ANCHOR=target/bench-anchors/release/tls-anchor-echo
CELLS=$OUT/echo.txt OTHER=$OUT/connect_idle.txt
: > "$CELLS"
: > "$OTHER"
for r in $(seq 1 "$ROUNDS"); do
  for size in 20 1024 65536; do
    echo_cell silverback "$LG" "$OURS" "--tls-self-signed" "$size" "" wss
    echo_cell tokio-tungstenite-rustls "$LG" "$ANCHOR" "" "$size" "" wss
  done
  for server in silverback tokio-tungstenite-rustls; do
    bin=$OURS
    [ "$server" = silverback ] || bin=$ANCHOR
    for phase in connect idle; do
      start_server "$bin" --plain --workers 1 --quiet --tls-self-signed
      if [ "$phase" = connect ]; then
        args=(connect --conns 16 --duration "$SECS")
      else
        args=(idle --conns "$IDLE_N" --hold "$IDLE_HOLD")
      fi
      line=$(taskset -c 1 "$LG" "${args[@]}" --url "wss://localhost:$PORT/" \
        --cafile "$(server_cert)" --server-pid "$SERVER_PID" 2>/dev/null | tail -1)
      stop_server
      echo "$server $phase $line" | tee -a "$OTHER"
    done
  done
done
{
  echo "# wss:// beside a TLS anchor: latest run of benches/tls_anchor.sh"
  echo
  echo "\`benches/tls_anchor.sh $ROUNDS $SECS\` (IDLE_N=$IDLE_N): silverback's \`echo --tls-self-signed\`"
  echo "against tokio-tungstenite + tokio-rustls (benches/anchors/tls-echo), both one thread,"
  echo "rustls with the ring provider, ECDSA P-256, TLS 1.3; server on CPU 0, loadgen on CPU 1."
  echo "Medians over rounds."
  summarize
  python3 - "$OTHER" <<'PY'
import collections, json, statistics, sys
cells = collections.defaultdict(list)
for line in open(sys.argv[1]):
    server, phase, js = line.split(" ", 2)
    cells[(server, phase)].append(json.loads(js))
servers = list(dict.fromkeys(k[0] for k in cells))
med = lambda rows, f: statistics.median(r[f] for r in rows if r.get(f) is not None)
print("\n| server | handshakes/s (16 in flight) | server CPU µs per handshake | idle KiB per wss:// connection | idle connections established |")
print("|---|---:|---:|---:|---:|")
for s in servers:
    c, i = cells[(s, "connect")], cells[(s, "idle")]
    print(f"| {s} | {med(c, 'per_s'):,.0f} | {med(c, 'server_cpu_us_per_handshake'):.1f} | "
          f"{med(i, 'kib_per_conn'):.2f} | {min(r['established'] for r in i):,} of {i[0]['wanted']:,} |")
PY
} > docs/tls-latest.md
python3 benches/charts.py tls "$CELLS" docs/charts >&2
cat docs/tls-latest.md
