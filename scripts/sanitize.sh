#!/usr/bin/env bash
# Sanitizer runs of the test suite (issue 15):
#   1. build-asan: CKPTD_SANITIZE=address,undefined, builds what the tests
#      need (no benches) and runs the whole ctest suite;
#   2. build-tsan: CKPTD_SANITIZE=thread, builds only the unit tests that
#      use threads and need no root (target ckptd_tsan_tests) and runs
#      `ctest -L tsan`.
# The test fixtures (workload, fake libcuda, ckptd_gpu_user) stay
# uninstrumented (CMakeLists.txt). Exits non-zero when a build or any test
# fails; both phases run even when the first one's tests fail.
#
#   ./scripts/sanitize.sh            # both
#   ./scripts/sanitize.sh asan|tsan  # one of them
# Environment: CTEST_JOBS (default 2), CKPTD_SKIP_SETUP=1 (no setup.sh),
# extra ctest arguments in CTEST_ARGS (e.g. "-R Catalog").
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 and line tables only: instrumented builds of Beast-heavy files take
# minutes each at -O2 -g, and the reports keep file:line.
SAN_OPT="-O1 -g1 -DNDEBUG"
ROOT=$(pwd)
phases=("${@:-asan tsan}")
read -r -a phases <<<"${phases[*]}"

if [ "${CKPTD_SKIP_SETUP:-0}" != 1 ]; then ./scripts/setup.sh; fi

# Run-time options, for the tests and for the test discovery at build time
# (gtest_discover_tests runs each test binary). Children the tests start
# (the real ckptd, ckptctl) inherit them; uninstrumented fixtures ignore them.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:check_initialization_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Third-party leaks we cannot fix, one commented entry each.
export LSAN_OPTIONS="print_suppressions=0"
if [ -f tests/sanitizers/lsan.supp ]; then
  LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:$LSAN_OPTIONS"
fi
# halt_on_error=0: a test reports every race it hits, and still fails
# (exit code 66) when there was one.
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4"
TSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/tsan.supp:$TSAN_OPTIONS"

jobs=$(nproc)
ctest_jobs=${CTEST_JOBS:-2}
read -r -a ctest_args <<<"${CTEST_ARGS:-}"
declare -A took
failed=()

now() { date +%s; }

run_asan() {
  local dir=build-asan t0 t1 t2
  t0=$(now)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$SAN_OPT" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$SAN_OPT" -DCKPTD_SANITIZE=address,undefined \
        -DCKPTD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j"$jobs"
  t1=$(now)
  took[asan_build]=$((t1 - t0))
  echo "sanitize: build-asan built in ${took[asan_build]} s; running the whole suite"
  if ! (cd "$dir" && ctest --output-on-failure --timeout 900 -j"$ctest_jobs" "${ctest_args[@]}"); then
    failed+=("asan tests")
  fi
  t2=$(now)
  took[asan_tests]=$((t2 - t1))
}

run_tsan() {
  local dir=build-tsan t0 t1 t2
  t0=$(now)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$SAN_OPT" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$SAN_OPT" -DCKPTD_SANITIZE=thread \
        -DCKPTD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j"$jobs" --target ckptd_tsan_tests
  t1=$(now)
  took[tsan_build]=$((t1 - t0))
  echo "sanitize: build-tsan built in ${took[tsan_build]} s; running ctest -L tsan"
  if ! (cd "$dir" && ctest -L tsan --output-on-failure --timeout 900 -j"$ctest_jobs" "${ctest_args[@]}"); then
    failed+=("tsan tests")
  fi
  t2=$(now)
  took[tsan_tests]=$((t2 - t1))
}

for p in "${phases[@]}"; do
  case "$p" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "sanitize.sh: unknown phase '$p' (asan or tsan)" >&2; exit 2 ;;
  esac
done

echo
echo "sanitize: wall time (s)"
for k in asan_build asan_tests tsan_build tsan_tests; do
  [ -n "${took[$k]:-}" ] && printf '  %-11s %6s\n' "$k" "${took[$k]}"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "sanitize: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sanitize: all passed"
