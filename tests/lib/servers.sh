# shellcheck shell=bash
#
# Start and stop the servers that tests and the demo of rlm_twostep run
# against: slapd with the demo directory, and radiusd with the twostep module,
# both on 127.0.0.1. Source this file from bash:
#
#   . "$TWOSTEP_ROOT/tests/lib/servers.sh"
#   trap stop_all EXIT
#   port=$(free_port)
#   slapd_start "$workdir" "$port"
#
# Call the *_start and *_resume functions in the test's own shell, not inside
# $(...) or a pipeline: they record the PIDs of the servers in shell
# variables, which stop_all reads, and a subshell loses those records.
#
# Every function returns 0 on success and 1 on failure, after printing what
# failed to stderr. The functions work under set -euo pipefail.

TWOSTEP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TWOSTEP_ROOT

TWOSTEP_SLAPD=/usr/sbin/slapd
TWOSTEP_RADIUSD=/usr/sbin/freeradius
TWOSTEP_RADIUS_SECRET=testing123

# PIDs of the servers this shell started, as "PID:WORKDIR" words.
_TWOSTEP_PIDS=""

_twostep_error() {
	echo "servers.sh: $*" >&2
}

# Make a work folder path absolute, because the servers change directory.
_twostep_abspath() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$PWD/$1" ;;
	esac
}

_twostep_register() {
	_TWOSTEP_PIDS="$_TWOSTEP_PIDS $1:$2"
}

_twostep_unregister() {
	local entry kept=""
	for entry in $_TWOSTEP_PIDS; do
		[ "${entry%%:*}" = "$1" ] || kept="$kept $entry"
	done
	_TWOSTEP_PIDS=$kept
}

# Succeed when PID is a live process (not a zombie) whose command line
# contains WORKDIR. The check keeps a stale PID file from making us signal an
# unrelated process that reused the PID.
_twostep_pid_alive() {
	local pid=$1 workdir=$2 state cmdline
	state=$(sed -e 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != "Z" ] || return 1
	cmdline=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || return 1
	case "$cmdline" in
	*"$workdir"*) return 0 ;;
	*) return 1 ;;
	esac
}

# Succeed when PID, a child of this shell that has not been reaped yet, has
# not exited. Unlike _twostep_pid_alive it ignores the command line, which
# stays the shell's own until the child calls exec.
_twostep_child_running() {
	local state
	state=$(sed -e 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != "Z" ]
}

# Send TERM to PID, wait up to TIMEOUT seconds (default 10) for it to exit,
# then send KILL.
_twostep_stop_pid() {
	local pid=$1 workdir=$2 name=$3 timeout=${4:-10} i
	if _twostep_pid_alive "$pid" "$workdir"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < timeout * 10; i++)); do
			_twostep_pid_alive "$pid" "$workdir" || break
			sleep 0.1
		done
		if _twostep_pid_alive "$pid" "$workdir"; then
			_twostep_error "$name (PID $pid) still runs $timeout s after TERM, so it gets KILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# Reap the process if this shell started it. wait ignores other PIDs.
	wait "$pid" 2>/dev/null || true
	_twostep_unregister "$pid"
	return 0
}

# Stop the server whose PID is in PIDFILE, if it runs, waiting up to TIMEOUT
# seconds (default 10) after TERM.
_twostep_stop_pidfile() {
	local pidfile=$1 workdir=$2 name=$3 timeout=${4:-10} pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null)
	case "$pid" in
	'' | *[!0-9]*)
		_twostep_error "$pidfile does not contain a PID, so nothing was stopped"
		return 0
		;;
	esac
	_twostep_stop_pid "$pid" "$workdir" "$name" "$timeout"
	rm -f "$pidfile"
}

# Fail when the PID file names a live server of this work folder.
_twostep_check_not_running() {
	local pidfile=$1 workdir=$2 name=$3 pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null)
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	if _twostep_pid_alive "$pid" "$workdir"; then
		_twostep_error "$name already runs for $workdir (PID $pid). Stop it first."
		return 1
	fi
	return 0
}

_twostep_check_port() {
	case "$1" in
	'' | *[!0-9]*)
		_twostep_error "invalid port '$1': expected a number"
		return 1
		;;
	esac
	if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
		_twostep_error "invalid port $1: expected 1..65535"
		return 1
	fi
}

# Fail with a message naming the process when a socket of PROTOCOL (tcp or
# udp) listens on PORT.
_twostep_check_port_free() {
	local protocol=$1 port=$2 flag sockets
	if [ "$protocol" = tcp ]; then flag=-t; else flag=-u; fi
	sockets=$(ss -Hlnp "$flag" "( sport = :$port )" 2>/dev/null)
	[ -n "$sockets" ] || return 0
	_twostep_error "$protocol port $port is already in use: $sockets"
	return 1
}

# Succeed when PID listens on TCP PORT.
_twostep_pid_listens() {
	local pid=$1 port=$2
	ss -Hltnp "( sport = :$port )" 2>/dev/null | grep -qF "pid=$pid,"
}

# Print a random port in 20000..59999 that no TCP or UDP socket uses.
# NOTE: another process may take the port between this check and the bind.
# Two test runs at the same time can therefore still collide, and the second
# server start then fails.
free_port() {
	local port i
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if [ -z "$(ss -Htuan "( sport = :$port )" 2>/dev/null)" ]; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	_twostep_error "no free port found in 20000..59999 after 200 tries"
	return 1
}

#
# slapd
#

# Write WORKDIR/slapd/slapd.conf from ldap/slapd.conf.in.
_slapd_write_conf() {
	local workdir=$1
	sed -e "s|@WORKDIR@|$workdir|g" -e "s|@TWOSTEP_ROOT@|$TWOSTEP_ROOT|g" \
		"$TWOSTEP_ROOT/ldap/slapd.conf.in" > "$workdir/slapd/slapd.conf"
}

# tls_ca_create DIR
# Create a throwaway CA for tests: DIR/ca.pem (certificate, valid 2 days) and
# DIR/ca.key (EC P-256 private key, mode 0600).
tls_ca_create() {
	if [ $# -ne 1 ]; then
		_twostep_error "usage: tls_ca_create DIR"
		return 1
	fi
	local dir=$1
	mkdir -p "$dir" || return 1
	if ! (umask 077 && openssl req -x509 -new -nodes -days 2 \
		-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-subj "/CN=rlm_twostep test CA $RANDOM$RANDOM" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem") > "$dir/ca.log" 2>&1; then
		_twostep_error "creating a test CA in $dir with openssl failed:"
		cat "$dir/ca.log" >&2
		return 1
	fi
	chmod 0644 "$dir/ca.pem"
}

# Create WORKDIR/slapd/tls: a CA (ca.pem, ca.key) and a server certificate
# for 127.0.0.1 and localhost signed by it (server.pem, server.key), and add
# the TLS settings to WORKDIR/slapd/slapd.conf.
# "security simple_bind=1" makes slapd reject a simple bind with a password
# on a connection without TLS (confidentialityRequired), so a bind that
# succeeds proves that the password travelled encrypted. Anonymous binds and
# searches, such as the start-up probe, still work without TLS.
_slapd_write_tls() {
	local workdir=$1 tls="$1/slapd/tls"

	tls_ca_create "$tls" || return 1
	printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" > "$tls/server.ext"
	# slapd runs as the user of the tests, so mode 0600 lets it read the key.
	# GnuTLS, which Debian's slapd uses, reads the PKCS#8 PEM key that
	# openssl 3 writes.
	if ! (umask 077 && openssl req -new -nodes \
		-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" &&
		openssl x509 -req -days 2 -in "$tls/server.csr" -CA "$tls/ca.pem" \
			-CAkey "$tls/ca.key" -CAcreateserial -extfile "$tls/server.ext" \
			-out "$tls/server.pem") > "$tls/server.log" 2>&1; then
		_twostep_error "creating the slapd server certificate in $tls with openssl failed:"
		cat "$tls/server.log" >&2
		return 1
	fi
	chmod 0644 "$tls/server.pem"

	# TLS settings are global, so they go before the database section.
	if ! sed -i -e "/^database[[:space:]]/i\\
# Added by tests/lib/servers.sh because SLAPD_TLS=1.\\
TLSCACertificateFile	$tls/ca.pem\\
TLSCertificateFile	$tls/server.pem\\
TLSCertificateKeyFile	$tls/server.key\\
security	simple_bind=1\\
" "$workdir/slapd/slapd.conf"; then
		_twostep_error "adding the TLS settings to $workdir/slapd/slapd.conf failed"
		return 1
	fi
	if ! grep -q '^TLSCertificateFile' "$workdir/slapd/slapd.conf"; then
		_twostep_error "no 'database' line in $workdir/slapd/slapd.conf to put the TLS settings before"
		return 1
	fi
}

# Start slapd on the database in WORKDIR/slapd/db and wait until it accepts
# searches.
# MODE is "new" (truncate the log) or "resume" (append to it). With
# LDAPS_PORT, slapd also listens on ldaps://127.0.0.1:LDAPS_PORT/.
_slapd_launch() {
	local workdir=$1 port=$2 mode=$3 ldaps_port=${4:-}
	local dir="$workdir/slapd" uri="ldap://127.0.0.1:$port/" listen pid i

	listen=$uri
	if [ -n "$ldaps_port" ]; then
		listen="$uri ldaps://127.0.0.1:$ldaps_port/"
	fi
	if [ "$mode" = new ]; then
		: > "$dir/slapd.log"
	fi
	"$TWOSTEP_SLAPD" -f "$dir/slapd.conf" -h "$listen" -d stats \
		< /dev/null >> "$dir/slapd.log" 2>&1 &
	pid=$!
	echo "$pid" > "$dir/slapd.pid"
	_twostep_register "$pid" "$workdir"

	# Probe with an anonymous read of the root DSE, every 0.1 s for 10 s.
	# The listener check keeps another server on the same port from passing
	# the probe for a slapd that failed to bind.
	for ((i = 0; i < 100; i++)); do
		if ! _twostep_pid_alive "$pid" "$workdir"; then
			break
		fi
		if _twostep_pid_listens "$pid" "$port" &&
			{ [ -z "$ldaps_port" ] || _twostep_pid_listens "$pid" "$ldaps_port"; } &&
			ldapsearch -x -H "$uri" -o nettimeout=1 -b "" -s base \
				-LLL 1.1 > /dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done

	if _twostep_pid_alive "$pid" "$workdir"; then
		_twostep_error "slapd on $uri did not respond within 10 s. Last lines of $dir/slapd.log:"
	else
		_twostep_error "slapd on $uri exited during start-up. Last lines of $dir/slapd.log:"
	fi
	tail -n 20 "$dir/slapd.log" >&2
	_twostep_stop_pid "$pid" "$workdir" slapd
	rm -f "$dir/slapd.pid"
	return 1
}

# slapd_start WORKDIR PORT [LDAPS_PORT]
# Create WORKDIR/slapd with a fresh database loaded from ldap/demo.ldif and
# start slapd on ldap://127.0.0.1:PORT/, logging at level stats to
# WORKDIR/slapd/slapd.log.
# With SLAPD_TLS=1, slapd gets a new CA and server certificate in
# WORKDIR/slapd/tls (clients trust tls/ca.pem), offers StartTLS on PORT,
# listens on ldaps://127.0.0.1:LDAPS_PORT/ when LDAPS_PORT is given, and
# rejects simple binds with a password on connections without TLS.
slapd_start() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		_twostep_error "usage: [SLAPD_TLS=1] slapd_start WORKDIR PORT [LDAPS_PORT]"
		return 1
	fi
	local workdir port=$2 ldaps_port=${3:-} dir
	workdir=$(_twostep_abspath "$1")
	dir="$workdir/slapd"
	_twostep_check_port "$port" || return 1
	if [ -n "$ldaps_port" ]; then
		if [ "${SLAPD_TLS:-0}" != 1 ]; then
			_twostep_error "LDAPS_PORT $ldaps_port given without SLAPD_TLS=1: ldaps:// needs the TLS settings"
			return 1
		fi
		_twostep_check_port "$ldaps_port" || return 1
		_twostep_check_port_free tcp "$ldaps_port" || return 1
	fi
	_twostep_check_not_running "$dir/slapd.pid" "$workdir" slapd || return 1
	_twostep_check_port_free tcp "$port" || return 1

	rm -rf "$dir"
	mkdir -p "$dir/db" || return 1
	_slapd_write_conf "$workdir" || return 1
	if [ "${SLAPD_TLS:-0}" = 1 ]; then
		_slapd_write_tls "$workdir" || return 1
	fi
	# The enrollment deadline of the demo policy is 30 days after the load,
	# in UTC. Tests read it from WORKDIR/slapd/enroll-deadline.
	local deadline
	deadline=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ) || return 1
	printf '%s\n' "$deadline" > "$dir/enroll-deadline" || return 1
	sed -e "s/@ENROLL_DEADLINE@/$deadline/g" "$TWOSTEP_ROOT/ldap/demo.ldif" \
		> "$dir/demo.ldif" || return 1
	if ! slapadd -q -f "$dir/slapd.conf" -l "$dir/demo.ldif" \
		> "$dir/slapadd.log" 2>&1; then
		_twostep_error "slapadd of ldap/demo.ldif failed:"
		cat "$dir/slapadd.log" >&2
		return 1
	fi
	_slapd_launch "$workdir" "$port" new "$ldaps_port"
}

# slapd_resume WORKDIR PORT [LDAPS_PORT]
# Start slapd again on the database that slapd_start created, without
# reloading it, and append to the same log. The TLS settings of slapd_start,
# if any, stay in slapd.conf. LDAPS_PORT adds the ldaps:// listener again.
slapd_resume() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		_twostep_error "usage: slapd_resume WORKDIR PORT [LDAPS_PORT]"
		return 1
	fi
	local workdir port=$2 ldaps_port=${3:-} dir
	workdir=$(_twostep_abspath "$1")
	dir="$workdir/slapd"
	_twostep_check_port "$port" || return 1
	if [ -n "$ldaps_port" ]; then
		if ! grep -q '^TLSCertificateFile' "$dir/slapd.conf" 2>/dev/null; then
			_twostep_error "LDAPS_PORT $ldaps_port given, but $dir/slapd.conf has no TLS settings: start it with SLAPD_TLS=1"
			return 1
		fi
		_twostep_check_port "$ldaps_port" || return 1
		_twostep_check_port_free tcp "$ldaps_port" || return 1
	fi
	if [ ! -f "$dir/slapd.conf" ] || [ ! -d "$dir/db" ]; then
		_twostep_error "no slapd database in $dir: run slapd_start first"
		return 1
	fi
	_twostep_check_not_running "$dir/slapd.pid" "$workdir" slapd || return 1
	_twostep_check_port_free tcp "$port" || return 1
	_slapd_launch "$workdir" "$port" resume "$ldaps_port"
}

# slapd_stop WORKDIR
slapd_stop() {
	if [ $# -ne 1 ]; then
		_twostep_error "usage: slapd_stop WORKDIR"
		return 1
	fi
	local workdir
	workdir=$(_twostep_abspath "$1")
	_twostep_stop_pidfile "$workdir/slapd/slapd.pid" "$workdir" slapd
}

# slapd_count_binds WORKDIR
# Print the number of bind requests in the slapd log so far, across every
# start of this work folder. Anonymous binds count too, and the start-up probe
# sends one per start, so compare counts taken before and after a step.
# slapd logs each bind request as 'BIND dn="..." method=128' and, when it
# succeeds, once more with 'mech=SIMPLE'; only the first line is counted.
slapd_count_binds() {
	if [ $# -ne 1 ]; then
		_twostep_error "usage: slapd_count_binds WORKDIR"
		return 1
	fi
	local log
	log="$(_twostep_abspath "$1")/slapd/slapd.log"
	if [ ! -f "$log" ]; then
		_twostep_error "slapd log $log not found"
		return 1
	fi
	grep -cE ' BIND dn=.* method=[0-9]+$' "$log" || true
	return 0
}

#
# radiusd
#

_radiusd_write_radiusd_conf() {
	local workdir=$1 raddb="$1/raddb"
	cat > "$raddb/radiusd.conf" <<EOF
# Generated by tests/lib/servers.sh for $workdir.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $workdir
raddbdir = $raddb
radacctdir = $workdir/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = $workdir/run
db_dir = $workdir
libdir = $TWOSTEP_ROOT/build:/usr/lib/freeradius
pidfile = \${run_dir}/radiusd.pid

max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no

log {
	destination = files
	file = $workdir/radiusd.log
	colourise = no
	auth = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = ${RADIUSD_REJECT_DELAY:-0}
	status_server = no
}

thread pool {
	start_servers = 4
	max_servers = 16
	min_spare_servers = 2
	max_spare_servers = 4
	max_requests_per_server = 0
	auto_limit_acct = no
}

\$INCLUDE clients.conf

modules {
	\$INCLUDE mods-enabled/
}

instantiate {
}

policy {
}

\$INCLUDE sites-enabled/
EOF
}

_radiusd_write_clients_conf() {
	cat > "$1/raddb/clients.conf" <<EOF
client localhost {
	ipaddr = 127.0.0.1
	secret = $TWOSTEP_RADIUS_SECRET
	require_message_authenticator = yes
	nas_type = other
}
EOF
}

# Add one gateway section per "NAME=URL" word of TWOSTEP_SMS_GATEWAYS to the
# sms section of the module config at TARGET, in that order, each posting the
# JSON body that tests/mock-sms-gateway.py reads. Numbers without a country
# code get +1, and only +1 numbers may receive codes.
_radiusd_add_gateways() {
	local target=$1 entry name url sections=""

	for entry in $TWOSTEP_SMS_GATEWAYS; do
		name=${entry%%=*}
		url=${entry#*=}
		sections+=$'\t\tgateway '"$name"$' {\n'
		sections+=$'\t\t\turl = "'"$url"$'"\n'
		sections+=$'\t\t\tbody = "{\\"to\\": \\"{phone}\\", \\"text\\": \\"{message}\\"}"\n'
		sections+=$'\t\t\tfailure_contains = "\\"error\\""\n'
		sections+=$'\t\t\ttimeout = 2000\n'
		sections+=$'\t\t}\n'
	done
	# The sections go through the environment: awk -v would undo their backslashes.
	TWOSTEP_GATEWAY_SECTIONS=$sections awk '
		!done && /^[ \t]*sms[ \t]*\{/ {
			print
			print "\t\tdefault_country_code = \"1\""
			print "\t\tallowed_country_codes = \"1\""
			printf "%s", ENVIRON["TWOSTEP_GATEWAY_SECTIONS"]
			done = 1
			next
		}
		{ print }
		END { if (!done) exit 1 }
	' "$target" > "$target.new" && mv "$target.new" "$target" || {
		_twostep_error "no 'sms {' section found in $target for TWOSTEP_SMS_GATEWAYS"
		return 1
	}
}

# Copy the module config, with one "server = " line per LDAP URI in place of
# the server lines of its ldap section, then apply TWOSTEP_CONF_SED.
_radiusd_write_module_conf() {
	local workdir=$1
	shift
	local target="$workdir/raddb/mods-enabled/twostep" servers="" uri

	for uri in "$@"; do
		servers="$servers		server = \"$uri\""$'\n'
	done
	# Inside "ldap { ... }", the first active server line becomes the list
	# and later ones are dropped. Commented lines are kept as they are.
	awk -v servers="$servers" '
		depth == 0 && /^[ \t]*ldap[ \t]*\{/ { depth = 1; print; next }
		depth > 0 && /^[ \t]*server[ \t]*=/ {
			if (!done) { printf "%s", servers; done = 1 }
			next
		}
		depth > 0 && !/^[ \t]*#/ {
			opened = gsub(/\{/, "{"); closed = gsub(/\}/, "}")
			depth += opened - closed
		}
		{ print }
		END { if (!done) exit 1 }
	' "$TWOSTEP_ROOT/raddb/mods-available/twostep" > "$target" || {
		_twostep_error "no 'server = ' line found in the ldap section of raddb/mods-available/twostep"
		return 1
	}

	if [ -n "${TWOSTEP_SMS_GATEWAYS:-}" ]; then
		_radiusd_add_gateways "$target" || return 1
	fi

	if [ -n "${TWOSTEP_CONF_SED:-}" ]; then
		if ! sed -i -e "$TWOSTEP_CONF_SED" "$target"; then
			_twostep_error "TWOSTEP_CONF_SED failed on $target: $TWOSTEP_CONF_SED"
			return 1
		fi
	fi
}

_radiusd_write_site_conf() {
	local workdir=$1 port=$2
	sed -e "s/^\([[:space:]]*ipaddr[[:space:]]*=\).*/\1 127.0.0.1/" \
		-e "s/^\([[:space:]]*port[[:space:]]*=\).*/\1 $port/" \
		"$TWOSTEP_ROOT/raddb/sites-available/twostep" \
		> "$workdir/raddb/sites-enabled/twostep"
}

# Write a new state key: key id 1 and 32 random bytes in hex.
_radiusd_write_state_key() {
	local dir="$1/raddb/mods-config/twostep" key
	mkdir -p "$dir" || return 1
	key=$(openssl rand -hex 32) || {
		_twostep_error "openssl rand failed"
		return 1
	}
	(umask 077 && printf '1 %s\n' "$key" > "$dir/state-1.key")
	chmod 0600 "$dir/state-1.key"
}

# Print SECONDS, or 60 when TWOSTEP_RADIUSD_WRAPPER is set, because radiusd
# under a wrapper such as valgrind takes far longer to start and to exit.
_radiusd_timeout() {
	if [ -n "${TWOSTEP_RADIUSD_WRAPPER:-}" ]; then
		echo 60
	else
		echo "$1"
	fi
}

# radiusd_build_config WORKDIR AUTH_PORT LDAP_URI [LDAP_URI...]
# Write WORKDIR/raddb, the config that radiusd_start runs, without starting
# radiusd. The state key is new on every call.
radiusd_build_config() {
	if [ $# -lt 3 ]; then
		_twostep_error "usage: radiusd_build_config WORKDIR AUTH_PORT LDAP_URI [LDAP_URI...]"
		return 1
	fi
	local workdir port=$2 raddb
	workdir=$(_twostep_abspath "$1")
	shift 2
	raddb="$workdir/raddb"
	_twostep_check_port "$port" || return 1

	rm -rf "$raddb"
	mkdir -p "$raddb/mods-enabled" "$raddb/sites-enabled" "$workdir/run" || return 1
	cp /etc/freeradius/3.0/dictionary "$raddb/dictionary" || return 1
	_radiusd_write_radiusd_conf "$workdir" &&
		_radiusd_write_clients_conf "$workdir" &&
		_radiusd_write_module_conf "$workdir" "$@" &&
		_radiusd_write_state_key "$workdir" &&
		_radiusd_write_site_conf "$workdir" "$port"
}

# radiusd_start WORKDIR AUTH_PORT LDAP_URI [LDAP_URI...]
# Build WORKDIR/raddb from raddb/ of the repository, with the twostep module
# using the LDAP URIs in the order given, and start radiusd on
# 127.0.0.1:AUTH_PORT (UDP), logging at debug level 2 to WORKDIR/radiusd.log.
# RADIUSD_REJECT_DELAY sets security.reject_delay (seconds, default 0), and
# TWOSTEP_CONF_SED is a sed script applied last to mods-enabled/twostep.
radiusd_start() {
	if [ $# -lt 3 ]; then
		_twostep_error "usage: radiusd_start WORKDIR AUTH_PORT LDAP_URI [LDAP_URI...]"
		return 1
	fi
	local workdir port=$2
	workdir=$(_twostep_abspath "$1")
	_twostep_check_not_running "$workdir/radiusd.pid" "$workdir" radiusd || return 1

	radiusd_build_config "$@" || return 1
	radiusd_launch "$workdir" "$port"
}

# radiusd_launch WORKDIR AUTH_PORT
# Check and start radiusd on the config in WORKDIR/raddb as it is, for tests
# that edit the files that radiusd_build_config wrote.
radiusd_launch() {
	if [ $# -ne 2 ]; then
		_twostep_error "usage: radiusd_launch WORKDIR AUTH_PORT"
		return 1
	fi
	local workdir port=$2 raddb log pid i ready_timeout
	local -a wrapper
	workdir=$(_twostep_abspath "$1")
	raddb="$workdir/raddb"
	log="$workdir/radiusd.log"
	_twostep_check_not_running "$workdir/radiusd.pid" "$workdir" radiusd || return 1
	_twostep_check_port "$port" || return 1
	_twostep_check_port_free udp "$port" || return 1

	if ! "$TWOSTEP_RADIUSD" -C -d "$raddb" -l stdout > "$workdir/radiusd-check.log" 2>&1; then
		_twostep_error "radiusd rejected the config in $raddb. Last lines of $workdir/radiusd-check.log:"
		tail -n 30 "$workdir/radiusd-check.log" >&2
		return 1
	fi

	: > "$log"
	# TWOSTEP_RADIUSD_WRAPPER: a command that runs radiusd, such as
	# "valgrind --log-file=FILE". It is split into words at blanks, so no
	# argument of it can contain one. The wrapper must exec radiusd in its
	# own process (valgrind does), because the PID recorded is the
	# wrapper's.
	read -r -a wrapper <<<"${TWOSTEP_RADIUSD_WRAPPER:-}"
	ready_timeout=$(_radiusd_timeout 15)
	# RADIUSD_DEBUG: radiusd's debug flags. Tests keep -xx; the demo clears
	# it, because debug output records every request attribute, passwords
	# and codes included.
	# shellcheck disable=SC2086
	"${wrapper[@]}" "$TWOSTEP_RADIUSD" -f ${RADIUSD_DEBUG--xx} -d "$raddb" -l "$log" \
		< /dev/null > "$workdir/radiusd.out" 2>&1 &
	pid=$!
	echo "$pid" > "$workdir/radiusd.pid"
	_twostep_register "$pid" "$workdir"

	for ((i = 0; i < ready_timeout * 10; i++)); do
		if grep -q 'Ready to process requests' "$log" 2>/dev/null; then
			return 0
		fi
		_twostep_child_running "$pid" || break
		sleep 0.1
	done

	if _twostep_child_running "$pid"; then
		_twostep_error "radiusd on 127.0.0.1:$port was not ready within $ready_timeout s. Last lines of $log:"
	else
		_twostep_error "radiusd on 127.0.0.1:$port exited during start-up. Last lines of $log:"
	fi
	tail -n 30 "$log" >&2
	if [ -s "$workdir/radiusd.out" ]; then
		echo "and of $workdir/radiusd.out:" >&2
		tail -n 30 "$workdir/radiusd.out" >&2
	fi
	_twostep_stop_pid "$pid" "$workdir" radiusd "$(_radiusd_timeout 10)"
	rm -f "$workdir/radiusd.pid"
	return 1
}

# radiusd_stop WORKDIR
# Send TERM, on which radiusd detaches its modules and exits. Under
# TWOSTEP_RADIUSD_WRAPPER the wait for the exit is 60 s, not 10 s, so that
# valgrind can finish writing its leak summary.
radiusd_stop() {
	if [ $# -ne 1 ]; then
		_twostep_error "usage: radiusd_stop WORKDIR"
		return 1
	fi
	local workdir
	workdir=$(_twostep_abspath "$1")
	_twostep_stop_pidfile "$workdir/radiusd.pid" "$workdir" radiusd "$(_radiusd_timeout 10)"
}

# stop_all
# Stop every server that this shell started and has not stopped yet, newest
# first, so radiusd goes down before the slapd it uses.
stop_all() {
	local entry reversed=""
	for entry in $_TWOSTEP_PIDS; do
		reversed="$entry $reversed"
	done
	for entry in $reversed; do
		_twostep_stop_pid "${entry%%:*}" "${entry#*:}" server "$(_radiusd_timeout 10)"
		rm -f "${entry#*:}/radiusd.pid" "${entry#*:}/slapd/slapd.pid" 2>/dev/null
	done
	_TWOSTEP_PIDS=""
	return 0
}

#
# RADIUS client
#

# radius_auth PORT ATTRS...
# Send one Access-Request to 127.0.0.1:PORT and print the output of
# `radclient -x`, stderr included. Each ATTR is one "Name = value" string with
# the value quoted as radclient expects (User-Password = "alice-pw").
# Message-Authenticator is always added. Returns 0 when a reply arrived
# within TWOSTEP_RADCLIENT_TIMEOUT seconds (default 3), 1 otherwise.
radius_auth() {
	if [ $# -lt 1 ]; then
		_twostep_error "usage: radius_auth PORT 'Name = value'..."
		return 1
	fi
	local port=$1 input="" attr output
	shift
	for attr in "$@"; do
		input="$input$attr, "
	done
	input="${input}Message-Authenticator = 0x00"

	output=$(printf '%s\n' "$input" |
		radclient -x -r 1 -t "${TWOSTEP_RADCLIENT_TIMEOUT:-3}" "127.0.0.1:$port" auth "$TWOSTEP_RADIUS_SECRET" 2>&1) || true
	printf '%s\n' "$output"
	[ "$(radius_reply_code "$output")" != none ]
}

# Print the lines of radclient output from the received packet on, so the
# attributes of the sent request are not mistaken for reply attributes.
_radius_reply_lines() {
	printf '%s\n' "$1" | sed -n '/^Received /,$p'
}

# radius_reply_code OUTPUT
# Print the code of the reply in radius_auth OUTPUT: Access-Accept,
# Access-Reject, Access-Challenge, or none when no reply arrived.
radius_reply_code() {
	local code
	code=$(printf '%s\n' "$1" | sed -n 's/^Received \(Access-[A-Za-z]*\) .*/\1/p' | head -n 1)
	case "$code" in
	Access-Accept | Access-Reject | Access-Challenge) printf '%s\n' "$code" ;;
	*) echo none ;;
	esac
}

# radius_reply_state OUTPUT
# Print the State of the reply in radius_auth OUTPUT as 0x..., or nothing.
radius_reply_state() {
	_radius_reply_lines "$1" |
		sed -n 's/^[[:space:]]*State = \(0x[0-9a-fA-F]*\)[[:space:]]*$/\1/p' | head -n 1
}

# radius_reply_message OUTPUT
# Print each Reply-Message of the reply in radius_auth OUTPUT on its own line,
# without the quotes that radclient adds.
radius_reply_message() {
	_radius_reply_lines "$1" |
		sed -n 's/^[[:space:]]*Reply-Message = "\(.*\)"[[:space:]]*$/\1/p'
}

#
# Mock SMS gateway
#

TWOSTEP_SMS_GATEWAY="$TWOSTEP_ROOT/tests/mock-sms-gateway.py"
_TWOSTEP_SMS_MODES="accept error500 hang error-body slow"

# Fail unless NAME can be used in the file names of a gateway.
_sms_check_name() {
	case "$1" in
	'' | *[!A-Za-z0-9_.-]* | .*)
		_twostep_error "invalid gateway name '$1': expected letters, digits, '_', '-' or '.', not starting with '.'"
		return 1
		;;
	esac
}

_sms_check_mode() {
	case " $_TWOSTEP_SMS_MODES " in
	*" $1 "*) return 0 ;;
	esac
	_twostep_error "invalid gateway mode '$1': expected one of $_TWOSTEP_SMS_MODES"
	return 1
}

# Print the current time in milliseconds since the epoch.
_twostep_now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# sms_gateway_start WORKDIR NAME PORT MODE [ARGS...]
# Start tests/mock-sms-gateway.py on 127.0.0.1:PORT in MODE (accept, error500,
# hang, error-body or slow) and wait up to 5 s for it to respond to /_health.
# Files: WORKDIR/NAME-outbox.jsonl (the outbox, emptied first), WORKDIR/NAME.log
# (stdout and stderr), WORKDIR/NAME.pid and WORKDIR/NAME.port. ARGS go to the
# gateway unchanged, for example --token TOKEN, --delay SECONDS or --print.
# With PORT 0 the gateway picks a free port. Either way, the port is written
# to WORKDIR/NAME.port and stored in SMS_GATEWAY_PORT.
sms_gateway_start() {
	if [ $# -lt 4 ]; then
		_twostep_error "usage: sms_gateway_start WORKDIR NAME PORT MODE [ARGS...]"
		return 1
	fi
	local workdir name=$2 port=$3 mode=$4 log outbox pidfile portfile pid
	local listen_port="" deadline
	workdir=$(_twostep_abspath "$1")
	shift 4
	_sms_check_name "$name" || return 1
	_sms_check_mode "$mode" || return 1
	if [ "$port" != 0 ]; then
		_twostep_check_port "$port" || return 1
		_twostep_check_port_free tcp "$port" || return 1
	fi
	log="$workdir/$name.log"
	outbox="$workdir/$name-outbox.jsonl"
	pidfile="$workdir/$name.pid"
	portfile="$workdir/$name.port"
	mkdir -p "$workdir" || return 1
	_twostep_check_not_running "$pidfile" "$workdir" "sms gateway $name" || return 1

	: > "$outbox" || return 1
	: > "$log" || return 1
	rm -f "$portfile"
	python3 "$TWOSTEP_SMS_GATEWAY" --port "$port" --mode "$mode" --outbox "$outbox" \
		--ready-file "$portfile" "$@" < /dev/null >> "$log" 2>&1 &
	pid=$!
	echo "$pid" > "$pidfile"
	_twostep_register "$pid" "$workdir"

	deadline=$(($(_twostep_now_ms) + 5000))
	while [ "$(_twostep_now_ms)" -lt "$deadline" ]; do
		if [ -z "$listen_port" ] && [ -s "$portfile" ]; then
			listen_port=$(cat "$portfile")
		fi
		if [ -n "$listen_port" ] &&
			curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$listen_port/_health" &&
			_twostep_pid_listens "$pid" "$listen_port"; then
			# shellcheck disable=SC2034 # read by the caller
			SMS_GATEWAY_PORT=$listen_port
			return 0
		fi
		_twostep_child_running "$pid" || break
		sleep 0.1
	done

	if _twostep_child_running "$pid"; then
		_twostep_error "sms gateway $name on 127.0.0.1:$port did not respond to /_health within 5 s. Last lines of $log:"
	else
		_twostep_error "sms gateway $name on 127.0.0.1:$port exited during start-up. Last lines of $log:"
	fi
	tail -n 20 "$log" >&2
	_twostep_stop_pid "$pid" "$workdir" "sms gateway $name" 5
	rm -f "$pidfile"
	return 1
}

# sms_gateway_stop WORKDIR NAME
# Send TERM to the gateway and wait up to 5 s for it to exit.
sms_gateway_stop() {
	if [ $# -ne 2 ]; then
		_twostep_error "usage: sms_gateway_stop WORKDIR NAME"
		return 1
	fi
	local workdir
	workdir=$(_twostep_abspath "$1")
	_sms_check_name "$2" || return 1
	_twostep_stop_pidfile "$workdir/$2.pid" "$workdir" "sms gateway $2" 5
}

# sms_gateway_set_mode PORT MODE [DELAY]
# Switch the gateway on 127.0.0.1:PORT to MODE, and set the wait of slow mode
# to DELAY seconds when given.
sms_gateway_set_mode() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		_twostep_error "usage: sms_gateway_set_mode PORT MODE [DELAY]"
		return 1
	fi
	local port=$1 mode=$2 url status
	_twostep_check_port "$port" || return 1
	_sms_check_mode "$mode" || return 1
	url="http://127.0.0.1:$port/_mode?set=$mode"
	if [ $# -eq 3 ]; then
		case "$3" in
		'' | *[!0-9.]*)
			_twostep_error "invalid delay '$3': expected seconds, such as 0.5"
			return 1
			;;
		esac
		url="$url&delay=$3"
	fi
	status=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$url") || true
	if [ "$status" != 200 ]; then
		_twostep_error "setting mode $mode on the sms gateway at 127.0.0.1:$port failed (HTTP status ${status:-none})"
		return 1
	fi
}

# sms_outbox_last_code WORKDIR NAME [TO]
# Print the code of the newest message in WORKDIR/NAME-outbox.jsonl, or of
# the newest message to TO (compared as a whole string). Waits up to 3 s for
# such a message, and fails when none arrives or it contains no code. An older
# message counts too: compare sms_outbox_count before and after a step to
# wait for a new one.
sms_outbox_last_code() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		_twostep_error "usage: sms_outbox_last_code WORKDIR NAME [TO]"
		return 1
	fi
	local outbox
	_sms_check_name "$2" || return 1
	outbox="$(_twostep_abspath "$1")/$2-outbox.jsonl"
	python3 - "$outbox" "${3-}" <<'PY'
import json
import sys
import time

outbox, recipient = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 3
while True:
    newest = None
    try:
        with open(outbox, encoding="utf-8") as outbox_file:
            for line in outbox_file:
                # A line without its newline is still being written.
                if not line.endswith("\n"):
                    break
                message = json.loads(line)
                if not recipient or message.get("to") == recipient:
                    newest = message
    except FileNotFoundError:
        pass
    if newest is not None or time.monotonic() >= deadline:
        break
    time.sleep(0.1)

wanted = "a message to " + recipient if recipient else "a message"
if newest is None:
    sys.exit("servers.sh: %s did not arrive in %s within 3 s" % (wanted, outbox))
if not newest.get("code"):
    sys.exit("servers.sh: the newest message to %s in %s contains no code of 4-10 digits: %r"
             % (newest.get("to"), outbox, newest.get("text")))
print(newest["code"])
PY
}

# sms_outbox_count WORKDIR NAME
# Print the number of messages in WORKDIR/NAME-outbox.jsonl.
sms_outbox_count() {
	if [ $# -ne 2 ]; then
		_twostep_error "usage: sms_outbox_count WORKDIR NAME"
		return 1
	fi
	local outbox
	_sms_check_name "$2" || return 1
	outbox="$(_twostep_abspath "$1")/$2-outbox.jsonl"
	if [ ! -f "$outbox" ]; then
		_twostep_error "outbox $outbox not found: start the gateway with sms_gateway_start"
		return 1
	fi
	# Each message is one line, because JSON escapes line breaks inside
	# strings. A line still being written has no newline yet, so wc skips it.
	wc -l < "$outbox" | tr -d ' '
}

# slapd_count_searches WORKDIR
# Print the number of search requests in the slapd log so far, across every
# start of this work folder. The start-up probe sends one search per start,
# so compare counts taken before and after a step. slapd logs each search
# request as 'SRCH base="..." scope=N deref=N filter="..."' and its
# attribute list once more as 'SRCH attr=...'; only the first line is
# counted.
slapd_count_searches() {
	if [ $# -ne 1 ]; then
		_twostep_error "usage: slapd_count_searches WORKDIR"
		return 1
	fi
	local log
	log="$(_twostep_abspath "$1")/slapd/slapd.log"
	if [ ! -f "$log" ]; then
		_twostep_error "slapd log $log not found"
		return 1
	fi
	grep -cE ' SRCH base=".*" scope=[0-9]+ deref=[0-9]+ filter=' "$log" || true
	return 0
}
