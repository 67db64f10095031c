#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#   1. set up, build with warnings as errors, run every test with ctest;
#   2. the same suite under ASan+UBSan, and the threaded unit tests under
#      TSan (scripts/sanitize.sh);
#   3. each libFuzzer target of fuzz/ for CKPTD_FUZZ_SECONDS (default 30)
#      (scripts/fuzz.sh).
# Arguments go to the first ctest run (e.g. -R Catalog). CKPTD_TEST_QUICK=1
# runs step 1 only. All steps run; the script fails when any of them did.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
CKPTD_WERROR=ON ./scripts/build.sh
BUILD=${BUILD_DIR:-build}
failed=()
# Failure logs older than this run are not this run's.
STAMP=$(mktemp)
trap 'rm -f "$STAMP"' EXIT
(cd "$BUILD" && ctest --output-on-failure --timeout 600 -j"${CTEST_JOBS:-2}" "$@") || failed+=(tests)
if [ "${CKPTD_TEST_QUICK:-0}" != 1 ]; then
  CKPTD_SKIP_SETUP=1 ./scripts/sanitize.sh || failed+=(sanitizers)
  CKPTD_SKIP_SETUP=1 FUZZ_JOBS=${FUZZ_JOBS:-2} ./scripts/fuzz.sh "${CKPTD_FUZZ_SECONDS:-30}" || failed+=(fuzz)
fi
if [ "${#failed[@]}" -gt 0 ]; then
  # The sanitizers and the fuzzers print a lot after each ctest run: repeat
  # the failed tests last, where a reader of the log's end sees them.
  for f in "${failed[@]}"; do
    case "$f" in
      tests) ./scripts/failed-tests.sh "$BUILD" "$STAMP" >&2 || true ;;
      sanitizers)
        for d in build-asan build-tsan; do ./scripts/failed-tests.sh "$d" "$STAMP" >&2 || true; done ;;
    esac
  done
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all passed"
