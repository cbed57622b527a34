#!/usr/bin/env bash
#
# Memory check of rlm_twostep inside a real radiusd: radiusd runs under
# valgrind's memcheck with build/rlm_twostep.so loaded, against a real slapd on
# 127.0.0.1, and gets one request down each path of the module. radiusd is
# then stopped with TERM, on which it detaches the module and exits, and
# valgrind's log is checked.
#
# The test fails on any memory error (invalid read or write, use of an
# uninitialised value, invalid free), wherever its stack lies, because a
# module bug can surface in FreeRADIUS code. It also fails on any definitely
# or indirectly lost block whose stack contains a frame of the module. Leaks
# whose stacks lie only in FreeRADIUS, libldap, OpenSSL, GnuTLS or other
# libraries are counted and listed, but do not fail the test. Reports that
# are known not to be the module's are suppressed by
# tests/integration/valgrind.supp, which gives the reason for each.
#
# Usage: tests/integration/valgrind.sh
# The last line of output is "N passed, N failed", and the exit status is 1
# when any check failed. Logs are kept in build/test/valgrind.* on failure.

set -u

INTEGRATION_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$INTEGRATION_DIR/../.." && pwd)
SERVERS_LIB="$REPO_ROOT/tests/lib/servers.sh"
SUPPRESSIONS="$INTEGRATION_DIR/valgrind.supp"
STATE_TOOL="$REPO_ROOT/build/twostep-state"

# Public demo data from ldap/demo.ldif.
ALICE_SEED=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
ALICE_DN="uid=alice,ou=people,dc=example,dc=org"

PASSED=0
FAILED=0
FAILED_CHECKS=()
RUN_DIR=""

# Python regular expression for a stack frame of rlm_twostep: the shared
# object or a source path under rlm_twostep/ (valgrind runs with
# --fullpath-after=, so source paths are whole), or a function name of the
# module. The names matter when the module is built without debug info.
MODULE_FRAME_REGEX='rlm_twostep|\W(twostep_\w*|mod_(authenticate|authorize|instantiate|detach|conn_create)|round_(password|code)|send_challenge|decide|conn_(open_uri|free)|entry_first_value|multi_values|load_keys|filter_escape|nas_name|gcm_(seal|open)|parse_(claims|name|key_line|require_cert)|otp_cmp) \('

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

pass() {
	echo "--- $1"
	echo "    pass"
	PASSED=$((PASSED + 1))
}

# fail NAME MESSAGE...
fail() {
	local name=$1
	shift
	echo "--- $name"
	echo "    FAIL: $*"
	FAILED=$((FAILED + 1))
	FAILED_CHECKS+=("$name")
}

show_output() {
	sed 's/^/      | /' <<<"$1"
}

finish() {
	stop_all
	if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
		if [ "$FAILED" -gt 0 ]; then
			echo "tests/integration/valgrind: logs kept in $RUN_DIR"
		else
			rm -rf "$RUN_DIR"
		fi
	fi
}

# Print the summary line and exit, failing when any check failed.
summary_and_exit() {
	if [ "$FAILED" -gt 0 ]; then
		echo "failed: ${FAILED_CHECKS[*]}"
	fi
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

# Print alice's TOTP code for the time step OFFSET seconds from now.
alice_code() {
	oathtool --totp -b -N "@$(( $(date +%s) + ${1:-0} ))" "$ALICE_SEED"
}

# Print a 6-digit code that matches none of alice's codes in the drift window
# of the shipped config (one step each side).
alice_wrong_code() {
	local window code

	window=" $(alice_code -30) $(alice_code 0) $(alice_code 30) "
	code=123456
	while [[ "$window" == *" $code "* ]]; do
		code=$(( (code + 1) % 1000000 ))
		code=$(printf '%06d' "$code")
	done
	echo "$code"
}

# send_request USER PASSWORD [ATTR...]
# Send an Access-Request to the radiusd under test and print radclient's
# output.
# NOTE: radius_auth waits 3 s for a reply. Requests under valgrind took
# about 0.1 s each on the development machine, but a heavily loaded machine
# may exceed 3 s, and the check then fails with "got none".
send_request() {
	local user=$1 password=$2
	shift 2

	radius_auth "$RADIUS_PORT" "User-Name = \"$user\"" "User-Password = \"$password\"" "$@"
}

# Count the decision lines of the module with REASON in the radiusd log.
count_reason() {
	grep -c "reason=$1\( \|\$\)" "$RADIUS_DIR/radiusd.log" || true
}

# expect NAME OUTPUT REPLY_CODE [REASON]
# Check the reply code of a request and, when REASON is given, that the
# module logged one more decision with that reason than before the request.
# REASON_BEFORE must hold count_reason REASON from before the request.
expect() {
	local name=$1 output=$2 code=$3 reason=${4:-} actual after tries=0

	actual=$(radius_reply_code "$output")
	if [ "$actual" != "$code" ]; then
		fail "$name" "reply code: expected $code, got $actual"
		show_output "$output"
		return 1
	fi
	if [ -n "$reason" ]; then
		# radiusd may write the decision line just after the reply.
		while after=$(count_reason "$reason") && [ "$after" -le "$REASON_BEFORE" ] && [ "$tries" -lt 20 ]; do
			tries=$((tries + 1))
			sleep 0.1
		done
		if [ "$after" -le "$REASON_BEFORE" ]; then
			fail "$name" "radiusd log: no new decision line with reason=$reason"
			return 1
		fi
	fi
	pass "$name"
}

# Send round 1 for alice and print the State of the challenge, or nothing.
alice_challenge() {
	radius_reply_state "$(send_request alice alice-pw)"
}

# Flip one hex digit in the middle of a State value "0x...".
tamper_state() {
	local hex=${1#0x} middle digit

	middle=$(( ${#hex} / 2 ))
	digit=${hex:middle:1}
	echo "0x${hex:0:middle}$(printf '%x' $(( 0x$digit ^ 1 )))${hex:middle+1}"
}

# Mint a State with radiusd's own key: mint_state USER DN SEED ISSUED.
mint_state() {
	"$STATE_TOOL" create "$RADIUS_DIR/raddb/mods-config/twostep/state-1.key" "$@"
}

# ---------------------------------------------------------------------------
# Sign-ins, one down each path of the module
# ---------------------------------------------------------------------------

run_signins() {
	local output state tries code

	REASON_BEFORE=$(count_reason code-accepted)
	state=$(alice_challenge)
	if [ -z "$state" ]; then
		fail "alice round 1 challenge" "no State in the reply to round 1"
	else
		pass "alice round 1 challenge"
		output=$(send_request alice "$(alice_code 0)" "State = $state")
		expect "alice round 2 accept" "$output" Access-Accept code-accepted
	fi

	# The same code again after a new password round: a fresh challenge.
	REASON_BEFORE=$(count_reason code-reused)
	state=$(alice_challenge)
	output=$(send_request alice "$(alice_code 0)" "State = $state")
	expect "alice reused code challenge" "$output" Access-Challenge code-reused

	REASON_BEFORE=$(count_reason password-rejected)
	output=$(send_request alice wrong-pw)
	expect "wrong password reject" "$output" Access-Reject password-rejected

	REASON_BEFORE=$(count_reason user-not-found)
	output=$(send_request nobody some-pw)
	expect "unknown user reject" "$output" Access-Reject user-not-found

	REASON_BEFORE=$(count_reason not-enrolled)
	output=$(send_request dave dave-pw)
	expect "dave not enrolled reject" "$output" Access-Reject not-enrolled

	REASON_BEFORE=$(count_reason sms-unavailable)
	output=$(send_request bob bob-pw)
	expect "bob SMS only reject" "$output" Access-Reject sms-unavailable

	REASON_BEFORE=$(count_reason exempt)
	output=$(send_request carol carol-pw)
	expect "carol exempt accept" "$output" Access-Accept exempt

	REASON_BEFORE=$(count_reason optional-not-enrolled)
	output=$(send_request erin erin-pw)
	expect "erin optional accept" "$output" Access-Accept optional-not-enrolled

	REASON_BEFORE=$(count_reason idp)
	output=$(send_request frank frank-pw)
	expect "frank idp accept" "$output" Access-Accept idp

	REASON_BEFORE=$(count_reason code-invalid)
	state=$(alice_challenge)
	output=$(send_request alice "$(alice_wrong_code)" "State = $state")
	expect "wrong code reject" "$output" Access-Reject code-invalid

	REASON_BEFORE=$(count_reason code-malformed)
	state=$(alice_challenge)
	output=$(send_request alice 12ab "State = $state")
	expect "malformed code reject" "$output" Access-Reject code-malformed

	REASON_BEFORE=$(count_reason state-invalid)
	state=$(alice_challenge)
	output=$(send_request alice "$(alice_code 0)" "State = $(tamper_state "$state")")
	expect "tampered State reject" "$output" Access-Reject state-invalid

	# Not our "2SV" prefix: the module returns noop and the site rejects.
	output=$(send_request alice alice-pw "State = 0x0123456789abcdef")
	expect "foreign State reject" "$output" Access-Reject

	# No User-Password: the module returns noop and the site rejects.
	output=$(radius_auth "$RADIUS_PORT" 'User-Name = "alice"')
	expect "absent password reject" "$output" Access-Reject

	REASON_BEFORE=$(count_reason state-expired)
	state=$(mint_state alice "$ALICE_DN" "$ALICE_SEED" $(( $(date +%s) - 3600 )))
	output=$(send_request alice "$(alice_code 0)" "State = $state")
	expect "expired State reject" "$output" Access-Reject state-expired

	REASON_BEFORE=$(count_reason state-invalid)
	state=$(mint_state bob "uid=bob,ou=people,dc=example,dc=org" "$ALICE_SEED" "$(date +%s)")
	output=$(send_request alice "$(alice_code 0)" "State = $state")
	expect "State of other user reject" "$output" Access-Reject state-invalid

	REASON_BEFORE=$(count_reason state-invalid)
	state=$(mint_state alice "$ALICE_DN" "" "$(date +%s)")
	output=$(send_request alice "$(alice_code 0)" "State = $state")
	expect "State without seed reject" "$output" Access-Reject state-invalid

	# LDAP outage: the pooled connections die with slapd, and come back
	# with it, without a restart of radiusd.
	slapd_stop "$LDAP_DIR"
	REASON_BEFORE=$(count_reason ldap-unavailable)
	output=$(send_request alice alice-pw)
	expect "LDAP outage reject" "$output" Access-Reject ldap-unavailable

	if ! slapd_resume "$LDAP_DIR" "$LDAP_PORT"; then
		fail "LDAP recovery challenge" "slapd_resume failed"
		return
	fi
	tries=0
	while :; do
		output=$(send_request alice alice-pw)
		code=$(radius_reply_code "$output")
		if [ "$code" = Access-Challenge ] || [ "$tries" -ge 10 ]; then
			break
		fi
		tries=$((tries + 1))
		sleep 0.5
	done
	expect "LDAP recovery challenge" "$output" Access-Challenge || return

	# The next step's code, so that no code is accepted twice in this run.
	REASON_BEFORE=$(count_reason code-accepted)
	output=$(send_request alice "$(alice_code 30)" "State = $(radius_reply_state "$output")")
	expect "LDAP recovery accept" "$output" Access-Accept code-accepted
}

# ---------------------------------------------------------------------------
# valgrind's log
# ---------------------------------------------------------------------------

# analyse_log LOG
# Sort each record of a memcheck log into a memory error, a leak with a module
# frame, or a leak outside the module, and print the counts and the records.
# Exits 1 when a memory error or a module leak is found, and 2 when the log
# has no summary because radiusd did not exit normally.
analyse_log() {
	python3 - "$1" "$MODULE_FRAME_REGEX" <<'EOF'
import re
import sys

log_path, module_regex = sys.argv[1], re.compile(sys.argv[2])

# Records in a memcheck log are runs of "==PID== text" lines separated by a
# line with the prefix alone. A child that radiusd forks writes to the same
# log, so the lines of two PIDs can interleave.
records, current = [], {}
with open(log_path, errors="replace") as log:
    for line in log:
        match = re.match(r"^==(\d+)== ?(.*)$", line.rstrip("\n"))
        if not match:
            continue
        pid, text = match.groups()
        if text.strip():
            current.setdefault(pid, []).append(text)
        elif current.get(pid):
            records.append(current.pop(pid))
records.extend(lines for lines in current.values() if lines)

text = "\n".join("\n".join(r) for r in records)
if "ERROR SUMMARY:" not in text or not ("LEAK SUMMARY:" in text or "All heap blocks were freed" in text):
    print("    valgrind log %s has no error or leak summary: radiusd did not exit normally" % log_path)
    sys.exit(2)

LEAK = re.compile(r"are (definitely|indirectly|possibly) lost in loss record")
SUMMARY = re.compile(r"^(HEAP SUMMARY|LEAK SUMMARY|ERROR SUMMARY|Memcheck|Copyright|Using Valgrind|Command:|Parent PID|"
                     r"For lists of|To see them|Reachable blocks|Rerun with|Use --|in use at exit|total heap usage|"
                     r"All heap blocks|Warning: )")

errors, module_leaks, module_possible, other_leaks = [], [], [], []
for record in records:
    # valgrind names the thread above a record when it differs from the
    # thread of the previous record.
    while record and re.match(r"^Thread \d+:$", record[0].strip()):
        record = record[1:]
    if not record:
        continue
    first = record[0].strip()
    if SUMMARY.match(first) or first.startswith(("definitely lost:", "indirectly lost:", "possibly lost:",
                                                   "still reachable:", "suppressed:")):
        continue
    ours = any(module_regex.search(line) for line in record)
    leak = LEAK.search(first)
    if leak and leak.group(1) == "possibly":
        (module_possible if ours else other_leaks).append(record)
    elif leak:
        (module_leaks if ours else other_leaks).append(record)
    else:
        errors.append(record)

def show(title, found, whole):
    if not found:
        return
    print("    %s: %d" % (title, len(found)))
    for record in found:
        lines = record if whole else record[:7]
        for line in lines:
            print("      | " + line)
        print("      |")

print("    memory errors: %d" % len(errors))
print("    definitely or indirectly lost blocks with a module frame: %d" % len(module_leaks))
print("    possibly lost blocks with a module frame (reported, not failed): %d" % len(module_possible))
print("    leaks outside the module (reported, not failed): %d" % len(other_leaks))
suppressed = re.findall(r"^==\d+== +suppressed: (.*)$", open(log_path, errors="replace").read(), re.M)
print("    suppressed by valgrind.supp: %s" % ("; ".join(suppressed) or "none"))
show("memory errors", errors, True)
show("module leaks", module_leaks, True)
show("module possibly lost blocks", module_possible, True)
show("leaks outside the module, first lines", other_leaks, False)
sys.exit(1 if errors or module_leaks else 0)
EOF
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

if [ ! -r "$SERVERS_LIB" ]; then
	echo "tests/integration/valgrind: $SERVERS_LIB is missing; the server helpers are needed."
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck source=../lib/servers.sh
. "$SERVERS_LIB"
trap finish EXIT
# Exit on INT and TERM too, so the EXIT trap stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM
unset TWOSTEP_CONF_SED TWOSTEP_RADIUSD_WRAPPER

for program in valgrind python3 oathtool radclient; do
	if ! command -v "$program" >/dev/null 2>&1; then
		echo "tests/integration/valgrind: $program is not installed; run 'make deps'."
		echo "0 passed, 1 failed"
		exit 1
	fi
done
for file in "$REPO_ROOT/build/rlm_twostep.so" "$STATE_TOOL"; do
	if [ ! -f "$file" ]; then
		echo "tests/integration/valgrind: $file is missing; run 'make' first."
		echo "0 passed, 1 failed"
		exit 1
	fi
done

mkdir -p "$REPO_ROOT/build/test"
RUN_DIR=$(mktemp -d "$REPO_ROOT/build/test/valgrind.XXXXXX")
LDAP_DIR="$RUN_DIR/ldap"
RADIUS_DIR="$RUN_DIR/radius"
VALGRIND_LOG="$RADIUS_DIR/valgrind.log"
mkdir -p "$LDAP_DIR" "$RADIUS_DIR"
echo "tests/integration/valgrind: servers and logs in $RUN_DIR"
started=$(date +%s)

LDAP_PORT=$(free_port)
if ! slapd_start "$LDAP_DIR" "$LDAP_PORT"; then
	fail "servers start" "slapd_start failed"
	summary_and_exit
fi
RADIUS_PORT=$(free_port)
if ! radiusd_build_config "$RADIUS_DIR" "$RADIUS_PORT" "ldap://127.0.0.1:$LDAP_PORT/"; then
	fail "servers start" "radiusd_build_config failed"
	summary_and_exit
fi
# valgrind runs one thread at a time, so more radiusd threads only add
# start-up time and memory. Keep the pool at one thread, two at most.
sed -i -e 's/^\([[:space:]]*start_servers =\).*/\1 1/' \
	-e 's/^\([[:space:]]*max_servers =\).*/\1 2/' \
	-e 's/^\([[:space:]]*min_spare_servers =\).*/\1 1/' \
	-e 's/^\([[:space:]]*max_spare_servers =\).*/\1 1/' \
	"$RADIUS_DIR/raddb/radiusd.conf"

valgrind_options="--tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible"
valgrind_options="$valgrind_options --errors-for-leak-kinds=definite,indirect --num-callers=30 --track-origins=yes"
# radiusd, built with NDEBUG by Debian, dlclose()s every module at exit,
# before the leak check. --keep-debuginfo keeps the symbols of the unloaded
# module and of the libraries it pulled in, so their frames are not "???".
valgrind_options="$valgrind_options --keep-debuginfo=yes --fullpath-after= --log-file=$VALGRIND_LOG"
if [ -f "$SUPPRESSIONS" ]; then
	valgrind_options="$valgrind_options --suppressions=$SUPPRESSIONS"
fi
if [[ "$VALGRIND_LOG$SUPPRESSIONS" =~ [[:space:]] ]]; then
	fail "servers start" "the paths $VALGRIND_LOG and $SUPPRESSIONS contain a blank, but TWOSTEP_RADIUSD_WRAPPER is split at blanks"
	summary_and_exit
fi

# Set for the rest of the run, so that radiusd_stop and stop_all wait 60 s
# for valgrind to write its report after TERM.
export TWOSTEP_RADIUSD_WRAPPER="valgrind $valgrind_options"
if ! radiusd_launch "$RADIUS_DIR" "$RADIUS_PORT"; then
	fail "servers start" "radiusd under valgrind did not start; see $RADIUS_DIR"
	summary_and_exit
fi
echo "tests/integration/valgrind: radiusd ready under valgrind after $(( $(date +%s) - started )) s"

run_signins

radiusd_stop "$RADIUS_DIR"
slapd_stop "$LDAP_DIR"
echo "tests/integration/valgrind: radiusd stopped after $(( $(date +%s) - started )) s"

if grep -q 'Exiting normally' "$RADIUS_DIR/radiusd.log"; then
	pass "radiusd exit on TERM"
else
	fail "radiusd exit on TERM" "no 'Exiting normally' in $RADIUS_DIR/radiusd.log"
fi

analysis=$(analyse_log "$VALGRIND_LOG")
status=$?
echo "--- valgrind log of radiusd"
printf '%s\n' "$analysis"
case "$status" in
0)
	echo "    pass"
	PASSED=$((PASSED + 1))
	;;
*)
	echo "    FAIL: see $VALGRIND_LOG"
	FAILED=$((FAILED + 1))
	FAILED_CHECKS+=("valgrind log of radiusd")
	;;
esac

summary_and_exit
