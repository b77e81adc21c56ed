#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time, failing on any crash,
# timeout (10 s per input), leak or out-of-memory.
#
#   fuzz/run.sh [SECONDS] [TARGET ...]     default: 60 s each, every target
#   JOBS=2 fuzz/run.sh 600                 run two targets at a time
#
# New interesting inputs go to fuzz/work/corpus/NAME (git-ignored); the committed
# seeds in fuzz/corpus/NAME are read, never written. Prints, per target, the
# coverage (cov = edges, ft = features) at the end of the run and executions/s.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
SECS="${1:-60}"
shift || true
JOBS="${JOBS:-1}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
echo "fuzz: building ${#targets[@]} targets"
cargo +nightly fuzz build

mkdir -p work/logs
run_one() {
  local t="$1"
  mkdir -p "work/corpus/$t"
  local dict=()
  case "$t" in handshake_*) dict=(-dict=dict/http.dict) ;; esac
  local log="work/logs/$t.log"
  local rc=0
  local extra=()
  [ -d "regressions/$t" ] && extra=("regressions/$t")
  cargo +nightly fuzz run "$t" "work/corpus/$t" "corpus/$t" "${extra[@]}" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" >"$log" 2>&1 || rc=$?
  local done_line execs
  done_line=$(grep -aE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(grep -aE 'stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)
  if [ "$rc" -ne 0 ]; then
    echo "FAIL $t (exit $rc): see fuzz/$log"
    grep -aE 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    return 1
  fi
  printf 'ok   %-18s %s  exec/s: %s\n' "$t" "$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+')" "${execs:-?}"
}

failed=0
pids=()
for t in "${targets[@]}"; do
  if [ "$JOBS" -le 1 ]; then
    run_one "$t" || failed=1
  else
    run_one "$t" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (reproduce: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...)"
  exit 1
fi
echo "fuzz: all targets clean after ${SECS}s each"
