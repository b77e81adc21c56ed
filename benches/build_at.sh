#!/usr/bin/env bash
# Builds the binaries the benchmark scripts compare, from one commit, into DIR:
#
#   benches/build_at.sh REV DIR        REV: a commit, a branch, or "worktree" (the
#                                      checkout as it is, uncommitted changes included)
#
# DIR gets `echo` (default features), `echo_deflate` (--features deflate),
# `echo_tls` (--features tls), `push` (--features deflate,json, for commits that
# have examples/push) and `loadgen` (--features deflate,tls; without tls for
# commits older than the tls feature). PLUS=FEATURES adds features to the `echo`
# and `echo_deflate` builds (PLUS=handover: the cost of a feature compiled in). A
# commit is built in a temporary git
# worktree with its own Cargo.lock; commits share target/bench-builds so a second
# build of nearby commits is quick (a fresh checkout is newer than any artifact,
# so each commit is rebuilt); the checkout builds in target/bench-builds-worktree
# (sharing would let cargo find its older sources fresh against an artifact a
# commit just overwrote, and copy that commit's binary). Used by before_after.sh,
# idle.sh, tls.sh, fanout.sh:
#
#   benches/build_at.sh 3b8c4b9 target/bench/before && benches/build_at.sh worktree target/bench/after
#   benches/before_after.sh target/bench/before target/bench/after
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REV=${1:?"usage: build_at.sh REV|worktree DIR"} OUT=${2:?"usage: build_at.sh REV|worktree DIR"}
TARGET="$ROOT/target/bench-builds"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [ "$REV" = worktree ]; then
  SRC="$ROOT"
  # Its own target directory: the commits below build the same package from
  # other directories with the same artifact names, and cargo would find the
  # checkout's (older) sources fresh against an artifact a commit just
  # overwrote, and copy that commit's binary.
  TARGET="$ROOT/target/bench-builds-worktree"
else
  WT="$(mktemp -d)"
  trap 'git -C "$ROOT" worktree remove --force "$WT/src" >/dev/null 2>&1 || true; rm -rf "$WT"' EXIT
  git -C "$ROOT" worktree add --quiet --detach "$WT/src" "$REV"
  SRC="$WT/src"
fi
build() { # features example dest
  (cd "$SRC" && CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release ${1:+--features "$1"} --example "$2")
  cp "$TARGET/release/examples/$2" "$OUT/$3"
}
PLUS=${PLUS:-}
build "$PLUS" echo echo
build "deflate${PLUS:+,$PLUS}" echo echo_deflate
if [ -d "$SRC/examples/push" ] && grep -q '^json = ' "$SRC/Cargo.toml"; then
  build deflate,json push push
fi
if grep -q '^tls = ' "$SRC/Cargo.toml"; then
  build tls echo echo_tls
  build deflate,tls loadgen loadgen
else
  build deflate loadgen loadgen
fi
(cd "$SRC" && git rev-parse --short HEAD && git status --short | head -5) > "$OUT/REV"
echo "build_at.sh: $REV -> $OUT ($(ls "$OUT" | tr '\n' ' '))"
