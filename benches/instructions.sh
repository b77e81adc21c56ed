#!/usr/bin/env bash
# Server instructions per echoed message of two builds of examples/echo, counted by
# valgrind (callgrind): a measure of the server's CPU work per message that the
# machine's noise does not move (CPU time on a shared 2-vCPU VM spreads by ±15 %
# between runs of one build; this count by well under 1 %). User-space
# instructions only: time in the kernel (the same syscalls for both builds unless
# the IO pattern changed) is not counted.
#
#   benches/instructions.sh BEFORE_DIR AFTER_DIR [ROUNDS=2] [N=2000]
#
# DIRs come from benches/build_at.sh. For each cell (plain 20 B, 1 KiB, 64 KiB;
# permessage-deflate 128 B, 1 KiB, 16 KiB of text) the server runs under callgrind
# (pinned to CPU 0; the AFTER_DIR's loadgen on CPU 1) twice, each time for exactly
# N and 3N round trips (N/5 with deflate, which valgrind slows most) on one
# connection: one message per readiness event, the same work in every run.
# Instructions per message is the slope between the two runs,
# (Ir_3N - Ir_N) / 2N: start-up, the handshake and shutdown cancel out. Needs
# valgrind (Debian: valgrind).
#
#   benches/build_at.sh 9e408a4 target/bench/before && benches/build_at.sh worktree target/bench/after
#   benches/instructions.sh target/bench/before target/bench/after
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
command -v valgrind >/dev/null || { echo "instructions.sh needs valgrind (Debian package: valgrind)" >&2; exit 1; }
B=${1:?before dir} A=${2:?after dir} ROUNDS=${3:-2} N=${4:-2000}
LG="$A/loadgen"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run BINARY "SERVER_ARGS" SIZE "LOADGEN_ARGS" COUNT: prints "IR MSGS".
run() {
  local bin=$1 sargs=$2 size=$3 largs=$4 count=$5
  # shellcheck disable=SC2086
  start_callgrind "$OUT" "$bin" --plain --workers 1 --quiet $sargs
  local line msgs
  # shellcheck disable=SC2086
  line=$(taskset -c 1 "$LG" echo --url "ws://127.0.0.1:$PORT/" --conns 1 --count "$count" \
    --size "$size" $largs 2>/dev/null | tail -1)
  msgs=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["msgs"])' "$line")
  stop_server
  echo "$(callgrind_total "$OUT") $msgs"
}

CELLS="$OUT/cells"
cell() { # label binary "server args" size "loadgen args" count
  local short long
  short=$(run "$2" "$3" "$4" "$5" "$6")
  long=$(run "$2" "$3" "$4" "$5" $((3 * $6)))
  python3 - "$1" "$4" "$short" "$long" <<'PY' | tee -a "$CELLS"
import sys
label, size, (ir1, m1), (ir2, m2) = sys.argv[1], sys.argv[2], *(map(int, a.split()) for a in sys.argv[3:5])
print(f"{label} {size} {(ir2 - ir1) / (m2 - m1):.0f} {m1} {m2}")
PY
}

for r in $(seq 1 "$ROUNDS"); do
  for size in 20 1024 65536; do
    cell plain-before "$B/echo" "" $size "" "$N"
    cell plain-after "$A/echo" "" $size "" "$N"
  done
  for size in 128 1024 16384; do
    cell deflate-before "$B/echo_deflate" "--deflate" $size "--deflate --text" $((N / 5))
    cell deflate-after "$A/echo_deflate" "--deflate" $size "--deflate --text" $((N / 5))
  done
done

python3 - "$CELLS" <<'PY'
import sys, statistics, collections
cells = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, size, ir, *_ = line.split()
    kind, build = label.split('-')
    cells[(kind, int(size), build)].append(float(ir))
print("\n| cell | size | instructions/msg before | after | change | runs (each build) |")
print("|---|---|---|---|---|---|")
for kind, size in sorted({(k, s) for k, s, _ in cells}):
    b, a = cells[(kind, size, 'before')], cells[(kind, size, 'after')]
    mb, ma = statistics.median(b), statistics.median(a)
    spread = lambda v: f"{min(v):,.0f}-{max(v):,.0f}"
    print(f"| {kind} | {size} | {mb:,.0f} ({spread(b)}) | {ma:,.0f} ({spread(a)}) | {100 * (ma - mb) / mb:+.1f} % | {len(b)} |")
PY
