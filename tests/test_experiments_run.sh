#!/usr/bin/env bash
# tests/test_experiments_run.sh — experiments/run.sh's arguments, with a fake qat that only records
# its calls (nothing trains; under a second). Every name is checked before anything runs: a typo
# after a valid name (`run.sh a typo`) used to be found only once a's sweeps, hours of them, had
# run. `long` stands for c3 e4 g4 h i wherever it is given: `run.sh a long` ran a, then called
# 'long' an unknown experiment in a message that listed it as valid.
# With QAT (the real binary) the run counts the READMEs state are checked too: each sweep the
# fake is asked to run is counted by `qat sweep --dry-run` (a few seconds). h's page said 58 runs
# where its three sweeps are 54, and the make targets' table ≈ 450 and ≈ 200 for 379 and 218.
# Usage: test_experiments_run.sh SOURCE_ROOT [QAT]
set -uo pipefail
root=$(realpath "${1:?usage: test_experiments_run.sh SOURCE_ROOT [QAT]}")
real=${2:+$(realpath "$2")}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qat_test_experiments_run_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The fake records each call; for `fit --csv F` it writes F's header, as the real one would, so that
# i's post-training step reads a CSV of no runs.
cat > "$tmp/qat" <<'FAKE'
#!/usr/bin/env bash
echo "$*" >> "$FAKEQAT_LOG"
if [ "$1" = sweep ] && [ -n "${FAKEQAT_REAL:-}" ]; then   # how many runs the real one would run
  out=$("$FAKEQAT_REAL" sweep "$2" --dry-run 2>&1)
  n=$(sed -nE '1s/^qat sweep .*: ([0-9]+) runs?, out .*/\1/p; s/.*no run of the sweep is valid; the errors of its ([0-9]+) runs?:.*/\1/p' <<<"$out")
  echo "$2 ${n:-?}" >> "$FAKEQAT_COUNTS"
fi
prev=
for a in "$@"; do [ "$prev" = --csv ] && echo "N,D,loss,format,act_format,grad_format,rho,eff_d,pred,resid_log,origin" > "$a"; prev=$a; done
exit 0
FAKE
chmod +x "$tmp/qat"
# run.sh is run from a scratch directory: the paths it names are relative (the repository root in
# real use), and what it writes beside the runs (h's quartet.txt, i's ptq.csv) lands here.
mkdir -p "$tmp/cwd/runs/experiments/h-backward" "$tmp/cwd/runs/experiments/i-data-axis"
export FAKEQAT_LOG="$tmp/calls.log"
run() { # run ARGS...: sets rc, out, err, calls
  : > "$FAKEQAT_LOG"
  (cd "$tmp/cwd" && QAT="$tmp/qat" "$root/experiments/run.sh" "$@" > "$tmp/out" 2> "$tmp/err"); rc=$?
  out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); calls=$(wc -l < "$FAKEQAT_LOG")
}
valid="a b c c3 d e e4 f g g4 h i long"

# An unknown name anywhere: exit 2, one line naming it and the valid names, and no call at all.
for args in "a typo" "typo a" "long typo" "f g x" "''" "'a b'"; do
  eval "set -- $args"
  run "$@"
  bad=${*: -1}; [ "$args" = "typo a" ] && bad=typo
  want="experiments/run.sh: unknown experiment '$bad', expected one of: $valid (nothing was run)"
  [ "$rc" -eq 2 ] || fail "run.sh $args: exit $rc, want 2"
  [ "$err" = "$want" ] || fail "run.sh $args: stderr '$err', want '$want'"
  [ "$calls" -eq 0 ] || fail "run.sh $args: qat was called $calls times before the unknown name was reported"
done

# `long` among other names runs them in order, long's five in its place.
run f long
order=$(grep '^== experiment' <<<"$out" | cut -d' ' -f3 | tr '\n' ' ')
[ "$rc" -eq 0 ] || fail "run.sh f long: exit $rc: $err"
[ "$order" = "f c3 e4 g4 h i " ] || fail "run.sh f long: experiments run '$order', want 'f c3 e4 g4 h i '"
grep -q "sweep experiments/f-noise/sweep.yaml" "$FAKEQAT_LOG" || fail "run.sh f long: f's sweep not called"
grep -q "sweep experiments/i-data-axis/rest.yaml" "$FAKEQAT_LOG" || fail "run.sh f long: i's last sweep not called"
# ... and alone, as make experiments-long calls it
run long
order=$(grep '^== experiment' <<<"$out" | cut -d' ' -f3 | tr '\n' ' ')
[ "$rc" -eq 0 ] && [ "$order" = "c3 e4 g4 h i " ] || fail "run.sh long: exit $rc, ran '$order'"
# No name: a-g's first stages.
run
order=$(grep '^== experiment' <<<"$out" | cut -d' ' -f3 | tr '\n' ' ')
[ "$rc" -eq 0 ] && [ "$order" = "a b c d e f g " ] || fail "run.sh: exit $rc, ran '$order'"

# The run counts the READMEs state, against the sweeps each target runs (each sweep once: b's runs
# are shared).
if [ -n "$real" ]; then
  ln -s "$root/experiments" "$tmp/cwd/experiments"   # the sweeps' own relative paths (../common.yaml)
  export FAKEQAT_REAL=$real FAKEQAT_COUNTS="$tmp/counts"
  total() { # total ARGS...: runs of the sweeps `run.sh ARGS` runs
    : > "$FAKEQAT_COUNTS"; run "$@"
    grep -q ' ?$' "$FAKEQAT_COUNTS" && fail "run.sh $*: a sweep not counted: $(grep ' ?$' "$FAKEQAT_COUNTS")"
    sort -u "$FAKEQAT_COUNTS" | awk '{ s += $2 } END { print s + 0 }'
  }
  stated() { grep -F "| \`$1\` |" "$root/experiments/README.md" | awk -F'|' '{ gsub(/ /, "", $4); print $4 }'; }
  n=$(total); want=$(stated "make experiments")
  [ "$n" = "$want" ] || fail "make experiments runs $n runs, experiments/README.md says '$want'"
  n=$(total long); want=$(stated "make experiments-long")
  [ "$n" = "$want" ] || fail "make experiments-long runs $n runs, experiments/README.md says '$want'"
  n=$(total h)
  want=$(grep -o 'That is [0-9]* runs' "$root/experiments/h-backward/README.md" | grep -o '[0-9]*')
  [ "$n" = "$want" ] || fail "h runs $n runs, experiments/h-backward/README.md says '$want'"
  grep -qF "h, the backward pass ($n runs" "$root/experiments/README.md" || fail "experiments/README.md: h is not $n runs"
  unset FAKEQAT_REAL
fi

# A missing binary is exit 2 too, after the names and before any work.
(cd "$tmp/cwd" && QAT="$tmp/none" "$root/experiments/run.sh" a > /dev/null 2> "$tmp/err"); rc=$?
[ "$rc" -eq 2 ] && grep -q "not found; run make first" "$tmp/err" || fail "QAT missing: exit $rc, $(cat "$tmp/err")"

[ "$fails" -eq 0 ] && echo "test_experiments_run: all passed"
exit $((fails > 0))
