#!/usr/bin/env bash
# tests/test_law_summary.sh — scripts/law-summary.sh, the part of `make quickstart`'s summary that
# says which constants of the law are held and why (issue 20). Input: tests/fixtures/fit-quickstart.json,
# `qat fit --json` of a quickstart run (B and E not identified, quant_L, sparse_L, sparse_C at the
# published values), and variants of it made here: nothing held, and a constant held by --fix.
# Usage: test_law_summary.sh SOURCE_ROOT
set -uo pipefail
root=${1:?usage: test_law_summary.sh SOURCE_ROOT}
sum="$root/scripts/law-summary.sh"
fix="$root/tests/fixtures/fit-quickstart.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
has() { # has OUTPUT TEXT: TEXT must be in OUTPUT
  if ! grep -qF -- "$2" <<<"$1"; then echo "FAIL: missing: $2"; echo "--- output:"; echo "$1"; fails=$((fails + 1)); fi
}
hasnt() {
  if grep -qF -- "$2" <<<"$1"; then echo "FAIL: unexpected: $2"; echo "--- output:"; echo "$1"; fails=$((fails + 1)); fi
}

# 1. The quickstart: B and E held as not identified, next to the fitted constants' intervals.
out=$(bash "$sum" "$fix"); rc=$?
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fails=$((fails + 1)); }
has "$out" "A 4.17 [3.14–7.38]"
has "$out" "β 0.631 [0.629–0.649]"
has "$out" "B 4.51e+03 (held, not identified)"
has "$out" "E 0.825 (held, not identified)"
has "$out" "B = 4507 (toward +inf), E = 0.8252 (toward 0): not identified."
has "$out" "the data term B·D^-β + E is not measured by these token budgets"
has "$out" "every interval above (ρ included) is conditional"
has "$out" "quant_L = 1: published Llama/C4 value, since the quant formats show 2 distinct GMSE values"
has "$out" "sparse_L = 1, sparse_C = 1.39: published Llama/C4 value, since the sparse formats show 1 distinct"
hasnt "$out" "none held"
has "$(bash "$sum" --names "$fix")" "B, E, quant_L, sparse_L, sparse_C"

# 1b. A constant the fit finds as good either way says so, not a bound it did not run to.
sed -e 's/E = 0.8252 ran toward its bound 0: the fit is as good (within the runs. noise) with E held at 0.0008252, 1000 times smaller, so the runs do not determine it/E = 0.8252 is not determined either way: the fit is as good (within the runs'"'"' noise) with E held 1000 times smaller (0.0008252) or 1000 times larger (825.2)/' "$fix" > "$tmp/either.json"
grep -q "not determined either way" "$tmp/either.json" || { echo "FAIL: either.json not made"; fails=$((fails + 1)); }
out=$(bash "$sum" "$tmp/either.json")
has "$out" "B = 4507 (toward +inf), E = 0.8252 (either way): not identified."

# 1c. A constant the fit drove to its bound 0 says it sits there.
sed -e 's/E = 0.8252 ran toward its bound 0: the fit is as good (within the runs. noise) with E held at 0.0008252, 1000 times smaller, so the runs do not determine it/E = 0 sits at its bound 0: the fit drove it there (below 1e-100), so these runs show no need for it and do not determine its value/' "$fix" > "$tmp/zero.json"
grep -q "sits at its bound 0" "$tmp/zero.json" || { echo "FAIL: zero.json not made"; fails=$((fails + 1)); }
has "$(bash "$sum" "$tmp/zero.json")" "E = 0.8252 (at 0): not identified."

# 2. Nothing held: every constant with its interval, and the summary says so.
sed -e 's/"fixed": {.*}, "rmse_log"/"fixed": {}, "rmse_log"/' \
    -e 's/"B": \[[^]]*\]/"B": [1000, 9000]/' -e 's/"E": \[[^]]*\]/"E": [0.7, 0.9]/' "$fix" > "$tmp/free.json"
out=$(bash "$sum" "$tmp/free.json")
has "$out" "B 4.51e+03 [1e+03–9e+03]"
has "$out" "E 0.825 [0.7–0.9]"
has "$out" "Every constant is fitted from the runs, none held."
hasnt "$out" "not identified"
[ -z "$(bash "$sum" --names "$tmp/free.json")" ] || { echo "FAIL: --names of nothing held"; fails=$((fails + 1)); }

# 3. A constant held by --fix says so, and is not called "not identified".
sed -e 's/"fixed": {.*}, "rmse_log"/"fixed": {"alpha": {"value": 0.3, "by": "user"}}, "rmse_log"/' "$fix" > "$tmp/user.json"
out=$(bash "$sum" "$tmp/user.json")
has "$out" "α 0.209 (held by --fix)"
has "$out" "alpha = 0.3: held by --fix"
hasnt "$out" "not identified"

# 3b. Fewer than 20 usable resamples: qat fit gives no intervals ("ci": {}) and says how many were
# used; the summary says so instead of promising intervals.
sed -e 's/"ci": {[^}]*}/"ci": {}/' -e 's/}$/, "bootstrap": {"drawn": 20, "used": 14}}/' "$fix" > "$tmp/few.json"
out=$(bash "$sum" "$tmp/few.json")
has "$out" "no intervals: only 14 of 20 bootstrap resamples were usable, fewer than the 20 a 95% interval needs:"
has "$out" "A 4.17   α 0.209"
hasnt "$out" "with 95% intervals"
has "$(bash "$sum" "$fix")" "with 95% intervals:"

# 4. Errors: an unreadable file is exit 1 naming it, a file that is not a fit's JSON exit 2.
err=$(bash "$sum" "$tmp/missing.json" 2>&1); rc=$?
[ $rc -eq 1 ] || { echo "FAIL: missing file: exit $rc"; fails=$((fails + 1)); }
has "$err" "$tmp/missing.json: cannot read"
echo '{"law": "unified"}' > "$tmp/bad.json"
err=$(bash "$sum" "$tmp/bad.json" 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "FAIL: not a fit: exit $rc"; fails=$((fails + 1)); }
has "$err" "not qat fit --json output"

# 5. Usage errors are exit 2 (as qat's), never 1 (an I/O failure's): no argument, --names alone,
# two files, an unknown option.
for args in "" "--names" "$fix $fix" "--bogus $fix"; do
  # shellcheck disable=SC2086 # the words are the arguments
  err=$(bash "$sum" $args 2>&1); rc=$?
  [ $rc -eq 2 ] || { echo "FAIL: usage error '$args': exit $rc"; fails=$((fails + 1)); }
  has "$err" "usage: law-summary.sh [--names] FIT.json"
done

[ $fails -eq 0 ] && echo "ok: law-summary.sh" || echo "$fails failure(s)"
exit $((fails > 0))
