#!/usr/bin/env bash
# Fan-out: server CPU per delivered message and the latency from a POST to its last
# subscriber, for the push example's pushes (this checkout and an earlier build)
# beside uWebSockets' own `publish`, in one run.
#
#   benches/fanout.sh [BEFORE_REV=9dd98dc] [REPS=3]
#
# Environment: NS="1000 10000" (subscribers), SIZES="64 1024" (message bytes),
# RATE_TOTAL=100000 (deliveries per second: a run posts RATE_TOTAL/N times a
# second), SECS=6, MODES="plain deflate", ONLY=label,label (cells to run),
# TAG=latest (names the outputs; only `latest` redraws the charts), SUMMARY_ONLY=1
# (no runs: the tables and charts again from the stored results of TAG).
#
# Each cell starts its server pinned to CPU 0 and `loadgen fanout` (this
# checkout's) on CPU 1: N subscribers on one client loop, posts at a fixed rate
# over one keep-alive HTTP connection, every delivery counted
# (examples/common/fanout.rs). Cells, round by round, interleaved:
#
#   plain    push-before        the earlier build's examples/push, POST /push
#                               (per user: JSON, a copy and a mailbox post each)
#            push-after         this checkout's examples/push, POST /push (topic `all`)
#            push-after-topic   the same, every subscriber in `?topic=t`, POST /push?topic=t
#            uws                uWebSockets `publish` to one topic
#                               (benches/fanout/uws_fanout.py on socketify from PyPI)
#   deflate  push-after-deflate           subscribers without context takeover
#                                         (loadgen --deflate-mode shared): compressed once
#            push-after-deflate-takeover  with context takeover (server --deflate-mode
#                                         small): compressed per subscriber
#            uws-deflate                  uWebSockets SHARED_COMPRESSOR, publish compressed
#   (the earlier build's push example has no --deflate, so no deflate before.)
#
# Writes target/bench/fanout/results-TAG.jsonl (one line per run, with its label),
# docs/fanout-TAG.md (medians, lost, ratio to uWebSockets) and, for TAG=latest, the
# charts docs/charts/fanout-cpu.svg and docs/charts/fanout-latency.svg.
# Needs: python3 (venv), Debian's libuv1 (socketify's native library links it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
BEFORE=${1:-9dd98dc} REPS=${2:-3}
NS=${NS:-"1000 10000"} SIZES=${SIZES:-"64 1024"} RATE_TOTAL=${RATE_TOTAL:-100000}
SECS=${SECS:-6} MODES=${MODES:-"plain deflate"} ONLY=${ONLY:-} TAG=${TAG:-latest}
OUT=target/bench/fanout
mkdir -p "$OUT"

LG=target/bench/fanout-after/loadgen VENV=target/bench/uws-venv
if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
  # The builds: the earlier one and this checkout (examples/push and loadgen).
  benches/build_at.sh "$BEFORE" target/bench/fanout-before >/dev/null
  benches/build_at.sh worktree target/bench/fanout-after >/dev/null

  # The uWebSockets anchor: socketify (uWebSockets + uSockets, compiled) in a venv.
  have_libuv() { ldconfig -p | grep 'libuv.so.1' >/dev/null; }
  if ! have_libuv; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq libuv1 >/dev/null; fi
    have_libuv || { echo "fanout.sh: needs Debian's libuv1 (apt-get install libuv1)" >&2; exit 2; }
  fi
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import socketify' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q socketify==0.0.31
  fi
fi
trap stop_server EXIT

B=target/bench/fanout-before/push A=target/bench/fanout-after/push
UWS=("$VENV/bin/python" benches/fanout/uws_fanout.py "{port}")
USER_PATH='/getPushNews?userId=u{i}'
# label | mode | server command | subscriber path | post path | loadgen flags
CELLS=(
  "push-before|plain|$B --addr 127.0.0.1:{port}|$USER_PATH|/push|"
  "push-after|plain|$A --addr 127.0.0.1:{port}|$USER_PATH|/push|"
  "push-after-topic|plain|$A --addr 127.0.0.1:{port}|$USER_PATH&topic=t|/push?topic=t|"
  "uws|plain|${UWS[*]}|/|/push|"
  "push-after-deflate|deflate|$A --addr 127.0.0.1:{port} --deflate|$USER_PATH|/push|--deflate --deflate-mode shared"
  "push-after-deflate-takeover|deflate|$A --addr 127.0.0.1:{port} --deflate --deflate-mode small|$USER_PATH|/push|--deflate"
  "uws-deflate|deflate|${UWS[*]} --deflate|/|/push|--deflate --deflate-mode shared"
)

RESULTS=$OUT/results-$TAG.jsonl
[ "${SUMMARY_ONLY:-0}" = 1 ] && REPS_RUN=0 || { REPS_RUN=$REPS; : > "$RESULTS"; }
for rep in $(seq 1 "$REPS_RUN"); do
  for n in $NS; do
    rate=$(python3 -c "print($RATE_TOTAL / $n)")
    for size in $SIZES; do
      for cell in "${CELLS[@]}"; do
        IFS='|' read -r label mode server sub post flags <<<"$cell"
        [[ " $MODES " == *" $mode "* ]] || continue
        if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$label,"* ]]; then continue; fi
        # shellcheck disable=SC2086
        start_cmd $server
        # shellcheck disable=SC2086
        line=$(taskset -c 1 "$LG" fanout --url "ws://127.0.0.1:$PORT$sub" --conns "$n" \
          --rate "$rate" --duration "$SECS" --size "$size" --post "http://127.0.0.1:$PORT$post" \
          --server-pid "$SERVER_PID" $flags 2>/dev/null | tail -1)
        stop_server
        [ -n "$line" ] || line='{"mode": "fanout", "failed": true}'
        echo "rep $rep: $label N=$n $size B: $line" >&2
        python3 -c 'import json,sys; d=json.loads(sys.argv[2]); d["label"]=sys.argv[1]; print(json.dumps(d))' \
          "$label" "$line" >> "$RESULTS"
        sleep 1
      done
    done
  done
done

python3 - "$RESULTS" "$BEFORE" "$REPS" "$RATE_TOTAL" "$SECS" "$NS" "$SIZES" > "docs/fanout-$TAG.md" <<'PY'
import collections, json, statistics, sys
path, before, reps, rate, secs, ns, sizes = sys.argv[1:]
cells = collections.defaultdict(list)
for line in open(path):
    d = json.loads(line)
    if d.get("failed"):
        continue
    cells[(d["label"], d["conns"], d["size"])].append(d)
med = lambda rows, f: statistics.median(r[f] for r in rows if r[f] is not None)
print("# Fan-out: a run of benches/fanout.sh\n")
print(f"`NS=\"{ns}\" SIZES=\"{sizes}\" RATE_TOTAL={rate} SECS={secs} benches/fanout.sh {before} {reps}`: "
      "medians over the runs of each cell; server on CPU 0, loadgen on CPU 1. "
      "CPU: server CPU time per delivered message, from the first POST until every "
      "delivery arrived. Latency: from the POST to the last subscriber that got the "
      "message. Ratio: CPU per delivery ÷ uWebSockets' in the same mode, N and size.\n")
print("| cell | N | size | CPU µs/delivery | ratio to uWS | deliveries/s | latency p50 ms | p99 ms | max ms | lost | runs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
labels = list(dict.fromkeys(k[0] for k in cells))
for n, size in sorted({(k[1], k[2]) for k in cells}):
    for label in labels:
        rows = cells.get((label, n, size))
        if not rows:
            continue
        cpu = med(rows, "server_cpu_us_per_delivery")
        anchor = cells.get(("uws-deflate" if "deflate" in label else "uws", n, size))
        ratio = f"{cpu / med(anchor, 'server_cpu_us_per_delivery'):.2f}" if anchor else "–"
        lost = sum(r["lost"] for r in rows)
        print(f"| {label} | {n:,} | {size} | {cpu:.2f} | {ratio} | {med(rows, 'deliveries_per_sec'):,.0f} | "
              f"{med(rows, 'latency_last_ms_p50'):.1f} | {med(rows, 'latency_last_ms_p99'):.1f} | "
              f"{med(rows, 'latency_last_ms_max'):.1f} | {lost} | {len(rows)} |")
PY
if [ "$TAG" = latest ]; then python3 benches/charts.py fanout "$RESULTS" docs/charts >&2; fi
cat "docs/fanout-$TAG.md"
