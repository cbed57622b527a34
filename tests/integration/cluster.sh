#!/usr/bin/env bash
#
# Integration tests for rlm_twostep in a cluster: several radiusd on
# 127.0.0.1 that share one slapd, and two of them the same State key. The
# tests cover the records the module keeps on the user's entry: replay of
# codes and States, wrong codes in a row and lock-out. They also cover the
# one user key behind every spelling of a User-Name, replies and LDAP work
# that do not reveal which user names exist, and failing closed when LDAP is
# down.
#
# Usage: tests/integration/cluster.sh [TEST_FUNCTION...]
# The last line of output is "N passed, N failed", and the exit status is 1
# when any test failed.
#
# Layout: one slapd with fresh demo data and EXTRA_USERS extra TOTP users
# (cl-01, cl-02, ...), and three radiusd:
#   A, B  lockout.max_failures = 3, the same State key (B's config is built
#         with radiusd_build_config, then A's key file is copied over B's)
#   C     user_name.strip_realm = yes, a State key of its own
# test_wrong_password_one_bind_two_servers starts a second slapd and a
# fourth radiusd of its own.
#
# Codes: a TOTP step can be accepted once per user, so every test that needs
# an accepted code takes an extra user of its own (take_user), and no test
# waits for the next time step. alice is used only by
# test_user_name_spellings_share_replay.

set -u

CLUSTER_SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
TWOSTEP_INTEGRATION_HELPERS_ONLY=1
# shellcheck source=run.sh
. "$CLUSTER_SCRIPT_DIR/run.sh"
unset TWOSTEP_INTEGRATION_HELPERS_ONLY


ADMIN_DN="cn=admin,$DEMO_BASE"
ADMIN_PASSWORD=admin-pw
ALICE_DN="uid=alice,ou=people,$DEMO_BASE"

# Extra TOTP users: enough for every test that takes one, with the two
# concurrency tests taking CONCURRENT_REPEATS each.
EXTRA_USERS=70
CONCURRENT_REPEATS=20
NEXT_USER=0

# Wrong codes in a row that lock a user out on radiusd A and B.
MAX_FAILURES=3
CLUSTER_CONF_SED="s/max_failures = 10/max_failures = $MAX_FAILURES/"

MSG_CODE_REUSED=$(config_message code_reused)
MSG_LOCKED=$(config_message locked)
LOCKOUT_DURATION=$(sed -n 's/^[[:space:]]*duration[[:space:]]*=[[:space:]]*\([0-9]*\)[[:space:]]*$/\1/p' "$MODULE_CONF" | head -n 1)

# ---------------------------------------------------------------------------
# Extra users and the directory
# ---------------------------------------------------------------------------

# Print the base32 TOTP seed of an extra user: the SHA-1 digest of the uid,
# so each user has a 20-byte seed of its own.
user_seed() {
	printf '%s' "$1" | openssl dgst -sha1 -binary | base32
}

user_dn() {
	printf 'uid=%s,ou=people,%s\n' "$1" "$DEMO_BASE"
}

# Print USER's TOTP code for the time step OFFSET seconds from now.
user_code() {
	local user=$1 offset=${2:-0}

	oathtool --totp -b -N "@$(( $(date +%s) + offset ))" "$(user_seed "$user")"
}

# Print a 6-digit code that differs from each of USER's codes from 90 s
# before now to 90 s after, so it is wrong within drift 1 even when a time
# step passes.
wrong_code() {
	local user=$1 seed now offset valid candidate

	seed=$(user_seed "$user")
	now=$(date +%s)
	valid=$(for offset in -90 -60 -30 0 30 60 90; do
		oathtool --totp -b -N "@$((now + offset))" "$seed"
	done)
	for candidate in 000000 111111 222222 333333 444444 555555 666666 777777; do
		if ! grep -qx "$candidate" <<<"$valid"; then
			echo "$candidate"
			return 0
		fi
	done
	return 1
}

# Apply the LDIF on standard input to the slapd of these tests, as the
# rootdn. ARGS go to ldapmodify, such as -a to add entries.
cluster_ldap_modify() {
	if ! ldapmodify -x -H "$LDAP_URI" -D "$ADMIN_DN" -w "$ADMIN_PASSWORD" "$@" \
		>"$RUN_DIR/ldapmodify.out" 2>&1; then
		fail "ldapmodify failed: $(tr '\n' ' ' <"$RUN_DIR/ldapmodify.out")"
		return 1
	fi
}

# Print the values of ATTR on the entry DN, one per line, read as the rootdn.
entry_value() {
	local dn=$1 attr=$2

	ldapsearch -x -H "$LDAP_URI" -D "$ADMIN_DN" -w "$ADMIN_PASSWORD" -LLL -o ldif-wrap=no \
		-b "$dn" -s base '(objectClass=*)' "$attr" | sed -n "s/^$attr: //p"
}

# Add the extra users cl-01 ... cl-EXTRA_USERS to ou=people, each enrolled
# in TOTP with the seed of user_seed and the password "<uid>-pw".
add_extra_users() {
	local i uid ldif=""

	for ((i = 1; i <= EXTRA_USERS; i++)); do
		printf -v uid 'cl-%02d' "$i"
		ldif+="dn: $(user_dn "$uid")
objectClass: top
objectClass: inetOrgPerson
objectClass: twostepUser
uid: $uid
cn: Cluster Test $i
sn: Test
userPassword: $uid-pw
twostepMethod: totp
twostepTotpSecret: $(user_seed "$uid")

"
	done
	cluster_ldap_modify -a <<<"$ldif"
}

# Set TAKEN_USER to the next extra user that no test has used yet.
take_user() {
	if [ "$NEXT_USER" -ge "$EXTRA_USERS" ]; then
		fail "all $EXTRA_USERS extra users are taken: raise EXTRA_USERS"
		return 1
	fi
	NEXT_USER=$((NEXT_USER + 1))
	printf -v TAKEN_USER 'cl-%02d' "$NEXT_USER"
}

# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------

log_length() {
	wc -l <"$1/radiusd.log"
}

# Print the decision lines for USER with REASON that WORKDIR's radiusd
# logged after line MARK. USER is literal text.
decisions_since() {
	local workdir=$1 mark=$2 user=$3 reason=$4

	tail -n "+$((mark + 1))" "$workdir/radiusd.log" | grep -F "user=\"$user\"" | grep -E "reason=$reason( |\$)"
}

# Print the number of binds as DN in WORKDIR's slapd log.
slapd_count_binds_as() {
	grep -cF " BIND dn=\"$2\" method=" "$1/slapd/slapd.log" || true
}

# Print the number of connections that WORKDIR's slapd accepted.
slapd_count_connections() {
	grep -c ' ACCEPT from ' "$1/slapd/slapd.log" || true
}

# Send one request to PORT and count the binds and searches that the shared
# slapd logged for it, in LDAP_BINDS and LDAP_SEARCHES. A request during
# which the pools opened a connection (which binds as the service account)
# is measured again, up to 5 times. Sets LDAP_OUTPUT to radclient's output.
measure_ldap_work() {
	local port=$1 user=$2 password=$3 attempt connections binds searches

	for ((attempt = 1; attempt <= 5; attempt++)); do
		connections=$(slapd_count_connections "$LDAP_DIR")
		binds=$(slapd_count_binds "$LDAP_DIR")
		searches=$(slapd_count_searches "$LDAP_DIR")
		LDAP_OUTPUT=$(send_request "$port" "$user" "$password")
		# slapd logs each operation before it sends the result, so
		# the lines are there. The wait covers a late pool connection.
		sleep 0.3
		LDAP_BINDS=$(($(slapd_count_binds "$LDAP_DIR") - binds))
		LDAP_SEARCHES=$(($(slapd_count_searches "$LDAP_DIR") - searches))
		if [ "$(slapd_count_connections "$LDAP_DIR")" -eq "$connections" ]; then
			return 0
		fi
	done
	fail "every one of 5 requests for $user overlapped a new LDAP connection, so the LDAP work of one request could not be counted"
	return 1
}

# Print the code, length and attributes of the reply in radclient OUTPUT,
# with the Id and the Message-Authenticator value left out, because they
# differ on every reply.
reply_signature() {
	printf '%s\n' "$1" | sed -n '/^Received /,$p' |
		sed -e 's/^Received \(Access-[A-Za-z]*\) Id [0-9]* .* length \([0-9]*\)$/\1 length \2/' \
			-e 's/\(Message-Authenticator = \).*/\1(any)/'
}

# ---------------------------------------------------------------------------
# Sign-in steps
# ---------------------------------------------------------------------------

# Send round 2 for USER with CODE and STATE to PORT. Expect the reply
# REPLY_CODE with MESSAGE, and a decision line with RESULT and REASON in
# WORKDIR's log. Sets ROUND2_OUTPUT.
answer_challenge() {
	local workdir=$1 port=$2 user=$3 code=$4 state=$5 reply_code=$6 message=$7 result=$8 reason=$9

	mark_log "$workdir"
	ROUND2_OUTPUT=$(send_request "$port" "$user" "$code" "State = $state")
	expect_reply "$ROUND2_OUTPUT" "$reply_code" "$message" || return 1
	expect_decision "$workdir" "$user" "$result" "$reason"
}

# Lock USER out through radiusd A with MAX_FAILURES wrong codes, each after
# a correct password. Checks only that the last reply is the lock-out.
lock_out_user() {
	local user=$1 i output

	for ((i = 1; i <= MAX_FAILURES; i++)); do
		expect_challenge "$A_PORT" "$user" "$user-pw" || return 1
		output=$(send_request "$A_PORT" "$user" "$(wrong_code "$user")" "State = $ROUND1_STATE")
	done
	expect_reply "$output" Access-Reject "$MSG_LOCKED"
}

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

start_cluster_servers() {
	LDAP_DIR="$RUN_DIR/ldap"
	A_DIR="$RUN_DIR/radius-a"
	B_DIR="$RUN_DIR/radius-b"
	C_DIR="$RUN_DIR/radius-c"
	mkdir -p "$LDAP_DIR" "$A_DIR" "$B_DIR" "$C_DIR"

	LDAP_PORT=$(free_port)
	LDAP_URI="ldap://127.0.0.1:$LDAP_PORT/"
	slapd_start "$LDAP_DIR" "$LDAP_PORT" || return 1
	add_extra_users || return 1

	A_PORT=$(free_port)
	TWOSTEP_CONF_SED=$CLUSTER_CONF_SED radiusd_start "$A_DIR" "$A_PORT" "$LDAP_URI" || return 1

	# B gets A's State key, so either server opens the States of the other.
	B_PORT=$(free_port)
	TWOSTEP_CONF_SED=$CLUSTER_CONF_SED radiusd_build_config "$B_DIR" "$B_PORT" "$LDAP_URI" || return 1
	cp "$A_DIR/$STATE_KEY_PATH" "$B_DIR/$STATE_KEY_PATH" || return 1
	chmod 0600 "$B_DIR/$STATE_KEY_PATH" || return 1
	radiusd_launch "$B_DIR" "$B_PORT" || return 1

	C_PORT=$(free_port)
	TWOSTEP_CONF_SED='s/strip_realm = no/strip_realm = yes/' \
		radiusd_start "$C_DIR" "$C_PORT" "$LDAP_URI" || return 1
}

# ---------------------------------------------------------------------------
# Cluster: a shared State key and records on the entry
# ---------------------------------------------------------------------------

test_cluster_config_as_intended() {
	local dir

	if ! cmp -s "$A_DIR/$STATE_KEY_PATH" "$B_DIR/$STATE_KEY_PATH"; then
		fail "the State key files of radiusd A and B differ: $A_DIR/$STATE_KEY_PATH, $B_DIR/$STATE_KEY_PATH"
	fi
	if cmp -s "$A_DIR/$STATE_KEY_PATH" "$C_DIR/$STATE_KEY_PATH"; then
		fail "radiusd C has A's State key; the foreign-State test needs a key of its own"
	fi
	for dir in "$A_DIR" "$B_DIR"; do
		if ! grep -q "max_failures = $MAX_FAILURES\$" "$dir/raddb/mods-enabled/twostep"; then
			fail "max_failures = $MAX_FAILURES is not in $dir/raddb/mods-enabled/twostep"
		fi
	done
	if ! grep -q 'strip_realm = yes$' "$C_DIR/raddb/mods-enabled/twostep"; then
		fail "strip_realm = yes is not in $C_DIR/raddb/mods-enabled/twostep"
	fi
	if ! grep -q 'strip_realm = no$' "$A_DIR/raddb/mods-enabled/twostep"; then
		fail "strip_realm = no is not in $A_DIR/raddb/mods-enabled/twostep"
	fi
}

test_cluster_answer_at_other_server_accepted() {
	local user step

	take_user || return
	user=$TAKEN_USER
	expect_challenge "$A_PORT" "$user" "$user-pw" || return

	answer_challenge "$B_DIR" "$B_PORT" "$user" "$(user_code "$user")" "$ROUND1_STATE" \
		Access-Accept "" accept code-accepted || return

	# B recorded the accepted step on the entry, for every server to see.
	step=$(entry_value "$(user_dn "$user")" twostepLastStep)
	if [ -z "$step" ] || [ $(( $(date +%s) / 30 - step )) -gt 1 ]; then
		fail "twostepLastStep on $user's entry: expected the current time step $(( $(date +%s) / 30 )) or the one before, got '$step'"
	fi
}

test_cluster_replay_at_other_server_rejected() {
	local user code state

	take_user || return
	user=$TAKEN_USER
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	state=$ROUND1_STATE
	code=$(user_code "$user")

	answer_challenge "$B_DIR" "$B_PORT" "$user" "$code" "$state" Access-Accept "" accept code-accepted || return

	# A has not seen this State before, so only the record on the entry
	# can reject it.
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$state" \
		Access-Reject "$MSG_STATE_INVALID" reject state-conflict

	# A new password round at A, with the code accepted at B, gets a new challenge.
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$ROUND1_STATE" \
		Access-Challenge "$MSG_CODE_REUSED" challenge code-reused
	if [[ "$(radius_reply_state "$ROUND2_OUTPUT")" != 0x325356* ]]; then
		fail "the code-reused challenge has no State of ours: '$(radius_reply_state "$ROUND2_OUTPUT")'"
	fi
}

test_cluster_lockout_applies_at_other_server() {
	local user dn i code lock_lines until reason until_epoch now

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")

	for ((i = 1; i < MAX_FAILURES; i++)); do
		expect_challenge "$A_PORT" "$user" "$user-pw" || return
		answer_challenge "$A_DIR" "$A_PORT" "$user" "$(wrong_code "$user")" "$ROUND1_STATE" \
			Access-Reject "$MSG_CODE_INVALID" reject code-invalid || return
	done
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	code=$(wrong_code "$user")
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$ROUND1_STATE" \
		Access-Reject "$MSG_LOCKED" reject code-invalid-locked

	lock_lines=$(tail -n "+$((LOG_MARK + 1))" "$A_DIR/radiusd.log" |
		grep -E "locked out $(regex_escape "$dn") until [0-9]{14}Z: $MAX_FAILURES wrong codes in a row, last at [0-9]{14}Z\$")
	expect_equal "lock-out log lines for $dn" 1 "$(grep -c . <<<"$lock_lines")"

	# The entry carries the end and the cause of the lock-out.
	until=$(entry_value "$dn" twostepLockedUntil)
	reason=$(entry_value "$dn" twostepLockReason)
	if [[ ! "$until" =~ ^[0-9]{14}Z$ ]]; then
		fail "twostepLockedUntil on $dn: expected a GeneralizedTime, got '$until'"
	else
		until_epoch=$(date -u -d "${until:0:8} ${until:8:2}:${until:10:2}:${until:12:2}" +%s)
		now=$(date +%s)
		if [ "$until_epoch" -lt $((now + LOCKOUT_DURATION - 10)) ] || [ "$until_epoch" -gt $((now + LOCKOUT_DURATION)) ]; then
			fail "twostepLockedUntil $until is not about $LOCKOUT_DURATION s from now ($(date -u +%Y%m%d%H%M%SZ))"
		fi
		if ! grep -qF " until $until:" <<<"$lock_lines"; then
			fail "the lock-out log line does not name the end $until stored on the entry"
		fi
	fi
	if [[ ! "$reason" =~ ^$MAX_FAILURES\ wrong\ codes\ in\ a\ row,\ last\ at\ [0-9]{14}Z$ ]]; then
		fail "twostepLockReason on $dn: expected '$MAX_FAILURES wrong codes in a row, last at <time>', got '$reason'"
	fi

	# B reads the lock-out from the entry: the right password gets the
	# reply of a wrong one.
	mark_log "$B_DIR"
	ROUND1_OUTPUT=$(send_request "$B_PORT" "$user" "$user-pw")
	expect_reply "$ROUND1_OUTPUT" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "State in the reply" "" "$(radius_reply_state "$ROUND1_OUTPUT")"
	expect_decision "$B_DIR" "$user" reject locked-out
}

# Answer one challenge at A and at B at the same time with the same right
# code, REPEATS times with a new user each, and expect exactly one
# Access-Accept each time. MODE "same-state" sends one State from A to both
# servers, "two-states" sends each server the State of its own round 1.
run_concurrent_answers() {
	local mode=$1 repeats=$2 i user code state_a state_b mark_a mark_b
	local output_a output_b code_a code_b pid_a pid_b accepts conflicts tries wins_a=0 bad=0
	local out_dir="$RUN_DIR/concurrent-$mode"

	mkdir -p "$out_dir"
	for ((i = 1; i <= repeats; i++)); do
		take_user || return
		user=$TAKEN_USER
		expect_challenge "$A_PORT" "$user" "$user-pw" || return
		state_a=$ROUND1_STATE
		state_b=$state_a
		if [ "$mode" = two-states ]; then
			expect_challenge "$B_PORT" "$user" "$user-pw" || return
			state_b=$ROUND1_STATE
		fi
		code=$(user_code "$user")
		mark_a=$(log_length "$A_DIR")
		mark_b=$(log_length "$B_DIR")

		send_request "$A_PORT" "$user" "$code" "State = $state_a" >"$out_dir/$user-a.out" &
		pid_a=$!
		send_request "$B_PORT" "$user" "$code" "State = $state_b" >"$out_dir/$user-b.out" &
		pid_b=$!
		wait "$pid_a"
		wait "$pid_b"

		output_a=$(cat "$out_dir/$user-a.out")
		output_b=$(cat "$out_dir/$user-b.out")
		code_a=$(radius_reply_code "$output_a")
		code_b=$(radius_reply_code "$output_b")
		accepts=$(printf '%s\n%s\n' "$code_a" "$code_b" | grep -c '^Access-Accept$')
		if [ "$accepts" -ne 1 ] || ! grep -qx Access-Reject <<<"$code_a
$code_b"; then
			fail "repeat $i ($user): expected one Access-Accept and one Access-Reject, got $code_a from A and $code_b from B"
			show_output "$output_a"
			show_output "$output_b"
			bad=$((bad + 1))
			continue
		fi
		if [ "$code_a" = Access-Accept ]; then
			wins_a=$((wins_a + 1))
			expect_equal "repeat $i ($user): B's Reply-Message" "$MSG_STATE_INVALID" "$(radius_reply_message "$output_b")"
		else
			expect_equal "repeat $i ($user): A's Reply-Message" "$MSG_STATE_INVALID" "$(radius_reply_message "$output_a")"
		fi

		# One code-accepted and one state-conflict line, over both logs.
		for ((tries = 0; tries < 20; tries++)); do
			accepts=$( { decisions_since "$A_DIR" "$mark_a" "$user" code-accepted
				decisions_since "$B_DIR" "$mark_b" "$user" code-accepted; } | grep -c .)
			conflicts=$( { decisions_since "$A_DIR" "$mark_a" "$user" state-conflict
				decisions_since "$B_DIR" "$mark_b" "$user" state-conflict; } | grep -c .)
			if [ "$accepts" -eq 1 ] && [ "$conflicts" -eq 1 ]; then
				break
			fi
			sleep 0.1
		done
		expect_equal "repeat $i ($user): code-accepted decision lines" 1 "$accepts"
		expect_equal "repeat $i ($user): state-conflict decision lines" 1 "$conflicts"
	done
	echo "    $mode: A accepted $wins_a and B $((repeats - wins_a - bad)) of $repeats; $bad repeats without exactly one Access-Accept"
}

test_cluster_concurrent_same_state_one_accept() {
	run_concurrent_answers same-state "$CONCURRENT_REPEATS"
}

test_cluster_concurrent_same_code_one_accept() {
	run_concurrent_answers two-states "$CONCURRENT_REPEATS"
}

# ---------------------------------------------------------------------------
# One user key for every spelling of a User-Name
# ---------------------------------------------------------------------------

test_user_name_spellings_share_replay() {
	local code spelling state

	# Every spelling finds alice's entry.
	for spelling in ALICE " alice " alice@example.org; do
		mark_log "$C_DIR"
		expect_challenge "$C_PORT" "$spelling" alice-pw || return
		expect_decision "$C_DIR" "$spelling" challenge challenge-sent
		if ! find_decision "$C_DIR" "$spelling" challenge challenge-sent | grep -qF "dn=\"$ALICE_DN\""; then
			fail "the challenge for User-Name '$spelling' does not name $ALICE_DN"
		fi
	done

	# The code accepted for one spelling counts as used for the other spellings.
	code=$(alice_code 0)
	expect_challenge "$C_PORT" ALICE alice-pw || return
	answer_challenge "$C_DIR" "$C_PORT" ALICE "$code" "$ROUND1_STATE" Access-Accept "" accept code-accepted || return
	for spelling in " alice " alice@example.org; do
		expect_challenge "$C_PORT" "$spelling" alice-pw || continue
		state=$ROUND1_STATE
		answer_challenge "$C_DIR" "$C_PORT" "$spelling" "$code" "$state" \
			Access-Challenge "$MSG_CODE_REUSED" challenge code-reused
	done
}

# ---------------------------------------------------------------------------
# No user enumeration
# ---------------------------------------------------------------------------

test_enumeration_replies_identical() {
	local wrong_user locked_user unknown_output output name signature

	take_user || return
	wrong_user=$TAKEN_USER
	take_user || return
	locked_user=$TAKEN_USER
	lock_out_user "$locked_user" || return

	mark_log "$A_DIR"
	unknown_output=$(send_request "$A_PORT" nosuch-cluster-user "$wrong_user-pw")
	expect_reply "$unknown_output" Access-Reject "$MSG_LOGIN_FAILED" || return
	expect_decision "$A_DIR" nosuch-cluster-user reject user-not-found
	signature=$(reply_signature "$unknown_output")

	for name in wrong-password locked-out locked-out-wrong-password; do
		mark_log "$A_DIR"
		case "$name" in
		wrong-password) output=$(send_request "$A_PORT" "$wrong_user" wrong-pw) ;;
		locked-out) output=$(send_request "$A_PORT" "$locked_user" "$locked_user-pw") ;;
		locked-out-wrong-password) output=$(send_request "$A_PORT" "$locked_user" wrong-pw) ;;
		esac
		if ! expect_equal "reply for $name, against the reply for an unknown user" "$signature" "$(reply_signature "$output")"; then
			show_output "$output"
		fi
		case "$name" in
		wrong-password) expect_decision "$A_DIR" "$wrong_user" reject password-rejected ;;
		locked-out) expect_decision "$A_DIR" "$locked_user" reject locked-out ;;
		locked-out-wrong-password) expect_decision "$A_DIR" "$locked_user" reject password-rejected ;;
		esac
	done
}

test_enumeration_ldap_work_identical() {
	local known_user locked_user unknown_binds unknown_searches

	take_user || return
	known_user=$TAKEN_USER
	take_user || return
	locked_user=$TAKEN_USER
	lock_out_user "$locked_user" || return

	# Warm up, so both pools hold connections before the counts.
	send_request "$A_PORT" "$known_user" wrong-pw >/dev/null
	send_request "$A_PORT" nosuch-cluster-user wrong-pw >/dev/null

	measure_ldap_work "$A_PORT" nosuch-cluster-user "$known_user-pw" || return
	expect_reply "$LDAP_OUTPUT" Access-Reject "$MSG_LOGIN_FAILED"
	unknown_binds=$LDAP_BINDS
	unknown_searches=$LDAP_SEARCHES
	expect_equal "binds for an unknown user" 1 "$unknown_binds"
	expect_equal "searches for an unknown user" 1 "$unknown_searches"

	measure_ldap_work "$A_PORT" "$known_user" wrong-pw || return
	expect_reply "$LDAP_OUTPUT" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "binds for a wrong password, against an unknown user" "$unknown_binds" "$LDAP_BINDS"
	expect_equal "searches for a wrong password, against an unknown user" "$unknown_searches" "$LDAP_SEARCHES"

	measure_ldap_work "$A_PORT" "$locked_user" "$locked_user-pw" || return
	expect_reply "$LDAP_OUTPUT" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "binds for a locked-out user, against an unknown user" "$unknown_binds" "$LDAP_BINDS"
	expect_equal "searches for a locked-out user, against an unknown user" "$unknown_searches" "$LDAP_SEARCHES"
}

# ---------------------------------------------------------------------------
# One bind per wrong password
# ---------------------------------------------------------------------------

test_wrong_password_one_bind() {
	local user dn before

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")
	send_request "$A_PORT" "$user" wrong-pw >/dev/null

	before=$(slapd_count_binds_as "$LDAP_DIR" "$dn")
	measure_ldap_work "$A_PORT" "$user" wrong-pw || return
	expect_reply "$LDAP_OUTPUT" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "binds for one wrong password" 1 "$LDAP_BINDS"
	expect_equal "binds as $dn for one wrong password" 1 $(($(slapd_count_binds_as "$LDAP_DIR" "$dn") - before))
}

test_wrong_password_one_bind_two_servers() {
	local first_dir="$RUN_DIR/ldap-first" radius_dir="$RUN_DIR/radius-two-uris"
	local first_port radius_port output first_before shared_before

	mkdir -p "$first_dir" "$radius_dir"
	first_port=$(free_port)
	slapd_start "$first_dir" "$first_port" || { fail "slapd_start of the first LDAP server failed"; return; }
	radius_port=$(free_port)
	if ! radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$first_port/" "$LDAP_URI"; then
		fail "radiusd_start with two LDAP URIs failed"
		slapd_stop "$first_dir"
		return
	fi
	send_request "$radius_port" dave wrong-pw >/dev/null

	# The first server answers invalidCredentials: no bind reaches the second.
	first_before=$(slapd_count_binds_as "$first_dir" "$ALICE_DN")
	shared_before=$(slapd_count_binds_as "$LDAP_DIR" "$ALICE_DN")
	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice wrong-pw)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_decision "$radius_dir" alice reject password-rejected
	sleep 0.3
	expect_equal "binds as alice on the first server" 1 $(($(slapd_count_binds_as "$first_dir" "$ALICE_DN") - first_before))
	expect_equal "binds as alice on the second server" 0 $(($(slapd_count_binds_as "$LDAP_DIR" "$ALICE_DN") - shared_before))

	# The first server is down: the pools move to the second, which gets one bind.
	slapd_stop "$first_dir"
	first_before=$(slapd_count_binds_as "$first_dir" "$ALICE_DN")
	shared_before=$(slapd_count_binds_as "$LDAP_DIR" "$ALICE_DN")
	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice wrong-pw)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_decision "$radius_dir" alice reject password-rejected
	sleep 0.3
	expect_equal "binds as alice on the stopped first server" 0 $(($(slapd_count_binds_as "$first_dir" "$ALICE_DN") - first_before))
	expect_equal "binds as alice on the second server, with the first down" 1 $(($(slapd_count_binds_as "$LDAP_DIR" "$ALICE_DN") - shared_before))

	radiusd_stop "$radius_dir"
}

# ---------------------------------------------------------------------------
# The user search must find exactly one entry
# ---------------------------------------------------------------------------

test_duplicate_uid_ambiguous() {
	local output

	# carol is exempt, so her password alone signs her in, before the duplicate.
	mark_log "$A_DIR"
	output=$(send_request "$A_PORT" carol carol-pw)
	expect_reply "$output" Access-Accept "" || return
	expect_decision "$A_DIR" carol accept exempt

	cluster_ldap_modify -a <<LDIF || return
dn: uid=carol,ou=contractors,$DEMO_BASE
objectClass: top
objectClass: inetOrgPerson
objectClass: twostepUser
uid: carol
cn: Carol Contractor
sn: Contractor
userPassword: carol-pw
LDIF

	mark_log "$A_DIR"
	output=$(send_request "$A_PORT" carol carol-pw)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_decision "$A_DIR" carol reject user-ambiguous
}

# ---------------------------------------------------------------------------
# Wrong codes in a row
# ---------------------------------------------------------------------------

test_correct_code_resets_fail_count() {
	local user dn i count

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")

	for ((i = 1; i <= MAX_FAILURES - 1; i++)); do
		expect_challenge "$A_PORT" "$user" "$user-pw" || return
		answer_challenge "$A_DIR" "$A_PORT" "$user" "$(wrong_code "$user")" "$ROUND1_STATE" \
			Access-Reject "$MSG_CODE_INVALID" reject code-invalid || return
	done
	expect_equal "twostepFailCount after $((MAX_FAILURES - 1)) wrong codes" $((MAX_FAILURES - 1)) "$(entry_value "$dn" twostepFailCount)"

	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$(user_code "$user")" "$ROUND1_STATE" \
		Access-Accept "" accept code-accepted || return
	count=$(entry_value "$dn" twostepFailCount)
	if [ -n "$count" ] && [ "$count" != 0 ]; then
		fail "twostepFailCount after a right code: expected 0 or absent, got '$count'"
	fi
}

test_wrong_password_not_counted() {
	local user dn i output

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")

	for ((i = 1; i <= MAX_FAILURES; i++)); do
		output=$(send_request "$A_PORT" "$user" wrong-pw)
		expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED" || return
	done
	expect_equal "twostepFailCount after $MAX_FAILURES wrong passwords" "" "$(entry_value "$dn" twostepFailCount)"
	expect_equal "twostepLockedUntil after $MAX_FAILURES wrong passwords" "" "$(entry_value "$dn" twostepLockedUntil)"
	expect_challenge "$A_PORT" "$user" "$user-pw"
}

# ---------------------------------------------------------------------------
# The code-reused reply needs a valid State
# ---------------------------------------------------------------------------

test_tampered_state_never_code_reused() {
	local user code state bad_state label

	take_user || return
	user=$TAKEN_USER
	code=$(user_code "$user")
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$ROUND1_STATE" Access-Accept "" accept code-accepted || return

	# A valid State whose round 1 read the accepted step.
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	state=$ROUND1_STATE

	# C seals with a key of its own, so A cannot open its States.
	expect_challenge "$C_PORT" "$user" "$user-pw" || return

	for label in tampered truncated foreign; do
		case "$label" in
		tampered) bad_state=$(tamper_state "$state") ;;
		truncated) bad_state=${state:0:${#state}-2} ;;
		foreign) bad_state=$ROUND1_STATE ;;
		esac
		answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$bad_state" \
			Access-Reject "$MSG_STATE_INVALID" reject state-invalid
		if radius_reply_message "$ROUND2_OUTPUT" | grep -qF "$MSG_CODE_REUSED"; then
			fail "the reply to a $label State carries the code-reused text"
		fi
	done

	# The State itself, unanswered so far, gets the code-reused reply.
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$state" \
		Access-Challenge "$MSG_CODE_REUSED" challenge code-reused
}

# ---------------------------------------------------------------------------
# Fail closed
# ---------------------------------------------------------------------------

test_ldap_down_before_round2_fails_closed() {
	local user dn code output tries

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	code=$(user_code "$user")

	slapd_stop "$LDAP_DIR"
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$ROUND1_STATE" \
		Access-Reject "$MSG_UNAVAILABLE" fail ldap-unavailable

	if ! slapd_resume "$LDAP_DIR" "$LDAP_PORT"; then
		fail "slapd_resume failed; the tests after this one have no LDAP"
		return
	fi
	expect_equal "twostepLastStep after the answer that LDAP missed" "" "$(entry_value "$dn" twostepLastStep)"

	# radiusd reconnects without a restart.
	for ((tries = 0; tries < 10; tries++)); do
		output=$(send_request "$A_PORT" "$user" "$user-pw")
		if [ "$(radius_reply_code "$output")" = Access-Challenge ]; then
			break
		fi
		sleep 0.5
	done
	expect_equal "round 1 reply code within 5 s of slapd_resume" Access-Challenge "$(radius_reply_code "$output")"
}

test_user_deleted_before_round2_rejected() {
	local user dn code

	take_user || return
	user=$TAKEN_USER
	dn=$(user_dn "$user")
	expect_challenge "$A_PORT" "$user" "$user-pw" || return
	code=$(user_code "$user")

	cluster_ldap_modify <<LDIF || return
dn: $dn
changetype: delete
LDIF
	# The round-2 modify finds no entry: a reject for that reason, not an outage.
	answer_challenge "$A_DIR" "$A_PORT" "$user" "$code" "$ROUND1_STATE" \
		Access-Reject "$MSG_LOGIN_FAILED" reject user-not-found
}

# The LDAP outage test goes last, because it stops the shared slapd.
CLUSTER_TESTS=(
	test_cluster_config_as_intended
	test_cluster_answer_at_other_server_accepted
	test_cluster_replay_at_other_server_rejected
	test_cluster_lockout_applies_at_other_server
	test_cluster_concurrent_same_state_one_accept
	test_cluster_concurrent_same_code_one_accept
	test_user_name_spellings_share_replay
	test_enumeration_replies_identical
	test_enumeration_ldap_work_identical
	test_wrong_password_one_bind
	test_wrong_password_one_bind_two_servers
	test_duplicate_uid_ambiguous
	test_correct_code_resets_fail_count
	test_wrong_password_not_counted
	test_tampered_state_never_code_reused
	test_user_deleted_before_round2_rejected
	test_ldap_down_before_round2_fails_closed
)

if [ $# -gt 0 ]; then
	run_integration_suite cluster start_cluster_servers "$@"
fi
run_integration_suite cluster start_cluster_servers "${CLUSTER_TESTS[@]}"
