#!/usr/bin/env bash
# Server CPU per echoed message of two builds of examples/echo, in one run,
# interleaved (round r runs before then after for every cell), so that the machine's
# drift hits both alike.
#
#   benches/before_after.sh BEFORE_DIR AFTER_DIR [ROUNDS=3] [SECS=4]
#
# Each DIR holds `echo` (default features), `echo_deflate` (built with --features
# deflate) and `loadgen` (built with --features deflate; the AFTER_DIR's drives every run). Server on CPU 0,
# loadgen on CPU 1, 100 connections. Prints one line per run and a table of medians.
# Build a DIR with:
#   cargo build --release --example echo && cp target/release/examples/echo DIR/
#   cargo build --release --features deflate --example echo --example loadgen && \
#     cp target/release/examples/echo DIR/echo_deflate && cp target/release/examples/loadgen DIR/
set -euo pipefail
B=${1:?before dir} A=${2:?after dir} ROUNDS=${3:-3} SECS=${4:-4}
LG="$A/loadgen"
PORT=$((20000 + RANDOM % 20000))
out=$(mktemp)
run() { # label binary extra-server-args size extra-loadgen-args
  local label=$1 bin=$2 sargs=$3 size=$4 largs=$5
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086
  taskset -c 0 "$bin" --plain --workers 1 --addr 127.0.0.1:$PORT --quiet $sargs >/dev/null 2>&1 &
  local pid=$!
  sleep 0.5
  kill -0 $pid 2>/dev/null || { echo "before_after.sh: $bin did not start on port $PORT" >&2; exit 1; }
  local line
  line=$(taskset -c 1 "$LG" echo --url ws://127.0.0.1:$PORT/ --conns 100 --duration "$SECS" \
    --size "$size" --server-pid $pid $largs 2>/dev/null | tail -1)
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  echo "$label $size $line" | tee -a "$out"
}
for r in $(seq 1 "$ROUNDS"); do
  for size in 20 1024 65536; do
    run plain-before "$B/echo" "" $size ""
    run plain-after "$A/echo" "" $size ""
  done
  for size in 128 1024 16384; do
    run deflate-before "$B/echo_deflate" "--deflate" $size "--deflate --text"
    run deflate-after "$A/echo_deflate" "--deflate" $size "--deflate --text"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics, collections
cells = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, size, js = line.split(' ', 2)
    d = json.loads(js)
    cells[(label, int(size))].append((d["server_cpu_us_per_msg"], d["msgs_per_s"]))
print("\n| build | size | server CPU µs/msg (median) | msgs/s (median) | runs |")
print("|---|---|---|---|---|")
for (label, size), v in sorted(cells.items(), key=lambda k: (k[0][0].split('-')[0], k[0][1], k[0][0])):
    print(f"| {label} | {size} | {statistics.median(x[0] for x in v):.2f} | {statistics.median(x[1] for x in v)/1000:.1f}k | {len(v)} |")
PY
rm -f "$out"
