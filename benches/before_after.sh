#!/usr/bin/env bash
# Server CPU per echoed message of two builds of examples/echo, in one run,
# interleaved (round r runs before then after for every cell), so that the machine's
# drift hits both alike.
#
#   benches/before_after.sh BEFORE_DIR AFTER_DIR [ROUNDS=3] [SECS=4]
#
# Each DIR comes from benches/build_at.sh (it holds `echo`, `echo_deflate` and
# `loadgen`; the AFTER_DIR's loadgen drives every run). Server on CPU 0, loadgen on
# CPU 1, 100 connections. Prints one line per run and a table of medians.
#
#   benches/build_at.sh 3b8c4b9 /tmp/before && benches/build_at.sh worktree /tmp/after
#   benches/before_after.sh /tmp/before /tmp/after
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
B=${1:?before dir} A=${2:?after dir} ROUNDS=${3:-3} SECS=${4:-4}
LG="$A/loadgen"
CELLS=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
  for size in 20 1024 65536; do
    echo_cell plain-before "$LG" "$B/echo" "" $size ""
    echo_cell plain-after "$LG" "$A/echo" "" $size ""
  done
  for size in 128 1024 16384; do
    echo_cell deflate-before "$LG" "$B/echo_deflate" "--deflate" $size "--deflate --text"
    echo_cell deflate-after "$LG" "$A/echo_deflate" "--deflate" $size "--deflate --text"
  done
done
summarize
rm -f "$CELLS"
