#!/usr/bin/env bash
# Provide CRIU >= 4.2 without upgrading the system.
#
# Uses the system's criu when it is new enough. Otherwise it fetches the
# orig tarball of Debian's criu source package from the unstable suite (only
# the source index is read, into a private apt state directory, so the
# machine's own apt configuration is untouched), verifies its SHA-256 against
# the signed index, and builds `criu` into a project-owned prefix.
# Idempotent: an existing build in the prefix is reused.
set -euo pipefail

PREFIX=${CKPTD_PREFIX:-/opt/ckptd}
WANT_MAJOR=4 WANT_MINOR=2
CRIU_BIN="$PREFIX/criu/sbin/criu"

version_ok() {  # $1: path to a criu binary
  local v
  v=$("$1" --version 2>/dev/null | awk '/^Version:/{print $2; exit}') || return 1
  [ -n "$v" ] || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt "$WANT_MAJOR" ] || { [ "$major" -eq "$WANT_MAJOR" ] && [ "$minor" -ge "$WANT_MINOR" ]; }
}

if [ -x "$CRIU_BIN" ] && version_ok "$CRIU_BIN"; then
  echo "criu: using $CRIU_BIN ($("$CRIU_BIN" --version | awk '/^Version:/{print $2}'))"
  exit 0
fi
if command -v criu >/dev/null && version_ok "$(command -v criu)"; then
  mkdir -p "$(dirname "$CRIU_BIN")"
  ln -sf "$(command -v criu)" "$CRIU_BIN"
  echo "criu: using system $(command -v criu)"
  exit 0
fi

work=$(mktemp -d /tmp/ckptd-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/lists/partial" "$work/etc"

# The archive address is the machine's own: reuse the URIs of its apt sources.
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  uri=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' "$f")
  [ -n "$uri" ] && break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || { echo "install-criu: no apt source URI found on this machine" >&2; exit 1; }

cat > "$work/etc/src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/etc/src.sources" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1)
apt-get -qq "${apt_opts[@]}" update
# Prefer 4.2.1 (measured to work here); fall back to whatever unstable has.
line=$(apt-get -qq "${apt_opts[@]}" source --print-uris criu=4.2.1-1 2>/dev/null | grep "orig.tar" || true)
[ -n "$line" ] || line=$(apt-get -qq "${apt_opts[@]}" source --print-uris criu | grep "orig.tar")
url=$(echo "$line" | awk '{print $1}' | tr -d "'")
file=$(echo "$line" | awk '{print $2}')
sha=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
echo "criu: fetching $file"
curl -fsSL --retry 3 -o "$work/$file" "$url"
echo "$sha  $work/$file" | sha256sum -c --quiet -
tar -C "$work" -xf "$work/$file"
src=$(find "$work" -maxdepth 1 -type d -name 'criu-*' | head -n1)
echo "criu: building in $src"
make -C "$src" -j"$(nproc)" criu >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; exit 1; }
install -D -m 0755 "$src/criu/criu" "$CRIU_BIN"
version_ok "$CRIU_BIN"
echo "criu: installed $CRIU_BIN ($("$CRIU_BIN" --version | awk '/^Version:/{print $2}'))"
