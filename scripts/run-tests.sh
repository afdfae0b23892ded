#!/usr/bin/env bash
# Run the meson test suite of build dir $1 and close with one summary line
# ("qat tests: N passed, N failed") that CI reads.
set -uo pipefail
build=${1:-build}
meson test -C "$build" --print-errorlogs --num-processes 1 --timeout-multiplier 4
rc=$?
log="$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
  pass=$(grep -c '"result": "OK"' "$log" || true)
  fail=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  skip=$(grep -c '"result": "SKIP"' "$log" || true)
  echo "tests: $pass passed, $fail failed, $skip skipped"
fi
exit $rc
