#!/usr/bin/env bash
# Build the libFuzzer targets of fuzz/ with clang into build-fuzz/ and run
# each for a while on a fresh copy of its seed corpus (fuzz/corpus/<target>/,
# with fuzz/dict/<target>.dict when there is one). Fails when any target
# crashes (a crash, leak, timeout or out-of-memory: libFuzzer stops at the
# first one and saves the input under build-fuzz/artifacts/<target>/).
# Prints execs, coverage and crashes per target at the end.
#
#   ./scripts/fuzz.sh [seconds-per-target]        # default 60
# Environment: FUZZ_TARGETS="fuzz_manifest fuzz_s3_xml" (default: all),
# FUZZ_JOBS=2 (targets run at once; default 1), CKPTD_SKIP_SETUP=1 (no
# setup.sh), FUZZ_ARGS (more libFuzzer flags, e.g. "-only_ascii=1").
# Reproduce a finding: build-fuzz/fuzz/<target> <artifact file>
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 and line tables only: instrumented builds of Beast-heavy files take
# minutes each at -O2 -g, and the reports keep file:line.
SAN_OPT="-O1 -g1 -DNDEBUG"
ROOT=$(pwd)
SECONDS_PER_TARGET=${1:-60}
case "$SECONDS_PER_TARGET" in ''|*[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;; esac
DIR=build-fuzz
ALL_TARGETS=(fuzz_http_request fuzz_api_json fuzz_manifest fuzz_s3_xml fuzz_object_uri fuzz_config_toml)
read -r -a targets <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"
jobs=${FUZZ_JOBS:-1}
read -r -a extra <<<"${FUZZ_ARGS:-}"

if [ "${CKPTD_SKIP_SETUP:-0}" != 1 ]; then ./scripts/setup.sh; fi

t0=$(date +%s)
# Everything in this tree is built with clang: the product libraries carry
# the fuzzers' coverage and sanitizers. No tests, no benches.
CC=clang CXX=clang++ cmake -S . -B "$DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$SAN_OPT" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$SAN_OPT" -DCKPTD_FUZZ=ON \
  -DBUILD_TESTING=OFF -DCKPTD_BENCH=OFF >/dev/null
cmake --build "$DIR" -j"$(nproc)" --target "${targets[@]}"
t1=$(date +%s)
echo "fuzz: built in $((t1 - t0)) s; ${SECONDS_PER_TARGET} s per target, ${jobs} at a time"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run_one() {
  local t=$1 work="$DIR/run/$1"
  rm -rf "$work" "$DIR/artifacts/$t"
  mkdir -p "$work/corpus" "$DIR/artifacts/$t"
  cp -r "fuzz/corpus/$t/." "$work/corpus/"
  local dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="$ROOT/fuzz/dict/$t.dict")
  local rc=0
  # -timeout: one input taking longer than this is a finding (a hang).
  (cd "$work" && "$ROOT/$DIR/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
     -timeout=30 -artifact_prefix="$ROOT/$DIR/artifacts/$t/" "${dict[@]}" "${extra[@]}" corpus \
     >"$ROOT/$work/log" 2>&1) || rc=$?
  echo "$rc" >"$work/rc"
  echo "fuzz: $t done (exit $rc)"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
t2=$(date +%s)

# The table: execs and coverage from libFuzzer's final stats and last status
# line; crashes = inputs saved as artifacts (crash-, leak-, timeout-, oom-).
total=0
failed=()
printf '\n%-18s %12s %9s %7s %8s %7s %8s\n' target execs exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
  log="$DIR/run/$t/log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
  if [ -z "$execs" ]; then execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status"); fi
  crashes=$(find "$DIR/artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) | wc -l)
  rc=$(cat "$DIR/run/$t/rc")
  printf '%-18s %12s %9s %7s %8s %7s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
         "$crashes"
  total=$((total + ${execs:-0}))
  if [ "$rc" != 0 ] || [ "$crashes" -gt 0 ]; then failed+=("$t"); fi
done
printf '%-18s %12s\n' total "$total"
echo "fuzz: build $((t1 - t0)) s, fuzzing $((t2 - t1)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "fuzz: $t FAILED: $DIR/run/$t/log, inputs in $DIR/artifacts/$t/" >&2
    grep -m1 -A1 -E 'ERROR: |FUZZ FINDING|runtime error' "$DIR/run/$t/log" >&2 || true
  done
  exit 1
fi
echo "fuzz: no crashes"
