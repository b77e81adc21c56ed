#!/usr/bin/env bash
# Server CPU per echoed message of two builds of examples/echo, in one run,
# interleaved (each round runs both builds back to back for every cell, before
# first in odd rounds and after first in even ones), so that the machine's drift
# and any advantage of running second hit both alike.
#
#   benches/before_after.sh BEFORE_DIR AFTER_DIR [ROUNDS=3] [SECS=4]
#
# Each DIR comes from benches/build_at.sh (it holds `echo`, `echo_deflate` and
# `loadgen`; the AFTER_DIR's loadgen drives every run). Server on CPU 0, loadgen on
# CPU 1, 100 connections. Prints one line per run, a table of medians and the
# paired after/before ratio per cell (see summarize in lib.sh).
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
  sides="before after"
  if [ $((r % 2)) -eq 0 ]; then sides="after before"; fi
  for size in 20 1024 65536; do
    for side in $sides; do
      dir=$B; if [ "$side" = after ]; then dir=$A; fi
      echo_cell "plain-$side" "$LG" "$dir/echo" "" $size ""
    done
  done
  for size in 128 1024 16384; do
    for side in $sides; do
      dir=$B; if [ "$side" = after ]; then dir=$A; fi
      echo_cell "deflate-$side" "$LG" "$dir/echo_deflate" "--deflate" $size "--deflate --text"
    done
  done
done
summarize
rm -f "$CELLS"
