# Shared by the benchmark scripts (sourced): start a server pinned to CPU 0 on a
# fresh port and wait until it accepts; stop it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PORT=${PORT:-$((20000 + RANDOM % 20000))}

# start_cmd COMMAND ARGS...: starts a server pinned to CPU 0 on a fresh port ({port}
# in the arguments is replaced by it) and waits until it accepts; sets SERVER_PID and
# PORT. PREFIX (an array, e.g. valgrind and its flags) goes before the command.
start_cmd() {
  PORT=$((PORT + 1))
  local cmd=("${@//\{port\}/$PORT}")
  taskset -c 0 "${PREFIX[@]}" "${cmd[@]}" >"${SERVER_LOG:-/dev/null}" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$(basename "$0"): ${cmd[*]} did not start on port $PORT" >&2
  exit 1
}
PREFIX=()

# start_server BINARY ARGS...: start_cmd with --addr 127.0.0.1:{port}.
start_server() {
  local bin=$1
  shift
  start_cmd "$bin" --addr "127.0.0.1:{port}" "$@"
}

# start_callgrind OUTDIR BINARY ARGS...: start_server under valgrind's callgrind
# (its output in OUTDIR/cg.PID); callgrind_total OUTDIR prints the instructions the
# server ran once stop_server has ended it, and removes the file.
start_callgrind() {
  local dir=$1
  shift
  PREFIX=(valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p")
  SERVER_LOG="$dir/vg.log" start_server "$@"
  PREFIX=()
}
callgrind_total() {
  awk '/^totals:/ {print $2}' "$1/cg.$SERVER_PID"
  rm -f "$1/cg.$SERVER_PID"
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# The self-signed certificate a server started with --tls-self-signed wrote.
server_cert() {
  echo "${TMPDIR:-/tmp}/silverback-$SERVER_PID-cert.pem"
}

# echo_cell LABEL LOADGEN SERVER_BINARY "SERVER_ARGS" SIZE "LOADGEN_ARGS" [URL_SCHEME]:
# one closed-loop run (100 connections, SECS seconds) of LOADGEN against the
# server; appends "LABEL SIZE {json}" to $CELLS (loadgen's last line).
echo_cell() {
  local label=$1 lg=$2 bin=$3 sargs=$4 size=$5 largs=$6 scheme=${7:-ws}
  # shellcheck disable=SC2086
  start_server "$bin" --plain --workers 1 --quiet $sargs
  local host=127.0.0.1 extra=()
  if [ "$scheme" = wss ]; then host=localhost; extra=(--cafile "$(server_cert)"); fi
  local line
  # shellcheck disable=SC2086
  line=$(taskset -c 1 "$lg" echo --url "$scheme://$host:$PORT/" --conns "${CONNS:-100}" \
    --duration "${SECS:-4}" --size "$size" --server-pid "$SERVER_PID" "${extra[@]}" $largs 2>/dev/null | tail -1)
  stop_server
  echo "$label $size $line" | tee -a "$CELLS"
}

# summarize: the medians of every (label, size) cell in $CELLS, as a table; for
# LABEL-before/LABEL-after pairs also the paired figure: each round's after run
# divided by that round's before run, median over rounds (the two runs of
# a pair are seconds apart, so the drift of a noisy machine between rounds cancels
# out), with the lowest and highest ratio.
summarize() {
  python3 - "$CELLS" <<'PY'
import json, sys, statistics, collections
cells = collections.defaultdict(list)
ratios = collections.defaultdict(list)
pending = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    label, size, js = line.split(' ', 2)
    d = json.loads(js)
    cpu = d["server_cpu_us_per_msg"]
    cells[(label, int(size))].append((cpu, d["msgs_per_s"]))
    kind, _, side = label.rpartition('-')
    if side in ("before", "after"):
        p = pending[(kind, int(size))]
        p[side] = cpu
        if len(p) == 2:
            ratios[(kind, int(size))].append(p.pop("after") / p.pop("before"))
print("\n| build | size | server CPU µs/msg (median) | msgs/s (median) | runs |")
print("|---|---|---|---|---|")
for (label, size), v in sorted(cells.items(), key=lambda k: (k[0][0].split('-')[0], k[0][1], k[0][0])):
    print(f"| {label} | {size} | {statistics.median(x[0] for x in v):.2f} | {statistics.median(x[1] for x in v)/1000:.1f}k | {len(v)} |")
if ratios:
    print("\n| cells | size | after / before, paired per round (median) | lowest | highest | pairs |")
    print("|---|---|---|---|---|---|")
    for (kind, size), r in sorted(ratios.items()):
        print(f"| {kind} | {size} | {100 * (statistics.median(r) - 1):+.1f} % | {100 * (min(r) - 1):+.1f} % | {100 * (max(r) - 1):+.1f} % | {len(r)} |")
PY
}
