#!/usr/bin/env bash
#
# Soak test of rlm_twostep: SOAK_LOGINS whole two-round sign-ins against one
# radiusd, on 127.0.0.1, with the benchmark directory of run.sh, then
# SOAK_SETTLE_SECONDS without load, then the same number of sign-ins again.
# Reports radiusd's resident memory (VmRSS) before, after the first load,
# after the pause and after the second load, and the established LDAP
# connections from radiusd to slapd, sampled during and after the load,
# beside the pool sizes of raddb/mods-available/twostep. The pause is longer
# than the 120 s for which rlm_twostep keeps an answered State in its
# replay set, so every entry of the first load has expired before the
# second one starts. Run it with `make bench SOAK=1`.
#
# Environment (defaults in brackets):
#   SOAK_LOGINS        sign-ins [100000]
#   SOAK_MAX_SECONDS   upper bound on the load run [300]
#   SOAK_RATE          sign-ins started per second, 0 for no limit [0]
#   SOAK_SETTLE_SECONDS  pause between the two loads [130]
#   BENCH_USERS        users in the directory [300000]
#   BENCH_CONCURRENCY  sign-ins outstanding at once [32]
#
# Output: build/bench/soak/soak.md, also printed.

set -euo pipefail

. "$(dirname "$0")/../lib/servers.sh"
. "$TWOSTEP_ROOT/tests/bench/lib.sh"

SOAK_LOGINS=${SOAK_LOGINS:-100000}
SOAK_MAX_SECONDS=${SOAK_MAX_SECONDS:-300}
SOAK_RATE=${SOAK_RATE:-0}
SOAK_SETTLE_SECONDS=${SOAK_SETTLE_SECONDS:-130}
BENCH_USERS=${BENCH_USERS:-300000}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-32}

workdir="$TWOSTEP_ROOT/build/bench/soak"
loadgen_pid=""
port=""
ldap_port=""
radiusd_pid=""
conns_peak=0
samples=0

stop_soak() {
	# The load generator stops by itself; this only covers an early exit.
	if [ -n "$loadgen_pid" ]; then
		kill "$loadgen_pid" 2>/dev/null || true
		wait "$loadgen_pid" 2>/dev/null || true
	fi
	stop_all
}
trap stop_soak EXIT

# soak_load FIRST_USER OUTPUT
# Run SOAK_LOGINS sign-ins from user FIRST_USER on, and sample radiusd's
# established LDAP connections every second meanwhile. Sets conns_peak and
# samples.
soak_load() {
	local first=$1 output=$2 count

	"$BENCH_LOADGEN" --server "127.0.0.1:$port" --rounds 2 --concurrency "$BENCH_CONCURRENCY" \
		--max-logins "$SOAK_LOGINS" --max-seconds "$SOAK_MAX_SECONDS" --rate "$SOAK_RATE" \
		--user-count "$BENCH_USERS" --first-user "$first" > "$output" &
	loadgen_pid=$!
	while kill -0 "$loadgen_pid" 2>/dev/null; do
		count=$(bench_established "$radiusd_pid" "$ldap_port")
		[ "$count" -gt "$conns_peak" ] && conns_peak=$count
		samples=$((samples + 1))
		sleep 1
	done
	wait "$loadgen_pid" || bench_fail "loadgen failed"
	loadgen_pid=""
}

main() {
	local slapd_pid rss_before rss_after rss_settled rss_second conns_before conns_after second_first
	local binds0 searches0 conns0 modifies0 binds1 searches1 conns1 modifies1

	bench_check_tools
	rm -rf "$workdir"
	mkdir -p "$workdir"
	bench_log "generating $BENCH_USERS users and loading them with slapadd"
	bench_directory_create "$workdir" "$BENCH_USERS"
	ldap_port=$(free_port)
	bench_slapd_launch "$workdir" "$ldap_port"
	slapd_pid=$BENCH_SLAPD_PID
	port=$(free_port)
	bench_radiusd_start twostep "$workdir/D" "$port" "$ldap_port" || bench_fail "radiusd did not start"
	radiusd_pid=$BENCH_RADIUSD_PID

	# A few sign-ins first, so "before" is a radiusd that has loaded its
	# libraries and opened its first connections.
	"$BENCH_LOADGEN" --server "127.0.0.1:$port" --rounds 2 --concurrency 4 --max-logins 100 \
		--max-seconds 10 --user-count "$BENCH_USERS" --first-user "$((BENCH_USERS - 100))" > "$workdir/warmup.txt"
	rss_before=$(bench_rss_kib "$radiusd_pid")
	conns_before=$(bench_established "$radiusd_pid" "$ldap_port")
	read -r binds0 searches0 conns0 modifies0 < <(bench_ldap_counters "$ldap_port")

	bench_log "soak: $SOAK_LOGINS sign-ins, at most $SOAK_MAX_SECONDS s"
	soak_load 0 "$workdir/loadgen.txt"
	rss_after=$(bench_rss_kib "$radiusd_pid")
	conns_after=$(bench_established "$radiusd_pid" "$ldap_port")
	read -r binds1 searches1 conns1 modifies1 < <(bench_ldap_counters "$ldap_port")

	bench_log "soak: waiting $SOAK_SETTLE_SECONDS s without load"
	sleep "$SOAK_SETTLE_SECONDS"
	rss_settled=$(bench_rss_kib "$radiusd_pid")

	# The second load takes the users after the first, so no user signs in
	# twice in one TOTP step.
	second_first=$((SOAK_LOGINS % BENCH_USERS))
	bench_log "soak: $SOAK_LOGINS sign-ins again"
	soak_load "$second_first" "$workdir/loadgen-2.txt"
	rss_second=$(bench_rss_kib "$radiusd_pid")

	{
		echo "Soak (tests/bench/soak.sh): $SOAK_LOGINS two-round sign-ins against one radiusd with rlm_twostep, $BENCH_CONCURRENCY outstanding, then $SOAK_SETTLE_SECONDS s without load, then $SOAK_LOGINS sign-ins again."
		echo
		echo '```'
		cat "$workdir/loadgen.txt"
		echo '```'
		echo
		echo 'Second load:'
		echo
		echo '```'
		cat "$workdir/loadgen-2.txt"
		echo '```'
		echo
		echo "- radiusd VmRSS before: $rss_before KiB; after the first load: $rss_after KiB ($((rss_after - rss_before)) KiB more); after $SOAK_SETTLE_SECONDS s without load: $rss_settled KiB ($((rss_settled - rss_after)) KiB more); after the second load: $rss_second KiB ($((rss_second - rss_settled)) KiB more)"
		echo "- established LDAP connections from radiusd: before $conns_before, peak $conns_peak over $samples one-second samples of both loads, after the first load $conns_after; pools: search min 2 max 32, bind min 2 max 32"
		echo "- slapd during the first load: $((conns1 - conns0 - 1)) connections accepted, $((binds1 - binds0 - 1)) binds, $((searches1 - searches0 - 1)) searches, $((modifies1 - modifies0)) modifies (the monitor read's own connection, bind and search are subtracted)"
		echo "- slapd PID $slapd_pid, radiusd PID $radiusd_pid"
	} > "$workdir/soak.md"
	cat "$workdir/soak.md"
}

main "$@"
