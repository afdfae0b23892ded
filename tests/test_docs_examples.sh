#!/usr/bin/env bash
# tests/test_docs_examples.sh — every YAML example in README.md and docs/ loads as written.
# A user copies them first; README's sweep once asked for train.tokens_per_param over a base
# that sets train.tokens, which qat rightly refuses ("has no effect"), so the example was a
# dead end. Each ```yaml block is written next to a copy of configs/ (a sweep's base path is
# relative to the sweep file) and checked without training: a block with a top-level `grid:`
# by `qat sweep --dry-run`, any other by `qat train --print-config`. README's run names are
# checked against the dry run's list, so the prose keeps up with the example.
# Usage: test_docs_examples.sh QAT SOURCE_ROOT
set -uo pipefail
qat=${1:?usage: test_docs_examples.sh QAT SOURCE_ROOT}
src=${2:?usage: test_docs_examples.sh QAT SOURCE_ROOT}
fails=0 n=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/configs" "$tmp/configs"
for doc in "$src/README.md" "$src"/docs/*.md; do
  # one file per ```yaml block: NAME-LINE.yaml
  awk -v dir="$tmp" -v name="$(basename "$doc" .md)" '
    /^```yaml/ { out = sprintf("%s/%s-%d.yaml", dir, name, NR); next }
    /^```/ && out { close(out); out = ""; next }
    out { print > out }' "$doc"
done
cd "$tmp" || exit 1
for f in *.yaml; do
  n=$((n + 1))
  if grep -q '^grid:' "$f"; then
    out=$("$qat" sweep "$f" --dry-run 2>&1); rc=$?
  else
    out=$("$qat" train "$f" --print-config 2>&1); rc=$?
  fi
  if [ $rc -ne 0 ]; then
    echo "FAIL: $f (the block after line $(basename "${f##*-}" .yaml)): exit $rc"; echo "$out" | head -5; fails=$((fails + 1))
    continue
  fi
  # README's sweep: the run name its prose gives must be one the sweep makes
  if [[ $f == README-* ]] && grep -q '^grid:' "$f"; then
    want=$(grep -o 'Run names come from [^(]*(`[^`]*`)' "$src/README.md" | sed 's/.*(`\(.*\)`)/\1/')
    if [ -z "$want" ] || ! grep -qw -- "$want" <<<"$out"; then
      echo "FAIL: README's example run name '$want' is not among the sweep's runs:"; echo "$out" | head -8
      fails=$((fails + 1))
    fi
  fi
done
if [ $n -lt 3 ]; then echo "FAIL: found $n yaml blocks in README.md and docs/ (expected at least 3)"; fails=$((fails + 1)); fi
echo "$((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
