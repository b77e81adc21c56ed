#!/usr/bin/env bash
# What wss:// costs on the event loop: server CPU per echoed message, plain against
# TLS, of one build, in one run (interleaved rounds; server on CPU 0, the build's own
# loadgen, which speaks TLS through the same crate, on CPU 1; 100 connections).
#
#   benches/tls.sh DIR [ROUNDS=3] [SECS=4]       (DIR from benches/build_at.sh)
#
# TLS 1.3 with a self-signed ECDSA P-256 certificate made by the server at start
# (echo --tls-self-signed). Memory per idle wss:// connection: benches/idle.sh (tls).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
D=${1:?build dir} ROUNDS=${2:-3} SECS=${3:-4}
[ -x "$D/echo_tls" ] || { echo "tls.sh: $D has no echo_tls (build it with benches/build_at.sh)" >&2; exit 2; }
CELLS=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
  for size in 20 1024 65536; do
    echo_cell plain "$D/loadgen" "$D/echo" "" $size ""
    echo_cell tls "$D/loadgen" "$D/echo_tls" "--tls-self-signed" $size "" wss
  done
done
summarize
rm -f "$CELLS"
