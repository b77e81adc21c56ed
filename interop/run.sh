#!/usr/bin/env bash
# Interop with real, independent peers. Installs every peer itself (fresh machine):
#   Debian: chromium, golang-go, golang-github-gorilla-websocket-dev, openssl
#   PyPI:   websockets (pinned, in interop/.venv)
#   npm:    ws, playwright-core (pinned by package-lock.json, in interop/node)
# then builds the examples and runs interop/run.py. A peer that cannot be installed
# fails the run with a message saying which.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
die() { echo "interop: $*" >&2; exit 2; }

apt_pkgs=()
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
command -v go >/dev/null 2>&1 || apt_pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || apt_pkgs+=(golang-github-gorilla-websocket-dev)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  echo "interop: installing ${apt_pkgs[*]} from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null \
    || die "could not install ${apt_pkgs[*]}"
fi
command -v chromium >/dev/null 2>&1 || die "chromium is not installed"
command -v go >/dev/null 2>&1 || die "go is not installed"

if ! "$HERE/.venv/bin/python" -c "import websockets" 2>/dev/null; then
  python3 -m venv "$HERE/.venv" || die "python3 -m venv failed"
  "$HERE/.venv/bin/pip" install -q --disable-pip-version-check "websockets==17.4" \
    || die "could not install websockets from PyPI"
fi
(cd "$HERE/node" && npm ci --no-audit --no-fund --silent) || die "npm ci (ws, playwright-core) failed"

mkdir -p "$HERE/.bin"
GO111MODULE=off GOPATH="/usr/share/gocode:$HERE/go" GOCACHE="$HERE/.gocache" \
  go build -o "$HERE/.bin/peer-go" peer || die "building the gorilla/websocket peer failed"

(cd "$ROOT" && cargo build --release --features json,tls,deflate --example echo --example push --example ticker \
  --example interop_client --example echo_blocking --example stream_echo_blocking --example control_blocking)
exec "$HERE/.venv/bin/python" "$HERE/run.py"
