#!/usr/bin/env bash
# Set up, build and run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j"${CTEST_JOBS:-2}" "$@"
