#!/usr/bin/env bash
#
# Benchmark rlm_twostep against stock FreeRADIUS modules on 127.0.0.1, as
# docs/performance.md describes. Run it with `make bench`.
#
# One slapd with BENCH_USERS generated users serves four radiusd
# configurations, and a copy of it with dbnosync serves a fifth. All run at
# once and take load in turn:
#   A        rlm_always: accept at once, one round (the ceiling)
#   B        stock rlm_ldap, search and bind as the user, one round
#   C        stock rlm_ldap and rlm_totp with session-state, two rounds
#   D1, D    rlm_twostep, round 1 only (D1) and the whole sign-in (D)
#   DN       D against the slapd with dbnosync ("D nosync")
# Each slapd alone takes a loop of modifies from ldapmodify clients, for the
# rate at which it commits writes, before and after the load runs. Between
# them, the order A B C D1 D DN is repeated BENCH_REPEATS times, each run
# lasting BENCH_SECONDS. Then D, DN and B run once more at 70 % of their
# median throughput, with a rate limit, for the latency target.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS      seconds per load run [15]
#   BENCH_REPEATS      repetitions of the A B C D1 D order [3]
#   BENCH_USERS        users in the directory [300000]
#   BENCH_CONCURRENCY  sign-ins outstanding at once [32]
#   BENCH_WARMUP_SECONDS  seconds of the warm-up run of each configuration [4]
#   BENCH_WRITE_CLIENTS   ldapmodify clients of the write-rate loop [8]
#   BENCH_WRITE_MODIFIES  modifies per client in that loop [1000]
#   BENCH_DOC          Markdown file whose results block is replaced
#                      [docs/performance.md]; empty: print only
#
# Results: build/bench/run/results.tsv (one line per run), writes.txt
# (the write-rate loops), entry.txt (a user's entry after the runs) and
# build/bench/run/results.md, which is also copied into BENCH_DOC between
# its "bench-results" markers.

set -euo pipefail

. "$(dirname "$0")/../lib/servers.sh"
. "$TWOSTEP_ROOT/tests/bench/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_REPEATS=${BENCH_REPEATS:-3}
BENCH_USERS=${BENCH_USERS:-300000}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-32}
BENCH_DOC=${BENCH_DOC-$TWOSTEP_ROOT/docs/performance.md}
BENCH_WRITE_CLIENTS=${BENCH_WRITE_CLIENTS:-8}
BENCH_WRITE_MODIFIES=${BENCH_WRITE_MODIFIES:-1000}

workdir="$TWOSTEP_ROOT/build/bench/run"
results="$workdir/results.tsv"
user_offset=0
calibration_binds=0
calibration_searches=0
calibration_conns=0
calibration_modifies=0

trap stop_all EXIT

# measure LABEL PORT RADIUSD_PID LDAP_PORT SLAPD_PID ROUNDS REPEAT [LOADGEN_OPTION...]
# Run the load generator once and append a line to results.tsv. The line
# has the CPU time that radiusd and its slapd used during the run, the busy
# CPU time of the whole machine, and the LDAP operations that slapd
# completed.
measure() {
	local label=$1 port=$2 radiusd_pid=$3 ldap_port=$4 slapd_pid=$5 rounds=$6 repeat=$7
	shift 7
	local radiusd_cpu0 slapd_cpu0 radiusd_cpu1 slapd_cpu1 binds0 searches0 conns0 modifies0
	local binds1 searches1 conns1 modifies1 busy0 busy1 output line

	radiusd_cpu0=$(bench_cpu_ms "$radiusd_pid")
	slapd_cpu0=$(bench_cpu_ms "$slapd_pid")
	busy0=$(bench_busy_ms)
	read -r binds0 searches0 conns0 modifies0 < <(bench_ldap_counters "$ldap_port")

	output=$("$BENCH_LOADGEN" --server "127.0.0.1:$port" --rounds "$rounds" \
		--concurrency "$BENCH_CONCURRENCY" --max-seconds "$BENCH_SECONDS" \
		--max-logins 100000000 --user-count "$BENCH_USERS" --first-user "$user_offset" \
		--timeout-ms 3000 --retries 0 "$@") || bench_fail "loadgen failed for $label"

	radiusd_cpu1=$(bench_cpu_ms "$radiusd_pid")
	slapd_cpu1=$(bench_cpu_ms "$slapd_pid")
	busy1=$(bench_busy_ms)
	read -r binds1 searches1 conns1 modifies1 < <(bench_ldap_counters "$ldap_port")
	printf '%s\n' "$output" > "$workdir/loadgen-$label-$repeat.txt"

	line=$(printf '%s\n' "$output" | awk -v label="$label" -v repeat="$repeat" -v rounds="$rounds" \
		-v rcpu=$((radiusd_cpu1 - radiusd_cpu0)) -v scpu=$((slapd_cpu1 - slapd_cpu0)) \
		-v binds=$((binds1 - binds0 - calibration_binds)) \
		-v searches=$((searches1 - searches0 - calibration_searches)) \
		-v conns=$((conns1 - conns0 - calibration_conns)) \
		-v modifies=$((modifies1 - modifies0 - calibration_modifies)) -v busy=$((busy1 - busy0)) '
		function field(name,   i, pair) {
			for (i = 1; i <= NF; i++) {
				split($i, pair, "=")
				if (pair[1] == name) return pair[2]
			}
			return ""
		}
		/^config:/ { rate = field("rate") }
		/^round1:/ { r1 = field("reject"); t1 = field("timeout"); a = field("p50_ms") "\t" field("p95_ms") "\t" field("p99_ms") }
		/^round2:/ { r2 = field("reject"); t2 = field("timeout"); b = field("p50_ms") "\t" field("p95_ms") "\t" field("p99_ms") }
		/^result:/ {
			printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				repeat, label, rounds, rate, field("logins_per_s"), field("completed"),
				field("failed"), r1, r2, t1 + t2, a, b, rcpu, scpu, binds, searches, conns,
				field("loadgen_cpu_s"), field("unexpected"), field("late"), modifies, busy
		}')
	printf '%s\n' "$line" >> "$results"
	bench_log "$label run $repeat: $(printf '%s\n' "$output" | sed -n 's/^result: \(logins_per_s=[^ ]*\).*/\1/p')," \
		"radiusd $((radiusd_cpu1 - radiusd_cpu0)) ms, slapd $((slapd_cpu1 - slapd_cpu0)) ms CPU"

	# The next run starts with the next user, so one user signs in again
	# only after all the others.
	local started
	started=$(printf '%s\n' "$output" | sed -n 's/^result: .* started=\([0-9]*\).*/\1/p')
	user_offset=$(((user_offset + started) % BENCH_USERS))
}

# median_rate LABEL
# Print the median sign-ins/s of LABEL's measured runs in results.tsv.
median_rate() {
	awk -F '\t' -v label="$1" '$2 == label && $1 != "warmup" { print $5 }' "$results" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# write_rates WHEN LDAP_PORT SLAPD_PID NOSYNC_PORT NOSYNC_PID
# Append the write-rate loops of both slapds to writes.txt, on the last
# users of the directory.
write_rates() {
	local when=$1 first=$((BENCH_USERS - BENCH_WRITE_CLIENTS * BENCH_WRITE_MODIFIES))

	[ "$first" -ge 0 ] || bench_fail "BENCH_USERS $BENCH_USERS is below BENCH_WRITE_CLIENTS x BENCH_WRITE_MODIFIES"
	{
		echo "sync $when $(bench_write_rate "$2" "$3" "$first" \
			"$BENCH_WRITE_CLIENTS" "$BENCH_WRITE_MODIFIES" "$workdir/writes-sync-$when")"
		echo "nosync $when $(bench_write_rate "$4" "$5" "$first" \
			"$BENCH_WRITE_CLIENTS" "$BENCH_WRITE_MODIFIES" "$workdir/writes-nosync-$when")"
	} >> "$workdir/writes.txt"
	bench_log "modifies of slapd alone (name, when, modifies, seconds, slapd CPU ms):" \
		$(tail -n 2 "$workdir/writes.txt")
}

# print_entry LDAP_PORT USER
# Print the 2SV counters rlm_twostep wrote on user number USER, read as
# the service account.
print_entry() {
	ldapsearch -x -H "ldap://127.0.0.1:$1/" -D "cn=radius,ou=services,dc=example,dc=org" -w radius-pw \
		-b "$(printf 'uid=u%06d,ou=people,dc=example,dc=org' "$2")" -s base -LLL \
		twostepLastStep twostepLastChallenge twostepFailCount twostepLockedUntil |
		awk 'NF { printf "%s%s", sep, $0; sep = "; " } END { print "" }'
}

main() {
	local start_time elapsed port_a port_b port_c port_d port_dn pid_a pid_b pid_c pid_d pid_dn
	local ldap_port slapd_pid nosync_port nosync_pid
	local repeat peak rate binds0 searches0 conns0 modifies0 binds1 searches1 conns1 modifies1
	local d_user="" dn_user=""

	start_time=$(date +%s)
	bench_check_tools
	rm -rf "$workdir"
	mkdir -p "$workdir"

	bench_log "generating $BENCH_USERS users and loading them with slapadd"
	bench_directory_create "$workdir" "$BENCH_USERS"
	bench_directory_clone_nosync "$workdir" "$workdir/nosync"
	bench_log "directory loaded and copied in $(($(date +%s) - start_time)) s"

	ldap_port=$(free_port)
	bench_slapd_launch "$workdir" "$ldap_port"
	slapd_pid=$BENCH_SLAPD_PID
	nosync_port=$(free_port)
	bench_slapd_launch "$workdir/nosync" "$nosync_port"
	nosync_pid=$BENCH_SLAPD_PID

	# The monitor read's own connection, bind and search, subtracted from
	# every run. Both slapds have the same configuration, so the same
	# numbers hold for both.
	read -r binds0 searches0 conns0 modifies0 < <(bench_ldap_counters "$ldap_port")
	read -r binds1 searches1 conns1 modifies1 < <(bench_ldap_counters "$ldap_port")
	calibration_binds=$((binds1 - binds0))
	calibration_searches=$((searches1 - searches0))
	calibration_conns=$((conns1 - conns0))
	calibration_modifies=$((modifies1 - modifies0))

	write_rates before "$ldap_port" "$slapd_pid" "$nosync_port" "$nosync_pid"

	port_a=$(free_port)
	bench_radiusd_start always "$workdir/A" "$port_a" "$ldap_port" || bench_fail "radiusd A did not start"
	pid_a=$BENCH_RADIUSD_PID
	port_b=$(free_port)
	bench_radiusd_start ldap "$workdir/B" "$port_b" "$ldap_port" || bench_fail "radiusd B did not start"
	pid_b=$BENCH_RADIUSD_PID
	port_c=$(free_port)
	bench_radiusd_start ldap-totp "$workdir/C" "$port_c" "$ldap_port" || bench_fail "radiusd C did not start"
	pid_c=$BENCH_RADIUSD_PID
	port_d=$(free_port)
	bench_radiusd_start twostep "$workdir/D" "$port_d" "$ldap_port" || bench_fail "radiusd D did not start"
	pid_d=$BENCH_RADIUSD_PID
	port_dn=$(free_port)
	bench_radiusd_start twostep "$workdir/DN" "$port_dn" "$nosync_port" || bench_fail "radiusd DN did not start"
	pid_dn=$BENCH_RADIUSD_PID
	bench_log "radiusd A=$pid_a B=$pid_b C=$pid_c D=$pid_d DN=$pid_dn, slapd=$slapd_pid, slapd nosync=$nosync_pid"

	# Warm-up: open the LDAP pools and read the database into memory.
	printf 'repeat\tconfig\trounds\trate\tlogins_per_s\tcompleted\tfailed\tr1_rejects\tr2_rejects\ttimeouts\tr1_p50\tr1_p95\tr1_p99\tr2_p50\tr2_p95\tr2_p99\tradiusd_cpu_ms\tslapd_cpu_ms\tbinds\tsearches\tconnections\tloadgen_cpu_s\tunexpected\tlate\tmodifies\tbusy_cpu_ms\n' > "$results"
	local saved_seconds=$BENCH_SECONDS
	BENCH_SECONDS=${BENCH_WARMUP_SECONDS:-4}
	measure A "$port_a" "$pid_a" "$ldap_port" "$slapd_pid" 1 warmup
	measure B "$port_b" "$pid_b" "$ldap_port" "$slapd_pid" 1 warmup
	measure C "$port_c" "$pid_c" "$ldap_port" "$slapd_pid" 2 warmup
	measure D "$port_d" "$pid_d" "$ldap_port" "$slapd_pid" 2 warmup
	measure DN "$port_dn" "$pid_dn" "$nosync_port" "$nosync_pid" 2 warmup
	BENCH_SECONDS=$saved_seconds

	for ((repeat = 1; repeat <= BENCH_REPEATS; repeat++)); do
		measure A "$port_a" "$pid_a" "$ldap_port" "$slapd_pid" 1 "$repeat"
		measure B "$port_b" "$pid_b" "$ldap_port" "$slapd_pid" 1 "$repeat"
		measure C "$port_c" "$pid_c" "$ldap_port" "$slapd_pid" 2 "$repeat"
		measure D1 "$port_d" "$pid_d" "$ldap_port" "$slapd_pid" 1 "$repeat"
		d_user=$user_offset
		measure D "$port_d" "$pid_d" "$ldap_port" "$slapd_pid" 2 "$repeat"
		dn_user=$user_offset
		measure DN "$port_dn" "$pid_dn" "$nosync_port" "$nosync_pid" 2 "$repeat"
	done

	# The first user of the last D and DN runs, as rlm_twostep left them.
	{
		echo "D u$(printf '%06d' "$d_user"): $(print_entry "$ldap_port" "$d_user")"
		echo "DN u$(printf '%06d' "$dn_user"): $(print_entry "$nosync_port" "$dn_user")"
	} > "$workdir/entry.txt"

	# 70 % of the median peak, with enough slots that the rate, not the
	# concurrency, sets the load. B shows the latency spread of this
	# machine at that load without rlm_twostep.
	peak=$(median_rate D)
	rate=$(awk -v p="$peak" 'BEGIN { printf "%d", p * 0.7 }')
	bench_log "D at 70 % of its median peak $peak: $rate sign-ins/s"
	BENCH_CONCURRENCY=$((BENCH_CONCURRENCY * 4)) \
		measure D70 "$port_d" "$pid_d" "$ldap_port" "$slapd_pid" 2 1 --rate "$rate"
	peak=$(median_rate DN)
	rate=$(awk -v p="$peak" 'BEGIN { printf "%d", p * 0.7 }')
	bench_log "DN at 70 % of its median peak $peak: $rate sign-ins/s"
	BENCH_CONCURRENCY=$((BENCH_CONCURRENCY * 4)) \
		measure DN70 "$port_dn" "$pid_dn" "$nosync_port" "$nosync_pid" 2 1 --rate "$rate"
	peak=$(median_rate B)
	rate=$(awk -v p="$peak" 'BEGIN { printf "%d", p * 0.7 }')
	bench_log "B at 70 % of its median peak $peak: $rate sign-ins/s"
	BENCH_CONCURRENCY=$((BENCH_CONCURRENCY * 4)) \
		measure B70 "$port_b" "$pid_b" "$ldap_port" "$slapd_pid" 1 1 --rate "$rate"

	write_rates after "$ldap_port" "$slapd_pid" "$nosync_port" "$nosync_pid"

	# Steady state: LDAP connections held by each radiusd now.
	{
		echo "B $(bench_established "$pid_b" "$ldap_port")"
		echo "C $(bench_established "$pid_c" "$ldap_port")"
		echo "D $(bench_established "$pid_d" "$ldap_port")"
		echo "DN $(bench_established "$pid_dn" "$nosync_port")"
	} > "$workdir/established.txt"

	stop_all
	elapsed=$(($(date +%s) - start_time))
	bench_log "finished in $elapsed s"

	python3 "$TWOSTEP_ROOT/tests/bench/report.py" --results "$results" \
		--established "$workdir/established.txt" --writes "$workdir/writes.txt" \
		--entries "$workdir/entry.txt" --write-clients "$BENCH_WRITE_CLIENTS" --machine <(bench_machine) \
		--seconds "$BENCH_SECONDS" --repeats "$BENCH_REPEATS" --users "$BENCH_USERS" \
		--concurrency "$BENCH_CONCURRENCY" --elapsed "$elapsed" > "$workdir/results.md"
	cat "$workdir/results.md"
	if [ -n "$BENCH_DOC" ]; then
		python3 "$TWOSTEP_ROOT/tests/bench/report.py" --replace-block "$BENCH_DOC" \
			--block "$workdir/results.md"
		bench_log "results written to $BENCH_DOC"
	fi
}

main "$@"
