#!/usr/bin/env bash
# Autobahn conformance for silverback, one command, on a fresh machine:
#   autobahn/run.sh [harness options]     (see: autobahn/run.sh --help)
# Creates autobahn/.venv with kosoku (pinned), builds the test programs in release
# mode, runs the four targets with the wire validator, prints one line per case
# group and target, and regenerates autobahn/RESULTS.md. Reports land in
# autobahn/reports/ (git-ignored). Exit 0 = every target clean.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
KOSOKU_VERSION=0.1.0
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kosoku') != '$KOSOKU_VERSION')" 2>/dev/null; then
  echo "autobahn: creating $VENV with kosoku==$KOSOKU_VERSION" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi

FEATS=()
for a in "$@"; do
  if [ "$a" = "--deflate" ]; then FEATS+=(deflate); fi
  if [ "$a" = "--tls" ]; then FEATS+=(tls); fi
done
FEATURES=()
if [ "${#FEATS[@]}" -gt 0 ]; then FEATURES=(--features "$(IFS=,; echo "${FEATS[*]}")"); fi
if [[ " ${FEATS[*]-} " == *" tls "* ]]; then
  command -v openssl >/dev/null 2>&1 || { echo "autobahn: --tls needs openssl (Debian package openssl)" >&2; exit 2; }
fi
echo "autobahn: building the test programs (release${FEATURES:+, ${FEATURES[*]}})" >&2
(cd "$ROOT" && cargo build --release ${FEATURES[@]+"${FEATURES[@]}"} --example autobahn_server --example autobahn_client)

RESULTS=()
case " $* " in
  *" --results "*) ;;
  *" --tls "*) RESULTS=(--results "$HERE/RESULTS-tls.md") ;;
  *" --deflate "*) RESULTS=(--results "$HERE/RESULTS-deflate.md") ;;
  *) RESULTS=(--results "$HERE/RESULTS.md") ;;
esac
exec "$VENV/bin/python" "$HERE/harness.py" --kosoku "$VENV/bin/kosoku" ${RESULTS[@]+"${RESULTS[@]}"} "$@"
