#!/usr/bin/env bash
# Restart without disconnecting anyone: how long a handover of live connections to
# a new process takes, and what clients see during it (issue 28).
#
#   benches/handover.sh [REPS=3]
#
# Environment: SECS=8 (load per run), AT=4 (seconds after every connection is up
# when the old process gets SIGUSR2), CELLS_ONLY=label,label (cells to run),
# SUMMARY_ONLY=1 (no runs: the table again from the stored results).
#
# Each run: the old server `examples/echo --plain --handover P` and the new one
# `examples/echo --plain --resume P`, both pinned to CPU 0; `loadgen restart` on
# CPU 1 opens the connections, keeps the busy ones exchanging 64-byte messages
# (one in flight each, the next one an interval after the echo; every echo
# checked), sends SIGUSR2 to the old process at AT, stops at SECS, then makes
# every connection (idle or busy) exchange one more message
# (examples/common/restart.rs). Cells:
#
#   idle-10000            10,000 connections, 10 of them busy (the probes whose
#                         round trips are measured, a message every 10 ms each),
#                         the rest idle
#   busy-1000             1,000 connections, all busy, a message every 100 ms each
#                         (10,000 messages/s)
#   busy-1000-deflate     the same with permessage-deflate, context takeover both
#                         ways (the default Dedicated mode; the windows move)
#   busy-1000-deflate-small  the same in the small memory mode (--deflate-mode
#                         small: 512-byte windows, pooled compressors) instead of a
#                         dedicated ~300 KiB compressor per connection that the new
#                         process must allocate and prime
#   busy-1000-saturated   1,000 connections in a closed loop (no interval): the
#                         server's core is saturated and round trips are mostly
#                         queueing; the worst case for a pause
#
# Per run: the handover time and the connections' pause as the old process
# reports them ("handed over N connections ... in X ms (connections paused Y ms")),
# round trips sent in the 2 s before the signal and in the 2 s from it (p50, p99,
# max), the longest wait for an echo, connections lost, messages lost, bad echoes.
# Writes target/bench/handover/results.jsonl and docs/handover-latest.md (medians
# over the rounds, and the worst of each loss column).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
REPS=${1:-3}
SECS=${SECS:-8}
AT=${AT:-4}
OUT=target/bench/handover
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
export CARGO_TARGET_DIR=target/bench-handover
BIN=$CARGO_TARGET_DIR/release/examples
if [ -z "${SUMMARY_ONLY:-}" ]; then
  : >"$RESULTS"
  cargo build --release --quiet --features handover,deflate --example echo --example loadgen
fi

run_cell() {
  local label=$1 conns=$2 busy=$3 interval=$4 extra=$5
  local sock="${TMPDIR:-/tmp}/sb-handover-bench-$$.sock"
  rm -f "$sock"
  # shellcheck disable=SC2086
  SERVER_LOG=$OUT/old.log start_server "$BIN/echo" --plain --quiet $extra --handover "$sock"
  local old=$SERVER_PID
  # shellcheck disable=SC2086
  taskset -c 0 "$BIN/echo" --plain --quiet $extra --addr "127.0.0.1:$PORT" \
    --resume "$sock" >"$OUT/new.log" 2>&1 &
  local new=$!
  for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
  local lg_extra=()
  [ -n "$extra" ] && lg_extra=(--deflate)
  local line
  line=$(taskset -c 1 "$BIN/loadgen" restart --url "ws://127.0.0.1:$PORT/" --conns "$conns" \
    --busy "$busy" --size 64 --interval "$interval" --duration "$SECS" --at "$AT:kill -USR2 $old" "${lg_extra[@]}" 2>/dev/null | tail -1)
  for _ in $(seq 1 200); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  kill "$old" 2>/dev/null || true
  wait "$old" 2>/dev/null || true
  kill "$new" 2>/dev/null || true
  wait "$new" 2>/dev/null || true
  local ho
  ho=$(grep -oE 'handed over [0-9]+ connections and [0-9]+ listeners in [0-9.]+ ms \(connections paused [0-9.]+ ms; [0-9]+ closed' "$OUT/old.log" || echo "")
  python3 - "$label" "$line" "$ho" >>"$RESULTS" <<'PY'
import json, re, sys
label, line, ho = sys.argv[1:4]
r = json.loads(line) if line.startswith("{") else {"error": line}
m = re.search(r"handed over (\d+) connections and (\d+) listeners in ([\d.]+) ms \(connections paused ([\d.]+) ms; (\d+) closed", ho)
r["label"] = label
if m:
    r["handed_over"], r["listeners"] = int(m[1]), int(m[2])
    r["handover_ms"], r["paused_ms"], r["closed_1012"] = float(m[3]), float(m[4]), int(m[5])
else:
    r["handed_over"] = None
print(json.dumps(r))
PY
  tail -1 "$RESULTS"
}

want() { [ -z "${CELLS_ONLY:-}" ] || [[ ",$CELLS_ONLY," == *",$1,"* ]]; }

[ -n "${SUMMARY_ONLY:-}" ] && REPS=0
for round in $(seq 1 "$REPS"); do
  echo "== round $round/$REPS"
  want idle-10000 && run_cell idle-10000 10000 10 10 ""
  want busy-1000 && run_cell busy-1000 1000 1000 100 ""
  want busy-1000-deflate && run_cell busy-1000-deflate 1000 1000 100 "--deflate"
  want busy-1000-deflate-small && run_cell busy-1000-deflate-small 1000 1000 100 "--deflate --deflate-mode small"
  want busy-1000-saturated && run_cell busy-1000-saturated 1000 1000 0 ""
done

python3 - "$RESULTS" "${1:-3}" "$SECS" "$AT" >docs/handover-latest.md <<'PY'
import json, statistics, sys, collections
path, reps, secs, at = sys.argv[1:5]
rows = collections.defaultdict(list)
for line in open(path):
    r = json.loads(line)
    rows[r["label"]].append(r)
med = lambda v: statistics.median(v) if v else float("nan")
print("# Handover: restart without disconnecting (latest run)\n")
print(f"`benches/handover.sh {reps}` (SECS={secs}, AT={at}): old and new `examples/echo --plain` on CPU 0, "
      "`loadgen restart` on CPU 1; medians over the rounds, losses summed over them. "
      "Round trips in ms; *before*: sent in the 2 s before SIGUSR2, *during*: in the 2 s from it.\n")
print("| cell | runs | connections moved | handover ms | paused ms | before p99 / max | during p99 / max | longest wait (sent at) | conns lost | msgs lost | bad echoes | verified |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, rs in rows.items():
    ok = [r for r in rs if "before" in r]
    f = lambda k: med([r[k] for r in ok if r.get(k) is not None])
    b99 = med([r["before"]["p99_ms"] for r in ok]); bmax = med([r["before"]["max_ms"] for r in ok])
    d99 = med([r["during"]["p99_ms"] for r in ok]); dmax = med([r["during"]["max_ms"] for r in ok])
    print(f"| {label} | {len(rs)} | {f('handed_over'):.0f} | {f('handover_ms'):.1f} | {f('paused_ms'):.1f} | "
          f"{b99:.2f} / {bmax:.2f} | {d99:.2f} / {dmax:.2f} | {f('stall_ms'):.1f} ({f('stall_sent_at_s'):.1f} s) | "
          f"{sum(r['lost_conns'] for r in ok) + len(rs) - len(ok)} | {sum(r['lost_msgs'] for r in ok)} | "
          f"{sum(r['bad'] for r in ok)} | {sum(r['verified'] for r in ok)}/{sum(r['conns'] for r in ok)} |")
print(f"\nSIGUSR2 goes out {at} s after every connection is up; the busy connections stop at {secs} s "
      f"and every connection exchanges one more message at {float(secs) + 2:.0f} s (all at once: "
      "the longest waits sent then are that burst, not the handover).")
print("\nEvery run, as loadgen printed it (with the old process's handover line parsed in):\n")
print("```")
for line in open(path):
    print(line.rstrip())
print("```")
PY
cat docs/handover-latest.md
