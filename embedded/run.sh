#!/usr/bin/env bash
# The library and its tests on the ARM boards embedded users deploy to, under
# emulation: aarch64-unknown-linux-musl (static, linked with rust-lld) and
# armv7-unknown-linux-gnueabihf (Debian's cross toolchain; the musleabihf standard
# library is not downloadable from this machine's Rust mirror), the test suite run
# through Debian's qemu-user. Installs what it needs (apt: qemu-user,
# gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf; rustup targets).
#   embedded/run.sh            default-feature test suite on aarch64 (the protocol
#                              core's tests on armv7), then on aarch64 the
#                              library's and the json/tls tests with those features
#   embedded/run.sh --core     (CI) the protocol core, smoltcp and blocking tests on
#                              aarch64 instead of the whole suite, then the same
#                              feature tests
#   embedded/run.sh --quick    the protocol core only (lib, core, connection, handshake)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "embedded: $*" >&2; exit 2; }

pkgs=()
command -v qemu-aarch64 >/dev/null 2>&1 || pkgs+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || pkgs+=(gcc-aarch64-linux-gnu)
command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || pkgs+=(gcc-arm-linux-gnueabihf)
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "embedded: installing ${pkgs[*]} from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null \
    || die "could not install ${pkgs[*]}"
fi
for t in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t" >/dev/null \
    || die "rustup target add $t failed"
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cross}"
# aarch64, static musl: rust-lld links with the C runtime Rust ships for musl; C
# code (ring, under the tls feature and in the tests' certificate generator) is
# compiled by Debian's aarch64 gcc.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=qemu-aarch64
# armv7 hard-float, glibc: Debian's cross gcc links; qemu finds the ARM libc there.
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf"

# --quick: the protocol core only, on both targets, nothing with features.
# --core (CI, for its time budget): the protocol core, the smoltcp tests and the
# blocking layer on aarch64 (the event loop's files are the same code on every
# target and take minutes under qemu), then the features' library tests and the
# json and tls files. No flag: the whole suite on aarch64.
case "${1:-}" in
  --quick) sel=(--lib --test core_decoder --test connection --test handshake) ;;
  --core) sel=(--lib --test core_decoder --test connection --test handshake --test smoltcp --test blocking) ;;
  *) sel=(--lib --tests) ;;
esac
for t in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
  echo "== $t: library build with every feature" >&2
  cargo build -p silverback --target "$t" --lib --all-features
  # The whole suite on aarch64; on armv7 the protocol core (lib, core,
  # connection, handshake): the IO layers are the same code on both, and CI's
  # time is bounded.
  t_sel=("${sel[@]}")
  if [ "$t" = armv7-unknown-linux-gnueabihf ]; then
    t_sel=(--lib --test core_decoder --test connection --test handshake)
  fi
  echo "== $t: tests under qemu (${t_sel[*]})" >&2
  cargo test -p silverback --target "$t" "${t_sel[@]}"
done
if [ "${1:-}" != "--quick" ]; then
  # The library's own tests with the features (the compressor's and the TLS
  # driver's unit tests among them) and the json and tls test files; the deflate
  # test file (its round trips take about 5 minutes under qemu) runs natively in
  # CI's feature step.
  echo "== aarch64-unknown-linux-musl: lib, json and tls tests with deflate,json,tls under qemu" >&2
  cargo test -p silverback --target aarch64-unknown-linux-musl --features deflate,json,tls \
    --lib --test json --test tls
fi
echo "embedded: OK"
