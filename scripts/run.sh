#!/usr/bin/env bash
# Set up, build and start the daemon on its embedded defaults
# (RocksDB and images under /var/lib/ckptd, API on 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh ckptd ckptctl
exec ./build/ckptd "$@"
