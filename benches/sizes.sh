#!/usr/bin/env bash
# A minimal server's footprint: stripped binary size of examples/minimal_echo (event
# loop) and examples/minimal_echo_blocking (thread per connection), built with a
# size-minded release profile (fat LTO, one codegen unit, panic = abort), for
# x86_64 (glibc, dynamic) and aarch64 (musl, static, rust-lld); then their memory on
# x86_64: VmRSS right after start and with 1,000 idle connections held by
# `loadgen idle` (ROUNDS runs each).
#
#   benches/sizes.sh [ROUNDS=3]        (aarch64: the target and binutils from
#                                       embedded/run.sh, installed if missing)
#   YARDSTICK=DIR benches/sizes.sh      adds the performance yardstick's tungstenite
#                                       echo (copied to target/sizes/yardstick and
#                                       built with its own release profile; x86_64)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
ROUNDS=${1:-3}
PROFILE=(--config 'profile.release.lto="fat"' --config profile.release.codegen-units=1
  --config 'profile.release.panic="abort"')
export CARGO_TARGET_DIR="$ROOT/target/sizes"
# Examples build the dev-dependencies too (ring, in rcgen): C for aarch64 comes from
# Debian's cross gcc, as in embedded/run.sh.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || {
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu >/dev/null
}
rustup target list --installed | grep -qx aarch64-unknown-linux-musl \
  || rustup target add aarch64-unknown-linux-musl >/dev/null
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
echo "| program | x86_64 (bytes) | aarch64 musl static (bytes) |"
echo "|---|---|---|"
host=$(rustc -vV | sed -n 's/^host: //p')
for t in "$host" aarch64-unknown-linux-musl; do
  cargo build --quiet --release --target "$t" --example minimal_echo --example minimal_echo_blocking "${PROFILE[@]}"
done
cargo build --quiet --release --features deflate --example loadgen
TUNGSTENITE=
if [ -n "${YARDSTICK:-}" ]; then
  Y="$CARGO_TARGET_DIR/yardstick"
  [ -f "$Y/Cargo.toml" ] || { mkdir -p "$Y"; cp -r "$YARDSTICK"/. "$Y"/; chmod -R u+w "$Y"; }
  (cd "$Y" && CARGO_TARGET_DIR="$Y/target" cargo build --quiet --release -p tungstenite-echo)
  TUNGSTENITE="$Y/target/release/tungstenite-echo"
fi
size_of() { # target strip-tool example
  local f; f=$(mktemp)
  cp "$CARGO_TARGET_DIR/$1/release/examples/$3" "$f"
  "$2" "$f"
  stat -c %s "$f"
  rm -f "$f"
}
for ex in minimal_echo minimal_echo_blocking; do
  echo "| $ex | $(size_of "$host" strip $ex) | $(size_of aarch64-unknown-linux-musl aarch64-linux-gnu-strip $ex) |"
done
[ -n "$TUNGSTENITE" ] && echo "| tungstenite-echo (yardstick) | $(f=$(mktemp); cp "$TUNGSTENITE" "$f"; strip "$f"; stat -c %s "$f"; rm -f "$f") | |"
echo
echo "| program | RSS at start (KiB) | RSS with 1,000 idle (KiB) | per connection (KiB) |"
echo "|---|---|---|---|"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
measure() { # name command...
  local name=$1 starts=() holds=() pers=()
  shift
  for _ in $(seq 1 "$ROUNDS"); do
    PORT=$((PORT + 1))
    taskset -c 0 "$@" "$PORT" >/dev/null 2>&1 &
    SERVER_PID=$!
    sleep 0.5
    starts+=("$(rss $SERVER_PID)")
    local js
    js=$(taskset -c 1 "$CARGO_TARGET_DIR/release/examples/loadgen" idle --url "ws://127.0.0.1:$PORT/" \
      --conns 1000 --hold 3 --server-pid $SERVER_PID 2>/dev/null | tail -1)
    holds+=("$(echo "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rss_after_kib"])')")
    pers+=("$(echo "$js" | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["kib_per_conn"])')")
    stop_server
  done
  local IFS=/
  echo "| $name | ${starts[*]} | ${holds[*]} | ${pers[*]} |"
}
measure minimal_echo "$CARGO_TARGET_DIR/$host/release/examples/minimal_echo"
measure minimal_echo_blocking "$CARGO_TARGET_DIR/$host/release/examples/minimal_echo_blocking"
[ -n "$TUNGSTENITE" ] && measure "tungstenite-echo (yardstick)" "$TUNGSTENITE"
exit 0
