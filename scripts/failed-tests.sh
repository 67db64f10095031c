#!/usr/bin/env bash
# Prints the tests that failed in the last ctest run of a build folder, each
# with the last lines of its output (from ctest's Testing/Temporary logs).
# With NEWER_THAN (a file), a failure log older than it is not reported:
# ctest leaves the last failing run's list in place when a later run passes.
#   scripts/failed-tests.sh [BUILD_DIR] [NEWER_THAN] [LINES]
set -euo pipefail
BUILD=${1:-build}
NEWER_THAN=${2:-}
LINES=${3:-60}
FAILED="$BUILD/Testing/Temporary/LastTestsFailed.log"
LOG="$BUILD/Testing/Temporary/LastTest.log"
if [ ! -s "$FAILED" ] || { [ -n "$NEWER_THAN" ] && [ ! "$FAILED" -nt "$NEWER_THAN" ]; }; then
  echo "failed-tests: no failed test recorded in $FAILED by this run"
  exit 0
fi
echo "failed-tests: the tests that failed in $BUILD:"
sed 's/^/  /' "$FAILED"
while IFS=: read -r _ name; do
  echo "---- $name (last $LINES lines of its output) ----"
  awk -v t="$name" '
    index($0, " Testing: " t) && substr($0, length($0) - length(t) + 1) == t { on = 1 }
    on { print }
    on && index($0, "\"" t "\" end time") == 1 { on = 0 }
  ' "$LOG" | tail -n "$LINES"
done < "$FAILED"
