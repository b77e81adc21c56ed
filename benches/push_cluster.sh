#!/usr/bin/env bash
# The push service as a cluster, under load and under Redis faults: two processes
# of examples/push (release, --features json) on one redis-server (Debian's
# package), `loadgen push` holding CONNS connections spread over both (its holder
# processes), pushes through random processes to random users for SECS seconds,
# every delivery checked (examples/common/push_load.rs).
#
#   benches/push_cluster.sh [CONNS=20000] [SECS=20] [RUNS="steady pause restart"]
#
#   steady   everything up: pushes/s, delivery latency same- and cross-process, lost
#   pause    Redis paused (SIGSTOP) for 3 s from 5 s: the bystander's pong round
#            trips meanwhile, cross-process pushes refused (503), none lost
#   restart  Redis killed at 5 s and started again at once, empty: the time to the
#            first cross-process push delivered after the restart
#
# Each run starts a fresh Redis and fresh processes. Nothing is pinned (the
# machine has two cores for two servers, Redis and the load generator): read the
# figures as this machine's, not as a ceiling. Prints each run's JSON line and a
# table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CONNS=${1:-20000} SECS=${2:-20} RUNS=${3:-"steady pause restart"}
command -v redis-server >/dev/null || { echo "push_cluster.sh: needs redis-server (Debian package redis-server)" >&2; exit 2; }
cargo build --quiet --release --features json --example push
cargo build --quiet --release --features deflate,json,tls --example loadgen
EX="$ROOT/target/release/examples"
WORK=$(mktemp -d)
RPORT=$((20000 + RANDOM % 10000))
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/redis.pid" ] && kill -9 "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
REDIS=(redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK"
  --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log")
start_redis() {
  rm -f "$WORK/redis.pid"
  "${REDIS[@]}"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && [ -s "$WORK/redis.pid" ]; then return 0; fi
    sleep 0.05
  done
  echo "push_cluster.sh: redis-server did not start" >&2; exit 1
}
out=$WORK/results
for run in $RUNS; do
  start_redis
  PIDS=()
  urls=()
  for n in a b; do
    port=$((RPORT + 100 + ${#PIDS[@]}))
    "$EX/push" --addr "127.0.0.1:$port" --redis "redis://127.0.0.1:$RPORT/" --node "$n" \
      --ping 10 >/dev/null 2>"$WORK/push-$n.log" &
    PIDS+=($!)
    urls+=(--url "ws://127.0.0.1:$port/")
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.05
    done
  done
  at=()
  case $run in
    steady) ;;
    pause) at=(--at "5:kill -STOP \$(cat $WORK/redis.pid)" --at "8:kill -CONT \$(cat $WORK/redis.pid)") ;;
    restart) at=(--at "5:kill -9 \$(cat $WORK/redis.pid); sleep 0.05; ${REDIS[*]}") ;;
    *) echo "push_cluster.sh: unknown run $run" >&2; exit 2 ;;
  esac
  line=$("$EX/loadgen" push "${urls[@]}" --conns "$CONNS" --duration "$SECS" "${at[@]}" | tail -1) || true
  echo "$run $line" | tee -a "$out"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  kill -CONT "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  kill -9 "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  sleep 0.5
done
python3 - "$out" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    run, js = line.split(' ', 1)
    try:
        d = json.loads(js)
    except ValueError:
        print(f"{run}: no result ({js.strip()})"); continue
    rows.append((run, d))
print("\n| run | pushes/s | same p50/p99 ms | cross p50/p99 ms | lost | refused | refused but delivered | pong p99/max ms |")
print("|---|---|---|---|---|---|---|---|")
for run, d in rows:
    ref = sum(d["refused"].values())
    print(f"| {run} | {d['pushes_per_s']} | {d['same']['p50_ms']} / {d['same']['p99_ms']} | {d['cross']['p50_ms']} / {d['cross']['p99_ms']} | {d['lost']} | {ref} | {d['refused_but_delivered']} | {d['pong_p99_ms']} / {d['pong_max_ms']} |")
for run, d in rows:
    for m in d["marks"]:
        print(f"{run}: from {m['at_s']:.2f} s ({m['cmd'][:40]}...): {m['ok']} ok, {m['refused']} refused, bystander pong p99 {m['pong_p99_ms']} ms max {m['pong_max_ms']} ms over {m['pongs']} pings, first cross-process delivery {m['first_cross_delivery_after_ms']} ms after")
PY
