#!/usr/bin/env bash
# scripts/law-summary.sh FIT.json — the five constants of a fitted law in plain words, for the
# quickstart's summary: each with its 95% interval, or held and why. FIT.json is `qat fit --json`
# output ("params", "ci", "fixed"; docs/cli.md). A constant the runs cannot determine is held
# (docs/scaling-laws.md, rules 3 and 5): it has no interval, and the intervals of the others,
# the capacities ρ included, are conditional on it, since the bootstrap does not vary it. A
# reader of the ρ table must see that next to it, not only in fit.txt's notes (issue 20).
# `law-summary.sh --names FIT.json` prints only the held constants' names ("B, E"; "" if none).
# Shell and sed only: Python is no runtime dependency of qat.
set -euo pipefail
# A usage error is exit 2, as qat's own (docs/cli.md, "Exit status and errors"); ${1:?} exited 1,
# the status of an I/O failure, for a missing argument.
usage() { echo "law-summary.sh: $1; usage: law-summary.sh [--names] FIT.json" >&2; exit 2; }
names_only=0
[ "${1:-}" = --names ] && { names_only=1; shift; }
[ $# -ge 1 ] || usage "no FIT.json given"
[ $# -eq 1 ] || usage "one FIT.json only (got $# arguments)"
case $1 in -?*) usage "unknown option '$1'" ;; esac
json=$1
[ -r "$json" ] || { echo "law-summary.sh: $json: cannot read" >&2; exit 1; }
grep -q '"params": {' "$json" || { echo "law-summary.sh: $json: not qat fit --json output (no \"params\")" >&2; exit 2; }

# The held constants, one per line: NAME<TAB>VALUE<TAB>BY<TAB>WHY (WHY empty for --fix).
fixed=$(grep -o '"fixed": {.*' "$json" |
  grep -oE '"[^"]+": \{"value": [^,}]+, "by": "(rule|user)"(, "why": "([^"\\]|\\.)*")?\}' |
  sed -E 's/^"([^"]+)": \{"value": ([^,}]+), "by": "([a-z]+)"(, "why": "(.*)")?\}$/\1\t\2\t\3\t\5/' |
  sed 's/\\"/"/g; s/\\\\/\\/g' || true)
value() { grep -o '"params": {[^}]*}' "$json" | grep -o "\"$1\": [^,}]*" | sed 's/.*: //'; }
ci() { grep -o '"ci": {[^}]*}' "$json" | grep -o "\"$1\": \[[^]]*\]" | sed 's/.*\[\(.*\), \(.*\)\]/\1 \2/'; }
if [ $names_only = 1 ]; then
  [ -n "$fixed" ] && printf '%s\n' "$fixed" | cut -f1 | paste -sd, - | sed 's/,/, /g'
  exit 0
fi
held() { [ -n "$fixed" ] && printf '%s\n' "$fixed" | awk -F'\t' -v k="$1" '$1 == k { print $3; f = 1 } END { exit !f }'; }
g3() { awk -v x="$1" 'BEGIN { printf "%.3g", x }'; }

line="  "
for k in A alpha B beta E; do
  sym=$k; [ "$k" = alpha ] && sym=α; [ "$k" = beta ] && sym=β
  v=$(value "$k")
  if by=$(held "$k"); then
    [ "$by" = user ] && how="held by --fix" || how="held, not identified"
    line+="$sym $(g3 "$v") ($how)   "
  elif [ -n "$(ci "$k")" ]; then
    line+="$sym $(g3 "$v") [$(ci "$k" | awk '{ printf "%.3g–%.3g", $1, $2 }')]   "
  else
    line+="$sym $(g3 "$v")   "
  fi
done
# The intervals rest on the bootstrap resamples used ("bootstrap": {"drawn", "used"}); below 20
# used, qat fit gives none ("ci": {}) and this says why rather than promising intervals.
drawn=$(grep -o '"bootstrap": {"drawn": [0-9]*' "$json" | grep -o '[0-9]*$' || true)
used=$(grep -o '"bootstrap": {"drawn": [0-9]*, "used": [0-9]*' "$json" | grep -o '[0-9]*$' || true)
with="with 95% intervals:"
if grep -q '"ci": {}' "$json"; then
  if [ -n "$drawn" ] && [ "$drawn" -gt 0 ]; then
    with="no intervals: only ${used:-?} of $drawn bootstrap resamples were usable, fewer than the 20 a 95% interval needs:"
  else
    with="no intervals (fitted without --bootstrap):"
  fi
fi
echo "The law L = A·(N·ρ)^-α + B·D^-β + E (L in nats/token, N parameters, D tokens), $with"
echo "${line%   }"

if [ -z "$fixed" ]; then
  echo "Every constant is fitted from the runs, none held."
  exit 0
fi
echo "Held, not fitted: these have no interval, and every interval above (ρ included) is conditional"
echo "on them, since the bootstrap does not vary them."
cap='^(quant|sparse|vq)_[LFC]$'
# Constants of the law itself (A ... E, decoupled effs) that the runs do not determine (rule 5).
# Each with the bound it ran toward, as the fit's reason ("why") names it: "ran toward its bound +inf",
# "sits at its bound 0" when the fit drove it there, or "not determined either way" when it is as
# good 1000 times smaller and larger from where it sits.
names=$(printf '%s\n' "$fixed" | awk -F'\t' -v c="$cap" '$3 == "rule" && $1 !~ c {
    dir = ""
    if (match($4, /ran toward its bound [^:]*/)) dir = " (toward " substr($4, RSTART + 21, RLENGTH - 21) ")"
    else if ($4 ~ /sits at its bound 0/) dir = " (at 0)"
    else if ($4 ~ /not determined either way/) dir = " (either way)"
    printf "%s%s = %.4g%s", n++ ? ", " : "", $1, $2, dir }')
if [ -n "$names" ]; then
  echo "  $names: not identified. The fit is as good with each held 1000 times"
  echo "    further toward that bound (or either way), so it is held where the fit put it and means nothing on its own."
  if printf '%s\n' "$fixed" | awk -F'\t' '$3 == "rule" && ($1 == "B" || $1 == "beta" || $1 == "E") { f = 1 } END { exit !f }'; then
    echo "    So the data term B·D^-β + E is not measured by these token budgets: measuring it takes runs"
    echo "    at more token budgets, further apart. The capacities come from the N term."
  fi
fi
# Capacity constants at the published Llama/C4 values (rules 3 and 5), grouped by reason.
printf '%s\n' "$fixed" | awk -F'\t' -v c="$cap" '$3 == "rule" && $1 ~ c {
    if (!($4 in seen)) { order[n++] = $4; seen[$4] = "" }
    seen[$4] = seen[$4] (seen[$4] == "" ? "" : ", ") sprintf("%s = %.4g", $1, $2)
  } END { for (i = 0; i < n; i++) printf "  %s: published Llama/C4 value, since %s\n", seen[order[i]], order[i] }'
printf '%s\n' "$fixed" | awk -F'\t' '$3 == "user" { printf "  %s = %.4g: held by --fix\n", $1, $2 }'
