#!/usr/bin/env bash
# The protocol core's own per-message cost, before and after a change, in one run:
# criterion's `connection` group (one message through a client and a server
# `proto::Connection` and back, time passed as an Instant on every call, the next
# deadline asked after each step; checks/benches/core.rs), built from REV and from
# the working tree, run alternately ROUNDS times each (before first in odd rounds),
# so that drift hits both alike. No sockets: far less noisy than before_after.sh.
#
#   benches/core_before_after.sh REV [ROUNDS=3] [FILTER=connection]
#
# REV's tree gets this tree's checks/benches/core.rs (the benchmark must exist on
# both sides; it uses only API both have). Prints each run's estimate and, per
# benchmark, the median of each side and the paired after/before ratio.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REV=${1:?usage: core_before_after.sh REV [ROUNDS] [FILTER]} ROUNDS=${2:-3} FILTER=${3:-connection}
WT=$(mktemp -d /tmp/core-before.XXXXXX)
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
git -C "$ROOT" worktree add --detach "$WT" "$REV" >/dev/null 2>&1
cp "$ROOT/checks/benches/core.rs" "$WT/checks/benches/core.rs"
OUT=$(mktemp)
run() { # side dir
  (cd "$2" && CARGO_TARGET_DIR="$ROOT/target/core-bench-$1" cargo bench -q -p silverback-checks --bench core -- "$FILTER" \
     --warm-up-time 1 --measurement-time 4 --noplot 2>/dev/null) \
  | awk -v side="$1" '$2=="time:" {name=$1; v=$5; u=$6; if (u=="ns") x=v; else if (u=="µs"||u=="us") x=v*1000; else if (u=="ms") x=v*1e6; print side, name, x}' \
  | tee -a "$OUT"
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run before "$WT"; run after "$ROOT"; else run after "$ROOT"; run before "$WT"; fi
done
echo
echo "| benchmark | before (median ns) | after (median ns) | after / before, paired per round (median) | rounds |"
echo "|---|---:|---:|---:|---:|"
python3 - "$OUT" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(lambda: {"before": [], "after": []})
for line in open(sys.argv[1]):
    side, name, x = line.split()
    runs[name][side].append(float(x))
for name, d in runs.items():
    b, a = d["before"], d["after"]
    pairs = [y / x - 1 for x, y in zip(b, a)]
    print(f"| {name} | {statistics.median(b):.1f} | {statistics.median(a):.1f} | {100 * statistics.median(pairs):+.1f} % | {len(pairs)} |")
PY
rm -f "$OUT"
