# shellcheck shell=bash
#
# Shared steps of tests/bench/run.sh and tests/bench/soak.sh: the benchmark
# directory, its slapd, the radiusd configurations and the counters read
# around each load run. Source it after tests/lib/servers.sh, whose
# functions (free_port, radiusd_build_config, radiusd_launch, stop_all...)
# start and stop the servers.

BENCH_DIR="$TWOSTEP_ROOT/tests/bench"
BENCH_LOADGEN="$TWOSTEP_ROOT/build/bench/loadgen"
CLK_TCK=$(getconf CLK_TCK)

bench_log() {
	printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_fail() {
	bench_log "error: $*"
	exit 1
}

# bench_check_tools
# Fail unless the module, the load generator and the stock rlm_ldap exist.
# rlm_ldap is in Debian's freeradius-ldap package, which make deps does not
# install; as root it is installed here.
bench_check_tools() {
	[ -x "$BENCH_LOADGEN" ] || bench_fail "$BENCH_LOADGEN not found: run 'make bench'"
	[ -f "$TWOSTEP_ROOT/build/rlm_twostep.so" ] || bench_fail "build/rlm_twostep.so not found: run 'make'"
	if [ ! -f /usr/lib/freeradius/rlm_ldap.so ]; then
		if [ "$(id -u)" -ne 0 ]; then
			bench_fail "/usr/lib/freeradius/rlm_ldap.so not found: install the freeradius-ldap package as root"
		fi
		bench_log "installing freeradius-ldap for the stock rlm_ldap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends freeradius-ldap >&2 ||
			bench_fail "apt-get install freeradius-ldap failed"
	fi
}

# bench_directory_create WORKDIR USERS
# Write WORKDIR/slapd/slapd.conf (ldap/slapd.conf.in, plus loglevel 0 and a
# monitor database readable by the rootdn) and load the demo entries and
# USERS benchmark users with slapadd.
bench_directory_create() {
	local workdir=$1 users=$2 dir="$1/slapd" deadline

	rm -rf "$dir"
	mkdir -p "$dir/db"
	_slapd_write_conf "$workdir"
	# Without logging, so slapd's CPU time is its work on requests. The
	# monitor database counts operations and connections.
	cat >> "$dir/slapd.conf" <<'EOF'

# Added by tests/bench/lib.sh.
loglevel	0
database	monitor
access to dn.subtree="cn=Monitor"
	by dn.exact="cn=admin,dc=example,dc=org" read
	by * none
EOF
	deadline=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
	sed -e "s/@ENROLL_DEADLINE@/$deadline/g" "$TWOSTEP_ROOT/ldap/demo.ldif" > "$dir/base.ldif"
	python3 "$BENCH_DIR/gen-users.py" --base "$dir/base.ldif" --count "$users" > "$dir/bench.ldif" ||
		bench_fail "gen-users.py failed"
	if ! slapadd -q -f "$dir/slapd.conf" -l "$dir/bench.ldif" > "$dir/slapadd.log" 2>&1; then
		tail -n 20 "$dir/slapadd.log" >&2
		bench_fail "slapadd of $dir/bench.ldif failed"
	fi
	rm -f "$dir/bench.ldif"
}

# bench_directory_clone_nosync WORKDIR DEST
# Copy the database and slapd.conf of bench_directory_create in WORKDIR to
# DEST/slapd, with dbnosync added to the mdb database, so LMDB commits a
# write without flushing it to disk (fsync). Everything else stays the
# same. Call it before the slapd of WORKDIR starts, so the copy is
# consistent.
bench_directory_clone_nosync() {
	local src="$1/slapd" dest="$2/slapd"

	rm -rf "$dest"
	mkdir -p "$dest/db"
	# data.mdb is a sparse file of maxsize bytes; lock.mdb is rebuilt by slapd.
	cp --sparse=always "$src/db/data.mdb" "$dest/db/data.mdb" ||
		bench_fail "copying $src/db/data.mdb to $dest/db failed"
	sed -e "s|$src/|$dest/|g" -e '/^directory[[:space:]]/a dbnosync' "$src/slapd.conf" > "$dest/slapd.conf"
	grep -q '^dbnosync' "$dest/slapd.conf" || bench_fail "no directory line in $src/slapd.conf to add dbnosync after"
}

# bench_slapd_launch WORKDIR PORT
# Start slapd on the database of bench_directory_create, in the foreground
# without debug output, and wait until it answers. Sets BENCH_SLAPD_PID.
bench_slapd_launch() {
	local workdir=$1 port=$2 dir="$1/slapd" uri="ldap://127.0.0.1:$2/" i

	_twostep_check_port_free tcp "$port" || return 1
	/usr/sbin/slapd -f "$dir/slapd.conf" -h "$uri" -d 0 < /dev/null > "$dir/slapd.log" 2>&1 &
	BENCH_SLAPD_PID=$!
	echo "$BENCH_SLAPD_PID" > "$dir/slapd.pid"
	_twostep_register "$BENCH_SLAPD_PID" "$workdir"
	for ((i = 0; i < 100; i++)); do
		if _twostep_pid_listens "$BENCH_SLAPD_PID" "$port" &&
			ldapsearch -x -H "$uri" -o nettimeout=1 -b "" -s base -LLL 1.1 > /dev/null 2>&1; then
			return 0
		fi
		_twostep_pid_alive "$BENCH_SLAPD_PID" "$workdir" || break
		sleep 0.1
	done
	tail -n 20 "$dir/slapd.log" >&2
	bench_fail "slapd on $uri did not start"
}

# bench_radiusd_start NAME WORKDIR PORT LDAP_PORT
# Start radiusd for configuration NAME: "twostep" (the shipped module and
# site, configuration D) or one of tests/bench/raddb/site-NAME with
# tests/bench/raddb/mods-stock. All get the thread pool that servers.sh
# writes, and no debug output. Sets BENCH_RADIUSD_PID. Call it in the
# script's own shell, not in $(...), so stop_all can stop the server.
bench_radiusd_start() {
	local name=$1 workdir=$2 port=$3 ldap_port=$4 raddb="$2/raddb"

	radiusd_build_config "$workdir" "$port" "ldap://127.0.0.1:$ldap_port/" || return 1
	if [ "$name" != twostep ]; then
		rm -f "$raddb/mods-enabled/twostep" "$raddb/sites-enabled/twostep"
		sed -e "s/@LDAP_PORT@/$ldap_port/" "$BENCH_DIR/raddb/mods-stock" > "$raddb/mods-enabled/stock"
		sed -e "s/@PORT@/$port/" "$BENCH_DIR/raddb/site-$name" > "$raddb/sites-enabled/bench"
	fi
	RADIUSD_DEBUG="" radiusd_launch "$workdir" "$port" || return 1
	BENCH_RADIUSD_PID=$(cat "$workdir/radiusd.pid")
}

# bench_cpu_ms PID
# Print the user plus system CPU time of PID, all threads, in milliseconds.
bench_cpu_ms() {
	local fields
	# Fields after "PID (comm) ": utime and stime are the 12th and 13th.
	fields=$(sed -e 's/^.*) //' "/proc/$1/stat") || return 1
	echo "$fields" | awk -v tck="$CLK_TCK" '{ printf "%d\n", ($12 + $13) * 1000 / tck }'
}

# bench_busy_ms
# Print the CPU time all CPUs of the machine spent busy (user, nice, system,
# irq and softirq in /proc/stat), in milliseconds.
bench_busy_ms() {
	awk -v tck="$CLK_TCK" '/^cpu / { printf "%d\n", ($2 + $3 + $4 + $7 + $8) * 1000 / tck }' /proc/stat
}

# bench_rss_kib PID
bench_rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# bench_ldap_counters LDAP_PORT
# Print "BINDS SEARCHES CONNECTIONS MODIFIES": completed bind, search and
# modify operations (successful or not) and connections accepted since
# slapd started, from the monitor database. The read itself adds one
# connection, one bind and one search.
bench_ldap_counters() {
	ldapsearch -x -H "ldap://127.0.0.1:$1/" -D "cn=admin,dc=example,dc=org" -w admin-pw \
		-b cn=Monitor -LLL '(|(cn=Bind)(cn=Search)(cn=Modify)(cn=Total))' monitorOpCompleted monitorCounter |
		awk '
			/^dn: cn=Bind,cn=Operations,/ { key = "bind" }
			/^dn: cn=Search,cn=Operations,/ { key = "search" }
			/^dn: cn=Modify,cn=Operations,/ { key = "modify" }
			/^dn: cn=Total,cn=Connections,/ { key = "conns" }
			/^(monitorOpCompleted|monitorCounter): / { value[key] = $2 }
			END { printf "%d %d %d %d\n", value["bind"], value["search"], value["conns"], value["modify"] }'
}

# bench_write_rate LDAP_PORT SLAPD_PID FIRST_USER CLIENTS MODIFIES OUTDIR
# Measure how many modifies per second slapd commits on its own: CLIENTS
# ldapmodify processes at once, each bound as the service account on one
# connection, send MODIFIES modifies one after another, each replacing
# twostepFailCount with 0 (no wrong codes, which rlm_twostep treats like no
# value) on its own user, from user FIRST_USER on. Print "MODIFIES SECONDS
# SLAPD_CPU_MS" for all clients together. Each client has 120 s.
bench_write_rate() {
	local port=$1 slapd_pid=$2 first=$3 clients=$4 modifies=$5 outdir=$6
	local client i start end cpu0 cpu1 pids=() failed=0

	mkdir -p "$outdir"
	for ((client = 0; client < clients; client++)); do
		for ((i = 0; i < modifies; i++)); do
			printf 'dn: uid=u%06d,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: twostepFailCount\ntwostepFailCount: 0\n\n' \
				$((first + client * modifies + i))
		done > "$outdir/client-$client.ldif"
	done

	cpu0=$(bench_cpu_ms "$slapd_pid")
	start=$(date +%s%N)
	for ((client = 0; client < clients; client++)); do
		timeout 120 ldapmodify -x -H "ldap://127.0.0.1:$port/" \
			-D "cn=radius,ou=services,dc=example,dc=org" -w radius-pw \
			-f "$outdir/client-$client.ldif" > "$outdir/client-$client.log" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || failed=1
	done
	end=$(date +%s%N)
	cpu1=$(bench_cpu_ms "$slapd_pid")
	if [ "$failed" -ne 0 ]; then
		tail -n 5 "$outdir"/client-*.log >&2
		bench_fail "ldapmodify against 127.0.0.1:$port failed or timed out, see $outdir"
	fi
	awk -v n=$((clients * modifies)) -v ns=$((end - start)) -v cpu=$((cpu1 - cpu0)) \
		'BEGIN { printf "%d %.3f %d\n", n, ns / 1e9, cpu }'
}

# bench_established PID LDAP_PORT
# Print the number of established TCP connections from process PID to
# 127.0.0.1:LDAP_PORT.
bench_established() {
	ss -Htnp state established "( dport = :$2 )" 2>/dev/null | grep -cF "pid=$1," || true
}

# bench_machine
# Print the machine and package versions as Markdown list items.
bench_machine() {
	local model memory
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "- CPUs (nproc): $(nproc), model: $model"
	echo "- memory: $memory"
	echo "- kernel: $(uname -sr)"
	echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
	dpkg-query -W -f='- package: ${Package} ${Version}\n' freeradius freeradius-ldap slapd liboath0 libssl3 2>/dev/null
}
