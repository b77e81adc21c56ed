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

FEATURES=()
for a in "$@"; do
  if [ "$a" = "--deflate" ]; then FEATURES=(--features deflate); fi
done
echo "autobahn: building the test programs (release${FEATURES:+, ${FEATURES[*]}})" >&2
(cd "$ROOT" && cargo build --release ${FEATURES[@]+"${FEATURES[@]}"} --example autobahn_server --example autobahn_client)

RESULTS=()
case " $* " in
  *" --results "*) ;;
  *" --deflate "*) RESULTS=(--results "$HERE/RESULTS-deflate.md") ;;
  *) RESULTS=(--results "$HERE/RESULTS.md") ;;
esac
exec "$VENV/bin/python" "$HERE/harness.py" --kosoku "$VENV/bin/kosoku" ${RESULTS[@]+"${RESULTS[@]}"} "$@"
