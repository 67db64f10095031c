#!/usr/bin/env bash
# Install everything ckptd needs on Debian 12, as root, idempotently:
# Debian packages (skipped when already installed), CRIU >= 4.2 (built from
# Debian's source package into /opt/ckptd when the system's is too old) and
# the S3-compatible test server from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }

PKGS=(
  build-essential cmake pkg-config git curl ca-certificates xz-utils
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librocksdb-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libcli11-dev libtomlplusplus-dev libprotobuf-dev protobuf-compiler
  libzstd-dev liblz4-dev libssl-dev libsystemd-dev
  # BLAKE3's C sources (compiled into the daemon by cmake/blake3.cmake)
  librust-blake3-dev
  # CRIU's build and run-time needs
  libprotobuf-c-dev protobuf-c-compiler python3-protobuf libnl-3-dev libnet1-dev
  libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev iproute2 util-linux
  # containers (runc/): Debian's runc, driven with our CRIU; CRIU locks a
  # container's network namespace with iptables-restore; the container tests
  # build their rootfs from busybox-static
  runc iptables busybox-static
  # tests: the S3-compatible server runs on node
  nodejs npm
  # fuzz/ (scripts/fuzz.sh): clang 14 with its libFuzzer and sanitizer
  # runtimes (libclang-rt-14-dev is only recommended by clang, and we
  # install without recommends)
  clang libclang-rt-14-dev
  # tests: systemd-analyze verify, systemd-tmpfiles, systemd-socket-activate
  # (dpkg-shlibdeps for the .deb comes with build-essential's dpkg-dev)
  systemd
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# nodejs from another repository already satisfies the need for node/npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

./scripts/install-criu.sh

if [ -x scripts/install-s3rver.sh ]; then ./scripts/install-s3rver.sh; fi
echo "setup: done"
