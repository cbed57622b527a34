#!/bin/sh
# Install the Debian packages rlm_twostep needs to build, test and run its demo.
# Packages already installed are left alone. Services that the packages ship
# (freeradius, slapd) are kept from starting during the install by a temporary
# policy-rc.d, so nothing listens on *:1812 or *:389 afterwards.
set -eu

PACKAGES="build-essential pkg-config dpkg-dev
freeradius freeradius-utils libfreeradius-dev
liboath-dev oathtool libldap2-dev libcurl4-openssl-dev libssl-dev
libtalloc-dev libpcre3-dev libcmocka-dev
slapd ldap-utils python3 valgrind curl openssl iproute2"

missing=""
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
	echo "deps: all required packages are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run 'make deps' as root, or install them with apt-get" >&2
	exit 1
fi

echo "deps: installing:$missing"

# Keep the services of freeradius and slapd from starting during the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	created_policy=1
fi
cleanup() {
	[ "$created_policy" -eq 0 ] || rm -f "$policy"
}
trap cleanup EXIT INT TERM

export DEBIAN_FRONTEND=noninteractive
apt-get update -q || { echo "deps: 'apt-get update' failed: check the network and /etc/apt/sources.list.d" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing || {
	echo "deps: 'apt-get install' failed for:$missing" >&2
	exit 1
}
echo "deps: done"
