#!/usr/bin/env bash
# Server instructions per delivered message of a push, counted by valgrind
# (callgrind): the fan-out's user-space work, which the machine's noise does not
# move (benches/fanout.sh measures CPU time, kernel included, which spreads by
# ±15-25 % between runs here). User-space instructions only: the send system call
# per subscriber, the same for every build, is not counted.
#
#   benches/fanout_instructions.sh [BEFORE_REV=9dd98dc] [N=200] [ROUNDS=2]
#
# For each cell examples/push (release, --features deflate,json) runs under
# callgrind pinned to CPU 0 while `loadgen fanout` (this checkout's, CPU 1) holds N
# subscribers and posts 256-byte JSON bodies at 20 posts/s, once for 1 s and once
# for 3 s: instructions per delivery is the slope between the two runs,
# (Ir_60posts - Ir_20posts) / (40 × N); start-up, connects and shutdown cancel out.
# Cells: push-before (POST /push of BEFORE_REV: per user a JSON serialization,
# a copy and a mailbox post), push-after (POST /push through the topic `all`),
# push-after-topic (POST /push?topic=t), and with permessage-deflate
# push-after-deflate (no context takeover: one compression per publish) and
# push-after-deflate-takeover (context takeover: one per subscriber).
# Needs valgrind (Debian: valgrind).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
command -v valgrind >/dev/null || { echo "fanout_instructions.sh needs valgrind (Debian package: valgrind)" >&2; exit 1; }
BEFORE=${1:-9dd98dc} N=${2:-200} ROUNDS=${3:-2}
benches/build_at.sh "$BEFORE" target/bench/fanout-before >/dev/null
benches/build_at.sh worktree target/bench/fanout-after >/dev/null
B=target/bench/fanout-before/push A=target/bench/fanout-after/push LG=target/bench/fanout-after/loadgen
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run BINARY "SERVER_ARGS" SUB_PATH POST_PATH "LOADGEN_ARGS" SECS: prints "IR DELIVERIES".
run() {
  local bin=$1 sargs=$2 sub=$3 post=$4 largs=$5 secs=$6
  # shellcheck disable=SC2086
  start_callgrind "$OUT" "$bin" $sargs
  local line delivered
  # shellcheck disable=SC2086
  line=$(taskset -c 1 "$LG" fanout --url "ws://127.0.0.1:$PORT$sub" --conns "$N" --rate 20 \
    --duration "$secs" --size 256 --post "http://127.0.0.1:$PORT$post" $largs 2>/dev/null | tail -1)
  delivered=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["lost"] == 0, d; print(d["delivered"])' "$line")
  stop_server
  echo "$(callgrind_total "$OUT") $delivered"
}

CELLS="$OUT/cells"
cell() { # label binary "server args" sub post "loadgen args"
  local short long
  short=$(run "$2" "$3" "$4" "$5" "$6" 1)
  long=$(run "$2" "$3" "$4" "$5" "$6" 3)
  python3 - "$1" "$short" "$long" <<'PY' | tee -a "$CELLS"
import sys
label, (ir1, d1), (ir2, d2) = sys.argv[1], *(map(int, a.split()) for a in sys.argv[2:4])
print(f"{label} {(ir2 - ir1) / (d2 - d1):.0f} {d1} {d2}")
PY
}

USER_PATH='/getPushNews?userId=u{i}'
for r in $(seq 1 "$ROUNDS"); do
  cell push-before "$B" "" "$USER_PATH" /push ""
  cell push-after "$A" "" "$USER_PATH" /push ""
  cell push-after-topic "$A" "" "$USER_PATH&topic=t" "/push?topic=t" ""
  cell push-after-deflate "$A" "--deflate" "$USER_PATH" /push "--deflate --deflate-mode shared"
  cell push-after-deflate-takeover "$A" "--deflate --deflate-mode small" "$USER_PATH" /push "--deflate"
done

python3 - "$CELLS" "$BEFORE" "$N" <<'PY'
import sys, statistics, collections
cells = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, ir, *_ = line.split()
    cells[label].append(float(ir))
base = statistics.median(cells["push-before"])
print(f"\n{sys.argv[3]} subscribers, 256 B JSON bodies; before = {sys.argv[2]}\n")
print("| cell | instructions per delivery (median) | runs | against push-before |")
print("|---|---:|---|---:|")
for label, v in cells.items():
    m = statistics.median(v)
    print(f"| {label} | {m:,.0f} | {' / '.join(f'{x:,.0f}' for x in v)} | {m / base:.2f}× |")
PY
