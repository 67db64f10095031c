#!/usr/bin/env bash
# Install the S3-compatible test server (s3rver, an npm package) into a
# project-owned prefix, idempotently. The object-store tests start it on a
# loopback port; it is never used in production.
#
#   S3RVER_PREFIX   install prefix (default /opt/ckptd/s3rver)
#   S3RVER_VERSION  pinned version (default below; bump deliberately)
set -euo pipefail

S3RVER_VERSION="${S3RVER_VERSION:-3.7.1}"
PREFIX="${S3RVER_PREFIX:-/opt/ckptd/s3rver}"
BIN="$PREFIX/node_modules/.bin/s3rver"

command -v node >/dev/null || { echo "install-s3rver: node is missing (run scripts/setup.sh)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install-s3rver: npm is missing (run scripts/setup.sh)" >&2; exit 1; }

installed=""
if [ -f "$PREFIX/node_modules/s3rver/package.json" ]; then
  installed="$(node -p "require('$PREFIX/node_modules/s3rver/package.json').version" 2>/dev/null || true)"
fi

if [ -x "$BIN" ] && [ "$installed" = "$S3RVER_VERSION" ]; then
  echo "install-s3rver: s3rver $installed already at $BIN"
else
  echo "install-s3rver: installing s3rver@$S3RVER_VERSION into $PREFIX"
  mkdir -p "$PREFIX"
  # A package.json of our own keeps npm from walking up to a parent project.
  [ -f "$PREFIX/package.json" ] || echo '{"name":"ckptd-s3rver","private":true}' >"$PREFIX/package.json"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    --save-exact "s3rver@$S3RVER_VERSION"
fi

# Smoke test: start it on an ephemeral port, wait for its listening line, stop it.
tmp="$(mktemp -d)"
log="$tmp/log"
"$BIN" --silent --address 127.0.0.1 --port 0 --directory "$tmp/data" >"$log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 50); do
  if grep -qi "listening\|started" "$log" 2>/dev/null; then ok=1; break; fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.2
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ "$ok" -ne 1 ]; then
  echo "install-s3rver: s3rver did not start:" >&2
  cat "$log" >&2
  rm -rf "$tmp"
  exit 1
fi
rm -rf "$tmp"
echo "install-s3rver: s3rver $S3RVER_VERSION ok at $BIN"
