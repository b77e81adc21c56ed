#!/usr/bin/env bash
# The table of docs/compression-modes.md: for each permessage-deflate memory mode,
# server RSS per idle compressed connection at 10,000 connections (each echoes one
# 1 KiB corpus message first) and server CPU per echoed corpus message at 128 B,
# 1 KiB and 16 KiB (100 connections, closed loop). Server on CPU 0, load on CPU 1.
#   benches/deflate_modes.sh [MODES...]   (default: plain fast dedicated:12:4 window:12 small shared)
# Ratio and held heap per mode: cargo run --release --features deflate --example deflate_memory
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features deflate --example echo --example loadgen
B=target/release/examples
modes=("$@")
[ "${#modes[@]}" -gt 0 ] || modes=(plain fast dedicated:12:4 window:12 small shared)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for mode in "${modes[@]}"; do
  if [ "$mode" = plain ]; then sargs=(); cargs=(); else sargs=(--deflate --deflate-mode "$mode"); cargs=(--deflate); fi
  port=$(free_port)
  taskset -c 0 "$B/echo" --plain --workers 1 --addr "127.0.0.1:$port" "${sargs[@]}" >/dev/null 2>&1 & spid=$!
  sleep 0.5
  idle=$(taskset -c 1 "$B/loadgen" idle --url "ws://127.0.0.1:$port/" --conns 10000 --hold 12 \
    --message 1024 "${cargs[@]}" --server-pid "$spid")
  kill "$spid"; wait "$spid" 2>/dev/null || true
  port=$(free_port)
  taskset -c 0 "$B/echo" --plain --workers 1 --addr "127.0.0.1:$port" "${sargs[@]}" >/dev/null 2>&1 & spid=$!
  sleep 0.5
  cpu=""
  for size in 128 1024 16384; do
    r=$(taskset -c 1 "$B/loadgen" echo --url "ws://127.0.0.1:$port/" --conns 100 --size "$size" \
      --duration 5 --corpus "${cargs[@]}" --server-pid "$spid")
    cpu="$cpu $size:$(echo "$r" | grep -o '"server_cpu_us_per_msg": [0-9.]*' | cut -d' ' -f2)us(errors $(echo "$r" | grep -o '"errors": [0-9]*' | cut -d' ' -f2))"
  done
  kill "$spid"; wait "$spid" 2>/dev/null || true
  echo "$mode | idle: $(echo "$idle" | grep -o '"kib_per_conn": [0-9.]*') | cpu per message:$cpu"
done
