#!/usr/bin/env bash
# The protocol core on a microcontroller: builds the Cortex-M4 programs of
# embedded/cortex-m4 (`--release`, opt-level "s", LTO) and prints their flash and
# RAM (.text, .data, .bss) beside the same client on embedded-websocket and the
# TCP-only baseline, then runs the self-test on QEMU's MPS2-AN386 board (Cortex-M4):
# a client and a server connection through smoltcp's loopback device, with the heap
# a connection uses. Also builds the library itself with --no-default-features for
# thumbv7em-none-eabihf and riscv32imc-unknown-none-elf. Installs what it needs
# (rustup targets and llvm-tools; apt: qemu-system-arm).
#   embedded/sizes.sh            all of it; exits non-zero if a build or the self-test fails
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "sizes: $*" >&2; exit 2; }

for t in thumbv7em-none-eabihf riscv32imc-unknown-none-elf; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t" >/dev/null \
    || die "rustup target add $t failed"
done
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools >/dev/null \
  || die "rustup component add llvm-tools failed"
SIZE="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size"
[ -x "$SIZE" ] || die "llvm-size not found at $SIZE"
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  echo "sizes: installing qemu-system-arm from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-system-arm >/dev/null \
    || die "could not install qemu-system-arm (Debian package qemu-system-arm)"
fi

echo "== the library without std (--no-default-features)"
for t in thumbv7em-none-eabihf riscv32imc-unknown-none-elf; do
  cargo build -q -p silverback --lib --no-default-features --target "$t"
  cargo build -q -p silverback --lib --no-default-features --features raw --target "$t"
  echo "$t: OK"
done

echo "== Cortex-M4 programs (thumbv7em-none-eabihf, opt-level s, LTO)"
cd embedded/cortex-m4
cargo build -q --release --bins --locked
bin=target/thumbv7em-none-eabihf/release
# Berkeley format: text = code + read-only data + vector table (all in flash);
# flash = text + data, static RAM = data + bss (the heap arena is in .bss).
printf '| program | text | .data | .bss (32 KiB heap arena included) | flash (text + .data) | flash above tcp_only (the WebSocket layer) |\n|---|---:|---:|---:|---:|---:|\n'
base=$("$SIZE" "$bin/tcp_only" | awk 'NR==2{print $1 + $2}')
for p in tcp_only silverback_client embedded_websocket_client; do
  read -r text data bss < <("$SIZE" "$bin/$p" | awk 'NR==2{print $1, $2, $3}')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$p" "$text" "$data" "$bss" "$((text + data))" "$((text + data - base))"
done

echo "== self-test on QEMU mps2-an386 (Cortex-M4)"
timeout 300 cargo run -q --release --bin selftest --locked \
  || die "the self-test failed (or hung: panic-halt stops the board)"
