#!/usr/bin/env bash
# Run the meson test suite of build dir $1 and close with one summary line
# ("qat tests: N passed, N failed") that CI reads.
# The learning tests (test_train_e2e, test_realtext_e2e) train their even-numbered runs with one
# thread and the odd ones with two, so every run of the suite trains at both counts (oneDNN's
# summation order differs between them); QAT_TEST_THREADS=N in the environment makes them all N.
set -uo pipefail
build=${1:-build}
echo "learning tests: threads per training ${QAT_TEST_THREADS:-1 and 2 (alternating by run)}"
meson test -C "$build" --print-errorlogs --num-processes 1 --timeout-multiplier 4
rc=$?
log="$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
  pass=$(grep -c '"result": "OK"' "$log" || true)
  fail=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  skip=$(grep -c '"result": "SKIP"' "$log" || true)
  # Name each skipped test with the reason it printed ("SKIP: ..."), so a test that could
  # not run on this machine (no root, a package missing) is seen, not just counted.
  grep '"result": "SKIP"' "$log" | while IFS= read -r line; do
    name=$(sed 's/^{"name": "\([^"]*\)".*/\1/' <<<"$line")
    why=$(grep -o 'SKIP: [^"\\]*' <<<"$line" | head -n 1)
    echo "skipped: $name${why:+ ($why)}"
  done
  echo "tests: $pass passed, $fail failed, $skip skipped"
fi
exit $rc
