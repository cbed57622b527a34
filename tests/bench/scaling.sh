#!/usr/bin/env bash
#
# Measure how rlm_twostep's two-round sign-ins per second change with the
# worker threads of radiusd and with a second radiusd that shares the State
# key and the slapd, on 127.0.0.1, as docs/scaling.md describes. It uses
# the benchmark directory, slapd and load generator of tests/bench/run.sh.
#
# Two slapds serve the same generated directory: the default (each commit
# flushed to disk) and a copy with dbnosync. Against each, it starts:
#   tN    one radiusd whose thread pool has N workers, for N in
#         SCALING_THREADS (start_servers = max_servers = max_spare_servers
#         = N, so the pool does not grow or shrink during a run)
#   p2    a second radiusd with 16 workers and the State key of t16
# and runs, in this order, SCALING_REPEATS times:
#   tN    one load generator, BENCH_CONCURRENCY sign-ins outstanding, to tN
#   one2  two load generators, half the sign-ins outstanding each, both to t16
#   two   two load generators, half the sign-ins outstanding each, one to
#         t16 and one to p2
# one2 and two differ only in the number of radiusd. The two load
# generators of a run take distinct users.
#
# Environment (defaults in brackets):
#   SCALING_SECONDS    seconds per load run [10]
#   SCALING_REPEATS    repetitions of the order [2]
#   SCALING_THREADS    worker threads of the tN instances ["4 8 16 32"]
#   BENCH_USERS        users in the directory [300000]
#   BENCH_CONCURRENCY  sign-ins outstanding in each run, in total [32]
#
# The module's LDAP pools (max 32 each, raddb/mods-available/twostep) are
# at least the largest thread count, so no worker waits for a connection.
#
# Output: build/bench/scaling/results.tsv (one line per run), writes.txt
# (modifies, seconds and slapd CPU ms of each slapd alone) and results.md
# (printed too).

set -euo pipefail

. "$(dirname "$0")/../lib/servers.sh"
. "$TWOSTEP_ROOT/tests/bench/lib.sh"

SCALING_SECONDS=${SCALING_SECONDS:-10}
SCALING_REPEATS=${SCALING_REPEATS:-2}
SCALING_THREADS=${SCALING_THREADS:-"4 8 16 32"}
BENCH_USERS=${BENCH_USERS:-300000}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-32}

# Sign-ins that one load generator of a two-generator run may start, a
# fifth of the users (60,000 of the default 300,000). The
# second generator starts this many users after the first, so their users
# never overlap.
SPLIT_LOGINS=$((BENCH_USERS / 5))

workdir="$TWOSTEP_ROOT/build/bench/scaling"
results="$workdir/results.tsv"
user_offset=0
loadgen_pids=()

stop_scaling() {
	# The load generators stop by themselves, so this matters only on an
	# early exit.
	local pid
	for pid in "${loadgen_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	stop_all
}
trap stop_scaling EXIT

# Print the cumulative busy and iowait time of all CPUs, in milliseconds,
# from /proc/stat: "BUSY IOWAIT". Busy is user, nice, system, irq and
# softirq, as in bench_busy_ms.
cpu_busy_iowait_ms() {
	awk -v tck="$CLK_TCK" '/^cpu / { printf "%d %d\n", ($2 + $3 + $4 + $7 + $8) * 1000 / tck, $6 * 1000 / tck }' /proc/stat
}

# scaling_radiusd_start WORKDIR PORT LDAP_PORT THREADS [KEY_FROM]
# Start a radiusd with the shipped module and site and a fixed pool of
# THREADS workers. With KEY_FROM, a work folder of an earlier radiusd, it
# gets that radiusd's State key, as tests/integration/cluster.sh does.
# Sets SCALING_RADIUSD_PID.
scaling_radiusd_start() {
	local dir=$1 port=$2 ldap_port=$3 threads=$4 key_from=${5:-}
	local key_path=raddb/mods-config/twostep/state-1.key

	radiusd_build_config "$dir" "$port" "ldap://127.0.0.1:$ldap_port/" || return 1
	sed -i -e "s/^\([[:space:]]*start_servers[[:space:]]*=\).*/\1 $threads/" \
		-e "s/^\([[:space:]]*max_servers[[:space:]]*=\).*/\1 $threads/" \
		-e "s/^\([[:space:]]*max_spare_servers[[:space:]]*=\).*/\1 $threads/" \
		"$dir/raddb/radiusd.conf"
	grep -q "^[[:space:]]*max_servers = $threads\$" "$dir/raddb/radiusd.conf" ||
		bench_fail "setting max_servers = $threads in $dir/raddb/radiusd.conf failed"
	if [ -n "$key_from" ]; then
		cp "$key_from/$key_path" "$dir/$key_path" ||
			bench_fail "copying the State key of $key_from to $dir failed"
		chmod 0600 "$dir/$key_path"
	fi
	RADIUSD_DEBUG="" radiusd_launch "$dir" "$port" || return 1
	SCALING_RADIUSD_PID=$(cat "$dir/radiusd.pid")
}

# loadgen_field FILE PREFIX NAME
# Print VALUE of NAME=VALUE on the line of FILE, a loadgen output, that
# starts with "PREFIX:".
loadgen_field() {
	local file=$1 prefix=$2 name=$3
	sed -n "s/^$prefix: .*\<$name=\([^ ]*\).*/\1/p" "$file"
}

# measure LABEL MODE SLAPD_PID LDAP_PORT "RADIUSD_PIDS" REPEAT PORT [PORT]
# Run one load generator per PORT at once, for SCALING_SECONDS, with
# BENCH_CONCURRENCY sign-ins outstanding in total, and append a line to
# results.tsv: sign-ins/s of all generators together, the CPU time of the
# listed radiusd and of slapd, the machine's busy and iowait time, the
# loadgens' own CPU, slapd's modifies, and each generator's p50 and p99
# per round.
measure() {
	local label=$1 mode=$2 slapd_pid=$3 ldap_port=$4 radiusd_pids=$5 repeat=$6
	shift 6
	local ports=("$@") generators=$# concurrency max_logins index pid first started
	local radiusd0=0 radiusd1=0 slapd0 slapd1 busy0 iowait0 busy1 iowait1 start_ns end_ns
	local modifies0 modifies1 failed=0 outputs=() line
	local logins_per_s=0 completed=0 failed_logins=0 rejects=0 timeouts=0 loadgen_cpu=0 advance=0
	local latencies=""

	concurrency=$((BENCH_CONCURRENCY / generators))
	if [ "$generators" -gt 1 ]; then max_logins=$SPLIT_LOGINS; else max_logins=100000000; fi

	for pid in $radiusd_pids; do radiusd0=$((radiusd0 + $(bench_cpu_ms "$pid"))); done
	slapd0=$(bench_cpu_ms "$slapd_pid")
	read -r busy0 iowait0 < <(cpu_busy_iowait_ms)
	read -r _ _ _ modifies0 < <(bench_ldap_counters "$ldap_port")
	start_ns=$(date +%s%N)

	loadgen_pids=()
	for ((index = 0; index < generators; index++)); do
		first=$(((user_offset + index * SPLIT_LOGINS) % BENCH_USERS))
		outputs+=("$workdir/loadgen-$mode-$label-$repeat-$index.txt")
		timeout $((SCALING_SECONDS + 30)) "$BENCH_LOADGEN" --server "127.0.0.1:${ports[$index]}" \
			--rounds 2 --concurrency "$concurrency" --max-seconds "$SCALING_SECONDS" \
			--max-logins "$max_logins" --user-count "$BENCH_USERS" --first-user "$first" \
			--timeout-ms 3000 --retries 0 > "${outputs[$index]}" &
		loadgen_pids+=($!)
	done
	for pid in "${loadgen_pids[@]}"; do
		wait "$pid" || failed=1
	done
	loadgen_pids=()
	[ "$failed" -eq 0 ] || bench_fail "a load generator failed or timed out in $mode $label run $repeat, see ${outputs[*]}"

	end_ns=$(date +%s%N)
	for pid in $radiusd_pids; do radiusd1=$((radiusd1 + $(bench_cpu_ms "$pid"))); done
	slapd1=$(bench_cpu_ms "$slapd_pid")
	read -r busy1 iowait1 < <(cpu_busy_iowait_ms)
	read -r _ _ _ modifies1 < <(bench_ldap_counters "$ldap_port")

	for ((index = 0; index < generators; index++)); do
		logins_per_s=$(awk -v a="$logins_per_s" -v b="$(loadgen_field "${outputs[$index]}" result logins_per_s)" 'BEGIN { print a + b }')
		completed=$((completed + $(loadgen_field "${outputs[$index]}" result completed)))
		failed_logins=$((failed_logins + $(loadgen_field "${outputs[$index]}" result failed)))
		rejects=$((rejects + $(loadgen_field "${outputs[$index]}" round1 reject) + $(loadgen_field "${outputs[$index]}" round2 reject)))
		timeouts=$((timeouts + $(loadgen_field "${outputs[$index]}" round1 timeout) + $(loadgen_field "${outputs[$index]}" round2 timeout)))
		loadgen_cpu=$(awk -v a="$loadgen_cpu" -v b="$(loadgen_field "${outputs[$index]}" result loadgen_cpu_s)" 'BEGIN { print a + b }')
		latencies+="$(loadgen_field "${outputs[$index]}" round1 p50_ms),$(loadgen_field "${outputs[$index]}" round1 p99_ms),"
		latencies+="$(loadgen_field "${outputs[$index]}" round2 p50_ms),$(loadgen_field "${outputs[$index]}" round2 p99_ms);"
		started=$(loadgen_field "${outputs[$index]}" result started)
		if [ "$generators" -gt 1 ] && [ "$started" -ge "$SPLIT_LOGINS" ]; then
			bench_log "warning: $mode $label run $repeat: a load generator reached its cap of $SPLIT_LOGINS sign-ins before $SCALING_SECONDS s"
		fi
		advance=$((index * SPLIT_LOGINS + started))
	done
	# The next run starts after the last user of this one, so a user signs
	# in again only after the offset went once around all users.
	user_offset=$(((user_offset + advance) % BENCH_USERS))

	line=$(printf '%s\t' "$repeat" "$mode" "$label" "$generators" "$logins_per_s" "$completed" \
		"$failed_logins" "$rejects" "$timeouts" "$((radiusd1 - radiusd0))" "$((slapd1 - slapd0))" \
		"$((busy1 - busy0))" "$((iowait1 - iowait0))" "$loadgen_cpu" "$((modifies1 - modifies0))" \
		"$(((end_ns - start_ns) / 1000000))")
	printf '%s%s\n' "$line" "${latencies%;}" >> "$results"
	bench_log "$mode $label run $repeat: $logins_per_s sign-ins/s, radiusd $((radiusd1 - radiusd0)) ms," \
		"slapd $((slapd1 - slapd0)) ms CPU, $failed_logins failed"
}

# run_order MODE SLAPD_PID LDAP_PORT REPEAT
# Run every configuration against one slapd once.
run_order() {
	local mode=$1 slapd_pid=$2 ldap_port=$3 repeat=$4 threads var

	for threads in $SCALING_THREADS; do
		var="${mode}_t${threads}"
		measure "t$threads" "$mode" "$slapd_pid" "$ldap_port" "${PIDS[$var]}" "$repeat" "${PORTS[$var]}"
	done
	measure one2 "$mode" "$slapd_pid" "$ldap_port" "${PIDS[${mode}_t16]}" "$repeat" \
		"${PORTS[${mode}_t16]}" "${PORTS[${mode}_t16]}"
	measure two "$mode" "$slapd_pid" "$ldap_port" "${PIDS[${mode}_t16]} ${PIDS[${mode}_p2]}" "$repeat" \
		"${PORTS[${mode}_t16]}" "${PORTS[${mode}_p2]}"
}

declare -A PIDS PORTS

main() {
	local start_time mode threads var repeat ldap_port slapd_pid write_first
	local -A slapd_pids ldap_ports

	start_time=$(date +%s)
	case " $SCALING_THREADS " in
	*" 16 "*) ;;
	*) bench_fail "SCALING_THREADS must contain 16: the two-instance runs use the 16-thread radiusd" ;;
	esac
	bench_check_tools
	rm -rf "$workdir"
	mkdir -p "$workdir"

	bench_log "generating $BENCH_USERS users and loading them with slapadd"
	bench_directory_create "$workdir/sync" "$BENCH_USERS"
	bench_directory_clone_nosync "$workdir/sync" "$workdir/nosync"

	for mode in sync nosync; do
		ldap_ports[$mode]=$(free_port)
		bench_slapd_launch "$workdir/$mode" "${ldap_ports[$mode]}"
		slapd_pids[$mode]=$BENCH_SLAPD_PID
	done

	# The write rate of each slapd alone, on the last 8,000 users. It runs
	# before the load, so its modifies (twostepFailCount set to 0) do not
	# race with sign-ins.
	write_first=$((BENCH_USERS - 8000))
	for mode in sync nosync; do
		echo "$mode $(bench_write_rate "${ldap_ports[$mode]}" "${slapd_pids[$mode]}" "$write_first" 8 1000 "$workdir/writes-$mode")" \
			>> "$workdir/writes.txt"
	done
	bench_log "modifies of slapd alone (mode, modifies, seconds, slapd CPU ms): $(tr '\n' ';' < "$workdir/writes.txt")"

	for mode in sync nosync; do
		for threads in $SCALING_THREADS; do
			var="${mode}_t${threads}"
			PORTS[$var]=$(free_port)
			scaling_radiusd_start "$workdir/$mode/t$threads" "${PORTS[$var]}" "${ldap_ports[$mode]}" "$threads" ||
				bench_fail "radiusd $var did not start"
			PIDS[$var]=$SCALING_RADIUSD_PID
		done
		var="${mode}_p2"
		PORTS[$var]=$(free_port)
		scaling_radiusd_start "$workdir/$mode/p2" "${PORTS[$var]}" "${ldap_ports[$mode]}" 16 "$workdir/$mode/t16" ||
			bench_fail "radiusd $var did not start"
		PIDS[$var]=$SCALING_RADIUSD_PID
	done

	printf 'repeat\tmode\tconfig\tgenerators\tlogins_per_s\tcompleted\tfailed\trejects\ttimeouts\tradiusd_cpu_ms\tslapd_cpu_ms\tbusy_ms\tiowait_ms\tloadgen_cpu_s\tmodifies\telapsed_ms\tlatencies\n' > "$results"

	# Warm-up: open the LDAP pools of every radiusd and read the database
	# into memory.
	local saved_seconds=$SCALING_SECONDS
	SCALING_SECONDS=3
	for mode in sync nosync; do
		for var in "${!PIDS[@]}"; do
			case "$var" in "${mode}"_*) ;; *) continue ;; esac
			measure "${var#"${mode}"_}" "$mode" "${slapd_pids[$mode]}" "${ldap_ports[$mode]}" "${PIDS[$var]}" warmup "${PORTS[$var]}"
		done
	done
	SCALING_SECONDS=$saved_seconds

	for ((repeat = 1; repeat <= SCALING_REPEATS; repeat++)); do
		for mode in sync nosync; do
			run_order "$mode" "${slapd_pids[$mode]}" "${ldap_ports[$mode]}" "$repeat"
		done
	done

	stop_all
	bench_log "finished in $(($(date +%s) - start_time)) s"
	scaling_report > "$workdir/results.md"
	cat "$workdir/results.md"
}

# Print results.tsv as Markdown: every run, then the mean of the repeats.
scaling_report() {
	python3 - "$results" "$workdir/writes.txt" "$SCALING_SECONDS" "$SCALING_REPEATS" "$BENCH_CONCURRENCY" "$(nproc)" <<'PY'
import csv
import statistics
import sys

results, writes, seconds, repeats, concurrency, cpus = sys.argv[1:7]
cpus = int(cpus)
rows = [row for row in csv.DictReader(open(results, encoding="utf-8"), delimiter="\t")
        if row["repeat"] != "warmup"]


def derived(row):
    # max(1, ...) keeps a run in which nothing completed from dividing by 0.
    completed = max(1, int(row["completed"]))
    elapsed_s = int(row["elapsed_ms"]) / 1000
    latencies = [[float(v) for v in part.split(",")] for part in row["latencies"].split(";")]
    return {
        "rate": float(row["logins_per_s"]),
        "radiusd": int(row["radiusd_cpu_ms"]) / completed,
        "slapd": int(row["slapd_cpu_ms"]) / completed,
        "busy": int(row["busy_ms"]) / 1000 / elapsed_s / cpus * 100,
        "iowait": int(row["iowait_ms"]) / 1000 / elapsed_s / cpus * 100,
        "modifies": int(row["modifies"]) / completed,
        "failed": int(row["failed"]),
        "r1p50": max(l[0] for l in latencies), "r1p99": max(l[1] for l in latencies),
        "r2p50": max(l[2] for l in latencies), "r2p99": max(l[3] for l in latencies),
    }


names = {"one2": "one radiusd (t16), 2 load generators", "two": "two radiusd (t16 + p2), 2 load generators"}
order = []
for row in rows:
    key = (row["mode"], row["config"])
    if key not in order:
        order.append(key)

print(f"Measured by tests/bench/scaling.sh: {seconds} s per run, {repeats} repetitions, "
      f"{concurrency} sign-ins outstanding in total, {cpus} CPUs.")
print()
print("slapd alone, 8 ldapmodify clients at once, 1,000 modifies each:")
print()
for line in open(writes, encoding="utf-8"):
    mode, modifies, secs, cpu = line.split()
    print(f"- {mode}: {int(modifies) / float(secs):.0f} modifies/s, "
          f"{int(cpu) / int(modifies):.3f} ms slapd CPU per modify")
print()
print("Means of the repetitions. CPU in ms per sign-in; busy and iowait in % of all CPUs; "
      "latencies in ms, the larger of the two load generators where there are two.")
print()
print("| slapd | radiusd | sign-ins/s | radiusd CPU | slapd CPU | total CPU | machine busy | iowait "
      "| round 1 p50 / p99 | round 2 p50 / p99 | modifies/sign-in | failed |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
for mode, config in order:
    runs = [derived(r) for r in rows if (r["mode"], r["config"]) == (mode, config)]
    mean = {k: statistics.mean(run[k] for run in runs) for k in runs[0]}
    name = names.get(config, f"one radiusd, {config[1:]} threads")
    slapd = "default" if mode == "sync" else "dbnosync"
    print(f"| {slapd} | {name} | {mean['rate']:.0f} | {mean['radiusd']:.3f} | {mean['slapd']:.3f} "
          f"| {mean['radiusd'] + mean['slapd']:.3f} | {mean['busy']:.0f} | {mean['iowait']:.0f} "
          f"| {mean['r1p50']:.2f} / {mean['r1p99']:.2f} | {mean['r2p50']:.2f} / {mean['r2p99']:.2f} "
          f"| {mean['modifies']:.2f} | {sum(run['failed'] for run in runs)} |")
print()
print("Every run:")
print()
print("| repeat | slapd | config | sign-ins/s | total CPU ms/sign-in | machine busy % |")
print("|---|---|---|---:|---:|---:|")
for row in rows:
    d = derived(row)
    print(f"| {row['repeat']} | {row['mode']} | {row['config']} | {d['rate']:.0f} "
          f"| {d['radiusd'] + d['slapd']:.3f} | {d['busy']:.0f} |")
PY
}

main "$@"