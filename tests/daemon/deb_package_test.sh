#!/usr/bin/env bash
# Builds the Debian package with cpack in the build tree given as $1 (ckptd
# and ckptctl must be built) into a temporary directory, then checks its
# contents and control data with dpkg.
set -euo pipefail
build=${1:?usage: deb_package_test.sh BUILD_DIR}
for t in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$t" >/dev/null || { echo "missing $t: run scripts/setup.sh"; exit 1; }
done
for b in ckptd ckptctl; do
  [ -x "$build/$b" ] || { echo "$build/$b not built (cmake --build $build --target ckptd ckptctl)"; exit 1; }
done
out=$(mktemp -d /tmp/ckptd-deb.XXXXXX)
trap 'rm -rf "$out"' EXIT
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) || { cat "$out/cpack.log"; exit 1; }
deb=$(ls "$out"/ckptd_*.deb)
echo "built $deb"
fail=0
contents=$(dpkg -c "$deb")
echo "$contents"
for f in ./usr/bin/ckptd ./usr/bin/ckptctl ./lib/systemd/system/ckptd.service \
         ./lib/systemd/system/ckptd.socket ./usr/lib/tmpfiles.d/ckptd.conf ./etc/ckptd/ckptd.toml; do
  grep -q " $f\$" <<<"$contents" || { echo "FAIL: $f missing from the package"; fail=1; }
done
grep -q '^-rwxr-xr-x .* ./usr/bin/ckptd$' <<<"$contents" || { echo "FAIL: /usr/bin/ckptd not executable"; fail=1; }
info=$(dpkg -I "$deb")
echo "$info"
grep -q '^ Depends: .*libc6' <<<"$info" || { echo "FAIL: no shlibdeps Depends (libc6)"; fail=1; }
grep -q '^ Recommends: criu (>= 4.2)' <<<"$info" || { echo "FAIL: no Recommends: criu (>= 4.2)"; fail=1; }
conffiles=$(dpkg-deb -f "$deb" >/dev/null; dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[ "$conffiles" = "/etc/ckptd/ckptd.toml" ] || { echo "FAIL: conffiles is '$conffiles'"; fail=1; }
# Listed into a variable first: with pipefail, grep -q closing the pipe early
# would make tar's SIGPIPE look like a missing file.
control_files=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
for s in postinst prerm postrm; do
  grep -q "^./$s\$" <<<"$control_files" || { echo "FAIL: no $s"; fail=1; }
done
# The packaged config is the example, and the packaged daemon accepts it.
mkdir "$out/x" && dpkg-deb -x "$deb" "$out/x"
"$out/x/usr/bin/ckptd" --config "$out/x/etc/ckptd/ckptd.toml" --check-config >/dev/null ||
  { echo "FAIL: packaged ckptd rejects the packaged config"; fail=1; }
[ "$fail" = 0 ] && echo "deb package OK"
exit "$fail"
