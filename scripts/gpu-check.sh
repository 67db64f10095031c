#!/usr/bin/env bash
# The `gpu` tests and the GPU benchmarks on a machine with an NVIDIA GPU and
# none of Debian's packages. Nothing is built there but the CUDA workload
# (with that machine's nvcc): ckptd, ckptctl, CRIU, the test and benchmark
# binaries and the shared libraries they need beyond glibc and libstdc++
# travel in one folder.
#
#   scripts/gpu-check.sh pack [DIR]  here, after scripts/build.sh: fill DIR
#                                    (default .gpu-carry, git-ignored) from
#                                    build/ (BUILD_DIR) and CRIU, and pack it
#                                    as DIR.tar.gz (about 27 MB: DIR itself
#                                    is over the device tool's 64 MiB carry)
#   scripts/gpu-check.sh run [DIR]   there: unpack DIR.tar.gz when DIR is
#                                    absent, build the CUDA workload, find
#                                    libcuda.so.1, run the gpu tests and the
#                                    benchmarks from DIR, print one table
#   scripts/gpu-check.sh             both, one after the other
#
# Without an NVIDIA driver the gpu tests skip and say why, the real-GPU
# benchmark says "skipped", and the script exits 0; it exits 1 when a test
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
DIR=${2:-.gpu-carry}
BUILD=${BUILD_DIR:-build}
CRIU=${CKPTD_CRIU:-/opt/ckptd/criu/sbin/criu}

# Shared libraries of the given binaries, except glibc's and the C++ runtime's.
non_glibc_libs() {
  ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|libutil|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so'
}

pack() {
  rm -rf "$DIR"
  mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/fake" "$DIR/src"
  cp "$BUILD/ckptd" "$BUILD/ckptctl" "$BUILD/tests/gpu/gpu_real_test" \
    "$BUILD/bench/gpu/ckptd_gpu_phases_bench" "$BUILD/bench/gpu/ckptd_gpu_real_bench" \
    "$BUILD/bench/gpu/ckptd_gpu_whole_bench" "$DIR/bin/"
  cp "$CRIU" "$DIR/bin/criu.real"
  # The fakes for the phases benchmark stay out of lib/: on LD_LIBRARY_PATH
  # the fake libcuda.so.1 would hide the real one.
  cp "$BUILD/tests/fake_cuda/libcuda.so.1" "$BUILD/tests/gpu/ckptd_gpu_user" "$DIR/fake/"
  strip --strip-debug "$DIR"/bin/* "$DIR"/fake/*
  for lib in $(non_glibc_libs "$DIR"/bin/*); do cp -L "$lib" "$DIR/lib/"; done
  cat > "$DIR/bin/criu" <<'WRAPPER'
#!/bin/sh
# CRIU with the libraries that travelled with it.
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/criu.real" "$@"
WRAPPER
  chmod +x "$DIR/bin/criu"
  cp tests/cuda/cuda_workload.cu "$DIR/src/"
  tar czf "$DIR.tar.gz" -C "$(dirname "$DIR")" "$(basename "$DIR")"
  echo "gpu-check: packed $(du -sh "$DIR" | cut -f1) into $DIR, $(du -sh "$DIR.tar.gz" | cut -f1) as $DIR.tar.gz"
}

find_nvcc() {
  for c in "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return; fi
  done
}

# The folder of the driver's libcuda.so.1 when the loader would not find it.
find_libcuda_dir() {
  if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then return; fi
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib /usr/local/cuda/compat; do
    if [ -e "$d/libcuda.so.1" ]; then echo "$d"; return; fi
  done
}

run() {
  local out
  out=$(mktemp -d /tmp/gpu-check.XXXXXX)
  if [ ! -d "$DIR" ] && [ -f "$DIR.tar.gz" ]; then
    tar xzf "$DIR.tar.gz" -C "$(dirname "$DIR")"
  fi
  DIR=$(cd "$DIR" && pwd)
  local nvcc workload="$DIR/bin/ckptd_cuda_workload"
  nvcc=$(find_nvcc)
  if [ -n "$nvcc" ] && [ ! -x "$workload" ]; then
    "$nvcc" -O2 -std=c++17 -o "$workload" "$DIR/src/cuda_workload.cu" > "$out/nvcc.log" 2>&1 ||
      echo "gpu-check: nvcc failed, see $out/nvcc.log"
  fi
  local libcuda_dir
  libcuda_dir=$(find_libcuda_dir)
  export LD_LIBRARY_PATH="$DIR/lib${libcuda_dir:+:$libcuda_dir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CKPTD_CRIU="$DIR/bin/criu" CKPTD_CUDA_WORKLOAD="$workload"
  export CKPTD_FAKE_CUDA_LIB="$DIR/fake/libcuda.so.1" CKPTD_GPU_USER="$DIR/fake/ckptd_gpu_user"

  local rc=0
  timeout 1500 "$DIR/bin/gpu_real_test" > "$out/tests.log" 2>&1 || rc=$?
  timeout 300 "$DIR/bin/ckptd_gpu_phases_bench" > "$out/phases.log" 2>&1 || true
  timeout 900 "$DIR/bin/ckptd_gpu_real_bench" > "$out/real.log" 2>&1 || true
  timeout 900 "$DIR/bin/ckptd_gpu_whole_bench" --real --mib 4096 --rounds 3 > "$out/whole.log" 2>&1 || true

  echo "== gpu-check: $(uname -n), $(date -u +%FT%TZ)"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,uuid,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  fi
  echo "nvcc: ${nvcc:-none}; libcuda.so.1: ${libcuda_dir:-found by the loader, or absent}"
  printf '%-70s %s\n' "test" "result"
  # gtest's per-test lines: "[       OK ] Suite.Name (12 ms)", FAILED, SKIPPED.
  awk '/^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+ \(/ {
    r = $2 == "OK" ? "passed" : $2 == "FAILED" ? "FAILED" : "skipped"; printf "%-70s %s\n", $4, r }' "$out/tests.log"
  grep -m1 -E '(no NVIDIA driver|not usable|was not built)' "$out/tests.log" | sed 's/^/skip reason: /' || true
  cat "$out/phases.log" "$out/real.log" "$out/whole.log"
  echo "logs: $out"
  if [ "$rc" -ne 0 ]; then
    echo "gpu-check: gpu tests FAILED (exit $rc)"
    return 1
  fi
  echo "gpu-check: done"
}

case "$MODE" in
  pack) pack ;;
  run) run ;;
  all) pack && run ;;
  *) echo "usage: $0 [pack|run|all] [DIR]" >&2; exit 2 ;;
esac
