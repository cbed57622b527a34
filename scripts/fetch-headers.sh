#!/bin/sh
# Assemble the FreeRADIUS headers that a module build needs, in BUILD_DIR/include.
#
# Debian's libfreeradius-dev 3.2.1 installs radiusd.h but not eight headers it
# includes (connection.h, log.h, automask.h, ...). They are taken from Debian's
# source package of the exact installed version, fetched through a private apt
# configuration so the system's apt sources are never edited. The installed
# autoconf.h, features.h and radpaths.h are kept: they describe the installed
# build. Nothing fetched here is committed.
#
# Usage: fetch-headers.sh BUILD_DIR
set -eu

build=${1:?usage: fetch-headers.sh BUILD_DIR}
mkdir -p "$build"
build=$(cd "$build" && pwd)
inc="$build/include/freeradius-devel"
stamp="$build/include/.version"

fail() {
	echo "fetch-headers: $*" >&2
	exit 1
}

version=$(dpkg-query -W -f='${Version}' freeradius 2>/dev/null) ||
	fail "package freeradius is not installed: run 'make deps'"
[ -n "$version" ] || fail "package freeradius is not installed: run 'make deps'"
[ -f /usr/include/freeradius/radiusd.h ] ||
	fail "/usr/include/freeradius/radiusd.h is missing: run 'make deps' (package libfreeradius-dev)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
	exit 0
fi

apt_dir="$build/apt"
src_dir="$build/freeradius-src"
rm -rf "$apt_dir" "$src_dir" "$build/include"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$src_dir"

# A deb-src entry for every deb entry of the system's deb822 sources.
found=0
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	sed -e 's/^Types:.*deb\b.*/Types: deb-src/' "$f" > "$apt_dir/sources.list.d/$(basename "$f")"
	found=1
done
# The same for one-line sources in /etc/apt/sources.list.
if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
	sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$apt_dir/sources.list.d/system.list"
	found=1
fi
[ "$found" -eq 1 ] || fail "no apt sources found in /etc/apt to derive a deb-src entry from"

apt_opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$apt_dir/sources.list.d
-o Dir::State::Lists=$apt_dir/lists -o Dir::Cache::archives=$apt_dir/archives
-o APT::Sandbox::User=root -q"

echo "fetch-headers: downloading the source package of freeradius $version"
# shellcheck disable=SC2086
apt-get $apt_opts update > "$apt_dir/update.log" 2>&1 ||
	fail "'apt-get update' for the deb-src entries failed (see $apt_dir/update.log)"
# shellcheck disable=SC2086
(cd "$src_dir" && apt-get $apt_opts source --download-only "freeradius=$version") > "$apt_dir/source.log" 2>&1 ||
	fail "'apt-get source freeradius=$version' failed (see $apt_dir/source.log); the version may have left the archive"

dsc=$(ls "$src_dir"/freeradius_*.dsc 2>/dev/null | head -n 1)
[ -n "$dsc" ] || fail "no .dsc file was downloaded (see $apt_dir/source.log)"
command -v dpkg-source > /dev/null || fail "dpkg-source is missing: install dpkg-dev"
(cd "$src_dir" && dpkg-source --no-check -x "$dsc" tree) > "$apt_dir/extract.log" 2>&1 ||
	fail "unpacking $dsc failed (see $apt_dir/extract.log)"

# The source's headers, then the installed ones that describe this build on top.
mkdir -p "$inc"
cp "$src_dir"/tree/src/include/*.h "$inc/"
for h in autoconf.h features.h radpaths.h; do
	cp /usr/include/freeradius/$h "$inc/$h"
done
for h in /usr/include/freeradius/*.h; do
	[ -f "$inc/$(basename "$h")" ] || cp "$h" "$inc/"
done
sed -i -e 's|<freeradius/|<freeradius-devel/|g' "$inc"/*.h

rm -rf "$src_dir/tree"
echo "$version" > "$stamp"
echo "fetch-headers: headers for freeradius $version are in $inc"
