#!/usr/bin/env bash
# Configure and build ckptd (Release with debug info) into build/.
# Arguments are passed on as --target names (default: everything).
# CKPTD_WERROR=ON makes every compiler warning an error (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} -DCKPTD_WERROR=${CKPTD_WERROR:-OFF} >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
