#!/usr/bin/env bash
#
# Integration tests for rlm_twostep: a real slapd and a real radiusd on
# 127.0.0.1, loaded with build/rlm_twostep.so and the demo LDAP data, and
# requests sent with radclient.
#
# Most tests share one slapd and one radiusd. The LDAP failover, outage and
# TLS tests start their own, because they need other LDAP URIs, stop slapd
# or need slapd with TLS.
#
# Usage: tests/integration/run.sh [TEST_FUNCTION...]
# With no arguments every test runs. The last line of output is
# "N passed, N failed", and the exit status is 1 when any test failed.
#
# Codes: no two sign-ins against one slapd use the same time step, so the
# tests also hold when replay protection rejects a code that was already
# accepted. The first accepted sign-in uses the current code and the second
# the next step's code. Failover, outage and TLS tests use fresh LDAP data.

set -u

INTEGRATION_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$INTEGRATION_DIR/../.." && pwd)
SERVERS_LIB="$REPO_ROOT/tests/lib/servers.sh"

if [ ! -r "$SERVERS_LIB" ]; then
	echo "tests/integration: $SERVERS_LIB is missing; the server helpers are needed to run the tests."
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck source=../lib/servers.sh
. "$SERVERS_LIB"
trap stop_all EXIT
# Exit on INT and TERM too, so the EXIT trap stops the servers.
trap 'exit 130' INT
trap 'exit 143' TERM
# The shared servers run the shipped module config. Tests that need another
# config set TWOSTEP_CONF_SED for their own radiusd_start.
unset TWOSTEP_CONF_SED

ROOT=${TWOSTEP_ROOT:-$REPO_ROOT}
MODULE_CONF="$ROOT/raddb/mods-available/twostep"
SITE_CONF="$ROOT/raddb/sites-available/twostep"

# Public demo data from ldap/demo.ldif.
ALICE_SEED=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
ALICE_SEED_ASCII=12345678901234567890
ALICE_SEED_HEX=3132333435363738393031323334353637383930

# Every code sent during the run, for the check that none reaches the log.
SENT_CODES=()

PASSED=0
FAILED=0
FAILED_TESTS=()
CHECK_FAILURES=0

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

# Record a failed check of the running test.
fail() {
	echo "    FAIL: $*"
	CHECK_FAILURES=$((CHECK_FAILURES + 1))
}

# Compare an expected and an actual value. DESCRIPTION names what was compared.
expect_equal() {
	local description=$1 expected=$2 actual=$3

	if [ "$expected" != "$actual" ]; then
		fail "$description: expected '$expected', got '$actual'"
		return 1
	fi
	return 0
}

# Print the radclient output of a failed request, indented, to help debugging.
show_output() {
	sed 's/^/      | /' <<<"$1"
}

# Run one test function and count it as passed when none of its checks failed.
run_test() {
	local name=$1

	echo "--- $name"
	CHECK_FAILURES=0
	if declare -F "$name" >/dev/null; then
		"$name"
	else
		fail "no test function named $name"
	fi
	if [ "$CHECK_FAILURES" -eq 0 ]; then
		echo "    pass"
		PASSED=$((PASSED + 1))
	else
		FAILED=$((FAILED + 1))
		FAILED_TESTS+=("$name")
	fi
}

# ---------------------------------------------------------------------------
# Configuration texts, read from the shipped files so the tests follow edits
# ---------------------------------------------------------------------------

# Print the Reply-Message text that the module config sets for NAME.
config_message() {
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\(.*\)\"[[:space:]]*\$/\1/p" "$MODULE_CONF" | head -n 1
}

MSG_CHALLENGE=$(config_message totp_challenge)
MSG_LOGIN_FAILED=$(config_message login_failed)
MSG_CODE_INVALID=$(config_message code_invalid)
MSG_STATE_INVALID=$(config_message state_invalid)
MSG_NOT_ENROLLED=$(config_message not_enrolled)
MSG_UNAVAILABLE=$(config_message unavailable)
# The site's own reject text, for requests the module does not handle.
MSG_NOT_UNDERSTOOD=$(sed -n 's/^[[:space:]]*&Reply-Message := "\(.*\)"[[:space:]]*$/\1/p' "$SITE_CONF" | head -n 1)

# ---------------------------------------------------------------------------
# Requests and replies
# ---------------------------------------------------------------------------

# Print alice's TOTP code for the time step OFFSET seconds from now.
alice_code() {
	local offset=${1:-0}

	oathtool --totp -b -N "@$(( $(date +%s) + offset ))" "$ALICE_SEED"
}

# Send an Access-Request and print radclient's output. Remembers a code sent
# as User-Password when it has the form of a code.
send_request() {
	local port=$1 user=$2 password=$3
	shift 3

	if [[ "$password" =~ ^[0-9]{6,8}$ ]]; then
		SENT_CODES+=("$password")
	fi
	radius_auth "$port" "User-Name = \"$user\"" "User-Password = \"$password\"" "$@"
}

# Send an Access-Request for USER with an empty User-Password to PORT, and
# print the reply in the lines of radclient -x output that the radius_reply_*
# helpers parse. radclient cannot do this because it leaves out an attribute
# whose value is empty. A NAS sends an empty password as one 16-byte block of
# zeros, encrypted as RFC 2865 section 5.2 describes.
send_empty_password() {
	local port=$1 user=$2

	python3 - "$port" "$user" "${TWOSTEP_RADIUS_SECRET:-testing123}" <<'EOF'
import hashlib, hmac, os, socket, sys

port, user, secret = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
ACCESS_REQUEST = 1
CODES = {2: "Access-Accept", 3: "Access-Reject", 11: "Access-Challenge"}
USER_NAME, USER_PASSWORD, REPLY_MESSAGE, STATE, MESSAGE_AUTHENTICATOR = 1, 2, 18, 24, 80

def attribute(kind, value):
    return bytes([kind, len(value) + 2]) + value

identifier = os.urandom(1)[0]
authenticator = os.urandom(16)
# Zero padding XOR MD5(secret + Request Authenticator) is the MD5 itself.
password = hashlib.md5(secret + authenticator).digest()
attributes = (attribute(USER_NAME, user) + attribute(USER_PASSWORD, password)
              + attribute(MESSAGE_AUTHENTICATOR, bytes(16)))
length = 20 + len(attributes)
packet = bytes([ACCESS_REQUEST, identifier]) + length.to_bytes(2, "big") + authenticator + attributes
signature = hmac.new(secret, packet, hashlib.md5).digest()
packet = packet[:-16] + signature

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.sendto(packet, ("127.0.0.1", port))
try:
    reply = sock.recv(4096)
except socket.timeout:
    print("No reply from 127.0.0.1:%d within 3 s" % port)
    sys.exit(1)

print("Received %s Id %d from 127.0.0.1:%d length %d"
      % (CODES.get(reply[0], "code %d" % reply[0]), reply[1], port, len(reply)))
offset = 20
while offset + 2 <= len(reply):
    kind, size = reply[offset], reply[offset + 1]
    if size < 2:
        break
    value = reply[offset + 2:offset + size]
    if kind == REPLY_MESSAGE:
        print('\tReply-Message = "%s"' % value.decode(errors="replace"))
    elif kind == STATE:
        print("\tState = 0x%s" % value.hex())
    elif kind == MESSAGE_AUTHENTICATOR:
        print("\tMessage-Authenticator = 0x%s" % value.hex())
    offset += size
EOF
}

# Succeed when the reply in radclient output carries a Message-Authenticator.
reply_has_message_authenticator() {
	awk '
		/^Received /		{ in_reply = 1; next }
		/^Sent /		{ in_reply = 0 }
		in_reply && /^[[:space:]]+Message-Authenticator = 0x/ { found = 1 }
		END			{ exit !found }
	' <<<"$1"
}

# Check the code and Reply-Message of a reply, and print the output when
# either differs.
expect_reply() {
	local output=$1 code=$2 message=$3
	local ok=0

	expect_equal "reply code" "$code" "$(radius_reply_code "$output")" || ok=1
	expect_equal "Reply-Message" "$message" "$(radius_reply_message "$output")" || ok=1
	if [ "$ok" -ne 0 ]; then
		show_output "$output"
	fi
	return "$ok"
}

# Send round 1 for USER and PASSWORD to PORT and check the challenge. Sets
# ROUND1_OUTPUT and ROUND1_STATE, and returns 1 when no challenge came back.
expect_challenge() {
	local port=$1 user=$2 password=$3

	ROUND1_OUTPUT=$(send_request "$port" "$user" "$password")
	ROUND1_STATE=$(radius_reply_state "$ROUND1_OUTPUT")
	expect_reply "$ROUND1_OUTPUT" Access-Challenge "$MSG_CHALLENGE" || return 1
	if [[ "$ROUND1_STATE" != 0x325356* ]]; then
		fail "round 1 State: expected a value starting with 0x325356 (\"2SV\"), got '$ROUND1_STATE'"
		return 1
	fi
	return 0
}

# Flip one hex digit in the middle of a State value "0x...".
tamper_state() {
	local state=$1
	local hex=${state#0x}
	local middle=$(( ${#hex} / 2 ))
	local digit=${hex:middle:1}
	local flipped

	flipped=$(printf '%x' $(( 0x$digit ^ 1 )))
	echo "0x${hex:0:middle}${flipped}${hex:middle+1}"
}

# ---------------------------------------------------------------------------
# Decision lines in the radiusd log
# ---------------------------------------------------------------------------

# Remember the current end of WORKDIR's radiusd log, so that
# expect_decision looks only at lines written after it.
mark_log() {
	LOG_MARK=$(wc -l <"$1/radiusd.log")
}

# Print TEXT with the characters that are special in an extended regular
# expression escaped.
regex_escape() {
	sed 's/[][\.*^$()+?{}|]/\\&/g' <<<"$1"
}

# Print the decision lines written since mark_log that name USER, RESULT and
# REASON. USER is literal text. An empty RESULT or REASON matches any value.
find_decision() {
	local workdir=$1 result=${3:-[[:alnum:]-]+} reason=${4:-[[:alnum:]-]+}
	local user lines

	user=$(regex_escape "$2")

	lines=$(tail -n "+$((LOG_MARK + 1))" "$workdir/radiusd.log" |
		grep -E "(^|[^[:alnum:]_])user=\"?$user\"?([^[:alnum:]_.-]|\$)" |
		grep -E "reason=\"?$reason\"?([^[:alnum:]_-]|\$)" |
		grep -E "result=\"?$result\"?([^[:alnum:]_-]|\$)")
	echo "$lines"
}

# Check that the module logged one decision line for USER, RESULT and REASON
# since mark_log. An empty RESULT or REASON matches any value. Waits up to 2 s,
# because radiusd may write the line just after it sends the reply.
expect_decision() {
	local workdir=$1 user=$2 result=$3 reason=$4
	local tries=0 count

	while :; do
		count=$(find_decision "$workdir" "$user" "$result" "$reason" | grep -c .)
		if [ "$count" -ge 1 ] || [ "$tries" -ge 20 ]; then
			break
		fi
		tries=$((tries + 1))
		sleep 0.1
	done
	if [ "$count" -ne 1 ]; then
		fail "radiusd log: expected 1 decision line with user=$user result=${result:-any} reason=${reason:-any}, found $count; decision lines since the request:"
		tail -n "+$((LOG_MARK + 1))" "$workdir/radiusd.log" | grep 'reason=' | sed 's/^/      | /'
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

STATE_KEY_PATH=raddb/mods-config/twostep/state-1.key

# Start a slapd and a radiusd for the shared tests.
start_shared_servers() {
	LDAP_DIR="$RUN_DIR/ldap"
	RADIUS_DIR="$RUN_DIR/radius"
	mkdir -p "$LDAP_DIR" "$RADIUS_DIR"

	LDAP_PORT=$(free_port)
	slapd_start "$LDAP_DIR" "$LDAP_PORT" || return 1
	RADIUS_PORT=$(free_port)
	radiusd_start "$RADIUS_DIR" "$RADIUS_PORT" "ldap://127.0.0.1:$LDAP_PORT/" || return 1
}

# Start, once, a second radiusd on the shared slapd with a challenge
# lifetime of 10 s and a State key of its own.
start_short_lifetime_server() {
	if [ -n "${SHORT_PORT:-}" ]; then
		return 0
	fi

	SHORT_DIR="$RUN_DIR/short-lifetime-radius"
	mkdir -p "$SHORT_DIR"
	SHORT_PORT=$(free_port)
	if ! TWOSTEP_CONF_SED='s/challenge_lifetime = 120/challenge_lifetime = 10/' \
		radiusd_start "$SHORT_DIR" "$SHORT_PORT" "ldap://127.0.0.1:$LDAP_PORT/"; then
		fail "radiusd_start with challenge_lifetime = 10 failed"
		SHORT_PORT=""
		return 1
	fi
	if ! grep -q 'challenge_lifetime = 10$' "$SHORT_DIR/raddb/mods-enabled/twostep"; then
		fail "challenge_lifetime = 10 is not in $SHORT_DIR/raddb/mods-enabled/twostep"
		return 1
	fi
}

# ---------------------------------------------------------------------------
# Tests on the shared servers
# ---------------------------------------------------------------------------

test_password_round_sends_challenge() {
	mark_log "$RADIUS_DIR"
	expect_challenge "$RADIUS_PORT" alice alice-pw || return
	if ! reply_has_message_authenticator "$ROUND1_OUTPUT"; then
		fail "Access-Challenge has no Message-Authenticator"
		show_output "$ROUND1_OUTPUT"
	fi
	expect_decision "$RADIUS_DIR" alice challenge challenge-sent
}

test_totp_signin_accepted() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	if ! expect_equal "round 2 reply code" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
		return
	fi
	if ! reply_has_message_authenticator "$output"; then
		fail "Access-Accept has no Message-Authenticator"
	fi
	expect_decision "$RADIUS_DIR" alice accept code-accepted
}

test_next_step_code_accepted() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 30)" "State = $ROUND1_STATE")
	if ! expect_equal "round 2 reply code (next step's code, drift 1)" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
		return
	fi
	expect_decision "$RADIUS_DIR" alice accept code-accepted

	# The same State and code again: the challenge ended with the Accept.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 30)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject state-used
}

test_wrong_password_rejected() {
	local output

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice wrong-pw)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "State in the reply" "" "$(radius_reply_state "$output")"
	if ! reply_has_message_authenticator "$output"; then
		fail "Access-Reject has no Message-Authenticator"
	fi
	expect_decision "$RADIUS_DIR" alice reject password-rejected
}

test_unknown_user_same_message() {
	local output

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" nosuchuser some-pw)
	# The same text as for a wrong password, so replies do not reveal which
	# user names exist.
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_equal "State in the reply" "" "$(radius_reply_state "$output")"
	expect_decision "$RADIUS_DIR" nosuchuser reject user-not-found
}

test_empty_password_sends_no_bind() {
	local output binds_before binds_after

	# Warm up: the pools bind the service account when they open
	# connections, which must not count against the empty password.
	send_request "$RADIUS_PORT" dave wrong-pw >/dev/null
	sleep 0.5
	binds_before=$(slapd_count_binds "$LDAP_DIR")

	mark_log "$RADIUS_DIR"
	output=$(send_empty_password "$RADIUS_PORT" alice)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_decision "$RADIUS_DIR" alice reject empty-password

	sleep 0.5
	binds_after=$(slapd_count_binds "$LDAP_DIR")
	expect_equal "slapd bind count across the empty-password request" "$binds_before" "$binds_after"
}

test_absent_password_rejected_by_site() {
	local output binds_before binds_after

	binds_before=$(slapd_count_binds "$LDAP_DIR")

	# radclient leaves out User-Password = "", so the request has no
	# password. The module leaves it alone and the shipped site rejects it.
	output=$(send_request "$RADIUS_PORT" alice "")
	expect_reply "$output" Access-Reject "$MSG_NOT_UNDERSTOOD"

	sleep 0.5
	binds_after=$(slapd_count_binds "$LDAP_DIR")
	expect_equal "slapd bind count across the request without a password" "$binds_before" "$binds_after"
}

test_unenrolled_user_rejected() {
	local output

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" dave dave-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_equal "State in the reply" "" "$(radius_reply_state "$output")"
	expect_decision "$RADIUS_DIR" dave reject not-enrolled
}

test_unenrolled_user_wrong_password_rejected() {
	local output

	# The password is checked first, so a wrong password does not reveal
	# whether the account has a second factor.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" dave wrong-pw)
	expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
	expect_decision "$RADIUS_DIR" dave reject password-rejected
}

test_filter_metacharacters_match_nothing() {
	local output user

	# The module escapes the User-Name in the search filter (RFC 4515), so
	# these names match no entry even with alice's password.
	for user in '*' 'a*)(uid=*' 'alice)(uid=*'; do
		mark_log "$RADIUS_DIR"
		output=$(send_request "$RADIUS_PORT" "$user" alice-pw)
		expect_reply "$output" Access-Reject "$MSG_LOGIN_FAILED"
		expect_decision "$RADIUS_DIR" "$user" reject user-not-found
	done
}

test_stale_code_rejected() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	# Well-formed, but ten time steps old, far outside drift 1.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code -300)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_CODE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject code-invalid
}

test_wrong_code_ends_challenge() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code -300)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_CODE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject code-invalid

	# The right code on the same State comes too late: the user must start
	# again from the password, so a State allows one guess.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject state-used
}

test_malformed_code_rejected() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice abc "State = $ROUND1_STATE")
	expect_equal "reply code" Access-Reject "$(radius_reply_code "$output")"
	expect_decision "$RADIUS_DIR" alice reject code-malformed
}

test_tampered_state_rejected() {
	local output tampered

	expect_challenge "$RADIUS_PORT" alice alice-pw || return
	tampered=$(tamper_state "$ROUND1_STATE")

	# A valid code, so only the State can cause the reject.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 0)" "State = $tampered")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject state-invalid
}

test_expired_state_rejected() {
	local output

	start_short_lifetime_server || return
	expect_challenge "$SHORT_PORT" alice alice-pw || return

	# One second past the 10 s lifetime, plus one for the clock tick. The
	# sleep runs in the background so that INT and TERM end it at once.
	sleep 12 &
	wait $!
	mark_log "$SHORT_DIR"
	output=$(send_request "$SHORT_PORT" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$SHORT_DIR" alice reject state-expired
}

test_state_for_other_user_rejected() {
	local output

	expect_challenge "$RADIUS_PORT" alice alice-pw || return

	# alice's State and alice's valid code, but User-Name bob. The reason
	# in the log is not fixed yet, so any reason matches.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" bob "$(alice_code 0)" "State = $ROUND1_STATE")
	expect_equal "reply code" Access-Reject "$(radius_reply_code "$output")"
	expect_decision "$RADIUS_DIR" bob reject ""
}

test_state_from_other_key_rejected() {
	local output

	start_short_lifetime_server || return
	# Both key files were made by radiusd_start with key id 1, so the id
	# matches and only the key bytes differ.
	if cmp -s "$RADIUS_DIR/$STATE_KEY_PATH" "$SHORT_DIR/$STATE_KEY_PATH"; then
		fail "the two radiusd have the same State key file; the test needs different keys"
		return
	fi
	expect_challenge "$SHORT_PORT" alice alice-pw || return

	# A valid code, so only the State's key can cause the reject.
	mark_log "$RADIUS_DIR"
	output=$(send_request "$RADIUS_PORT" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$RADIUS_DIR" alice reject state-invalid
}

test_foreign_state_rejected_by_site() {
	local output

	# Not our "2SV" prefix: the module leaves the request alone (noop) and
	# the shipped site rejects it.
	output=$(send_request "$RADIUS_PORT" alice alice-pw "State = 0x0123456789abcdef")
	expect_reply "$output" Access-Reject "$MSG_NOT_UNDERSTOOD"
}

test_log_has_no_secrets() {
	local module_lines secret code

	# radiusd -xx prints the attributes of each request, User-Password
	# included, so only the module's own lines and the decision lines are
	# checked.
	module_lines=$(grep -Ei 'twostep|reason=' "$RADIUS_DIR/radiusd.log")
	if [ -z "$module_lines" ]; then
		fail "radiusd log has no lines from the module"
		return
	fi

	for secret in alice-pw bob-pw wrong-pw some-pw "$ALICE_SEED" "$ALICE_SEED_ASCII" "$ALICE_SEED_HEX"; do
		if grep -qiF -- "$secret" <<<"$module_lines"; then
			fail "radiusd log: module lines contain the demo secret '$secret':"
			grep -iF -- "$secret" <<<"$module_lines" | head -n 3 | sed 's/^/      | /'
		fi
	done
	for code in $(printf '%s\n' "${SENT_CODES[@]}" | sort -u); do
		if grep -qE "(^|[^0-9])$code([^0-9]|\$)" <<<"$module_lines"; then
			fail "radiusd log: module lines contain the code $code sent in a request:"
			grep -E "(^|[^0-9])$code([^0-9]|\$)" <<<"$module_lines" | head -n 3 | sed 's/^/      | /'
		fi
	done
}

# ---------------------------------------------------------------------------
# Tests with servers of their own
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Policy: organisation and OU enforcement, exemptions and groups
# ---------------------------------------------------------------------------

DEMO_BASE="dc=example,dc=org"

# Print the decision lines written since mark_log for USER.
decision_lines() {
	tail -n "+$((LOG_MARK + 1))" "$1/radiusd.log" | grep 'reason=' | grep "user=\"$2\""
}

# Check that the decision line for USER names the entry that decided.
expect_decided_by() {
	local workdir=$1 user=$2 dn=$3 lines

	lines=$(decision_lines "$workdir" "$user")
	if ! grep -qF "decided_by=\"$dn\"" <<<"$lines"; then
		fail "decision line for $user: expected decided_by=\"$dn\""
		sed 's/^/      | /' <<<"$lines"
	fi
}

# Apply the LDIF on standard input to the policy tests' slapd, as the rootdn.
ldap_modify() {
	if ! ldapmodify -x -H "ldap://127.0.0.1:$POLICY_LDAP_PORT/" -D "cn=admin,$DEMO_BASE" -w admin-pw \
		>"$RUN_DIR/ldapmodify.out" 2>&1; then
		fail "ldapmodify failed: $(tr '\n' ' ' <"$RUN_DIR/ldapmodify.out")"
		return 1
	fi
}

# Wait until the policy radiusd's cache of policy and group entries (2 s) has expired.
wait_policy_ttl() {
	sleep 2.5 &
	wait $!
}

# Start, once, a slapd with fresh data and a radiusd whose config names the
# demo's exemption and required groups and caches policy entries for 2 s.
# These tests change the directory, so they do not share the main slapd.
start_policy_servers() {
	if [ -n "${POLICY_PORT:-}" ]; then
		return 0
	fi
	POLICY_LDAP_DIR="$RUN_DIR/policy-ldap"
	POLICY_DIR="$RUN_DIR/policy-radius"
	mkdir -p "$POLICY_LDAP_DIR" "$POLICY_DIR"
	POLICY_LDAP_PORT=$(free_port)
	slapd_start "$POLICY_LDAP_DIR" "$POLICY_LDAP_PORT" || { fail "slapd_start failed"; return 1; }
	POLICY_PORT=$(free_port)
	if ! TWOSTEP_CONF_SED='s/^#\([[:space:]]*exempt_group = \)/\1/; s/^#\([[:space:]]*required_group = \)/\1/; s/cache_ttl = 60/cache_ttl = 2/' \
		radiusd_start "$POLICY_DIR" "$POLICY_PORT" "ldap://127.0.0.1:$POLICY_LDAP_PORT/"; then
		fail "radiusd_start for the policy tests failed"
		POLICY_PORT=""
		return 1
	fi
	if ! grep -q '^[[:space:]]*exempt_group = "cn=2sv-exempt' "$POLICY_DIR/raddb/mods-enabled/twostep"; then
		fail "exempt_group is not set in $POLICY_DIR/raddb/mods-enabled/twostep"
		return 1
	fi
}

test_policy_required_org_challenges_alice() {
	start_policy_servers || return
	mark_log "$POLICY_DIR"
	expect_challenge "$POLICY_PORT" alice alice-pw || return
	expect_decision "$POLICY_DIR" alice challenge challenge-sent
	expect_decided_by "$POLICY_DIR" alice "$DEMO_BASE"
}

test_policy_exempt_user_password_only() {
	local output

	start_policy_servers || return
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" carol carol-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" carol accept exempt
	expect_decided_by "$POLICY_DIR" carol "uid=carol,ou=people,$DEMO_BASE"
}

test_policy_optional_ou_overrides_org() {
	local output

	start_policy_servers || return
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" erin erin-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" erin accept optional-not-enrolled
	expect_decided_by "$POLICY_DIR" erin "ou=contractors,$DEMO_BASE"
}

test_policy_idp_ou_password_only() {
	local output

	start_policy_servers || return
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" frank frank-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" frank accept idp
	expect_decided_by "$POLICY_DIR" frank "ou=partners,$DEMO_BASE"
}

test_policy_unenrolled_user_asked_to_enroll() {
	local output

	start_policy_servers || return
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" dave dave-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_decision "$POLICY_DIR" dave reject not-enrolled
	expect_decided_by "$POLICY_DIR" dave "$DEMO_BASE"
}

test_policy_sms_user_without_sms_rejected() {
	local output

	# bob is enrolled in SMS only, which this version cannot send.
	start_policy_servers || return
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" bob bob-pw)
	expect_equal "reply code" Access-Reject "$(radius_reply_code "$output")"
	expect_decision "$POLICY_DIR" bob reject sms-unavailable
}

test_policy_expired_exemption_enforced() {
	local output past

	start_policy_servers || return
	past=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)
	ldap_modify <<LDIF || return
dn: uid=carol,ou=people,$DEMO_BASE
changetype: modify
replace: twostepExemptUntil
twostepExemptUntil: $past
LDIF
	# User attributes are never cached: the change applies at once.
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" carol carol-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_decision "$POLICY_DIR" carol reject not-enrolled

	ldap_modify <<LDIF || return
dn: uid=carol,ou=people,$DEMO_BASE
changetype: modify
delete: twostepExemptUntil
LDIF
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" carol carol-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" carol accept exempt
}

test_policy_exempt_group_member_password_only() {
	local output

	start_policy_servers || return
	ldap_modify <<LDIF || return
dn: cn=2sv-exempt,ou=groups,$DEMO_BASE
changetype: modify
add: member
member: uid=dave,ou=people,$DEMO_BASE
LDIF
	wait_policy_ttl
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" dave dave-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" dave accept exempt-group
	expect_decided_by "$POLICY_DIR" dave "cn=2sv-exempt,ou=groups,$DEMO_BASE"
}

test_policy_required_group_beats_optional_ou() {
	local output

	start_policy_servers || return
	ldap_modify <<LDIF || return
dn: cn=2sv-required,ou=groups,$DEMO_BASE
changetype: modify
add: member
member: uid=erin,ou=contractors,$DEMO_BASE
LDIF
	wait_policy_ttl
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" erin erin-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_decision "$POLICY_DIR" erin reject not-enrolled
	expect_decided_by "$POLICY_DIR" erin "cn=2sv-required,ou=groups,$DEMO_BASE"

	# Exemption wins over the required group.
	ldap_modify <<LDIF || return
dn: cn=2sv-exempt,ou=groups,$DEMO_BASE
changetype: modify
add: member
member: uid=erin,ou=contractors,$DEMO_BASE
LDIF
	wait_policy_ttl
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" erin erin-pw)
	expect_reply "$output" Access-Accept ""
	expect_decision "$POLICY_DIR" erin accept exempt-group
}

test_policy_change_applies_after_ttl() {
	local output

	start_policy_servers || return
	ldap_modify <<LDIF || return
dn: ou=partners,$DEMO_BASE
changetype: modify
replace: twostepEnforcement
twostepEnforcement: required
LDIF
	wait_policy_ttl
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" frank frank-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_decision "$POLICY_DIR" frank reject not-enrolled
	expect_decided_by "$POLICY_DIR" frank "ou=partners,$DEMO_BASE"
}

test_policy_unknown_enforcement_is_required() {
	local output

	start_policy_servers || return
	ldap_modify <<LDIF || return
dn: ou=partners,$DEMO_BASE
changetype: modify
replace: twostepEnforcement
twostepEnforcement: sometimes
LDIF
	wait_policy_ttl
	mark_log "$POLICY_DIR"
	output=$(send_request "$POLICY_PORT" frank frank-pw)
	expect_reply "$output" Access-Reject "$MSG_NOT_ENROLLED"
	expect_decision "$POLICY_DIR" frank reject not-enrolled
	if ! tail -n "+$((LOG_MARK + 1))" "$POLICY_DIR/radiusd.log" |
		grep -q 'twostepEnforcement "sometimes" is not required, optional or idp'; then
		fail "no configuration error logged for twostepEnforcement \"sometimes\""
	fi
}

test_ldap_failover_signin() {
	local ldap_dir="$RUN_DIR/failover-ldap" radius_dir="$RUN_DIR/failover-radius"
	local ldap_port radius_port dead_port output

	mkdir -p "$ldap_dir" "$radius_dir"
	ldap_port=$(free_port)
	slapd_start "$ldap_dir" "$ldap_port" || { fail "slapd_start failed"; return; }
	# Nothing listens on the first URI, so connections must fall over to
	# the second.
	dead_port=$(free_port)
	radius_port=$(free_port)
	radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$dead_port/" "ldap://127.0.0.1:$ldap_port/" ||
		{ fail "radiusd_start failed"; return; }

	expect_challenge "$radius_port" alice alice-pw || return
	output=$(send_request "$radius_port" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	if ! expect_equal "round 2 reply code" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
	fi

	radiusd_stop "$radius_dir"
	slapd_stop "$ldap_dir"
}

test_ldap_writes_return_to_provider() {
	local provider_dir="$RUN_DIR/provider-ldap" replica_dir="$RUN_DIR/replica-ldap"
	local radius_dir="$RUN_DIR/provider-radius" provider_port replica_port radius_port output

	mkdir -p "$provider_dir" "$replica_dir" "$radius_dir"
	provider_port=$(free_port)
	slapd_start "$provider_dir" "$provider_port" || { fail "slapd_start of the provider failed"; return; }

	# The replica: the same data, read-only, as a replica of the provider is.
	replica_port=$(free_port)
	slapd_start "$replica_dir" "$replica_port" || { fail "slapd_start of the replica failed"; return; }
	slapd_stop "$replica_dir"
	echo "readonly on" >>"$replica_dir/slapd/slapd.conf"
	slapd_resume "$replica_dir" "$replica_port" || { fail "slapd_resume of the replica failed"; return; }

	radius_port=$(free_port)
	radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$provider_port/" "ldap://127.0.0.1:$replica_port/" ||
		{ fail "radiusd_start failed"; return; }

	# While the provider is down, round 1 is served by the replica.
	slapd_stop "$provider_dir"
	expect_challenge "$radius_port" alice alice-pw || return
	slapd_resume "$provider_dir" "$provider_port" || { fail "slapd_resume of the provider failed"; return; }

	# Round 2's write must reach the provider, not fail on the replica.
	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	if ! expect_equal "round 2 reply code after the provider came back" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
		tail -n "+$((LOG_MARK + 1))" "$radius_dir/radiusd.log" | grep -E 'reason=|Modify' | sed 's/^/      | /'
	fi

	radiusd_stop "$radius_dir"
	slapd_stop "$replica_dir"
	slapd_stop "$provider_dir"
}

test_ldap_outage_and_recovery() {
	local ldap_dir="$RUN_DIR/outage-ldap" radius_dir="$RUN_DIR/outage-radius"
	local ldap_port radius_port output code tries

	mkdir -p "$ldap_dir" "$radius_dir"
	ldap_port=$(free_port)
	slapd_start "$ldap_dir" "$ldap_port" || { fail "slapd_start failed"; return; }
	radius_port=$(free_port)
	radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$ldap_port/" ||
		{ fail "radiusd_start failed"; return; }

	# The pools hold working connections before the outage.
	expect_challenge "$radius_port" alice alice-pw || return

	slapd_stop "$ldap_dir"
	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice alice-pw)
	expect_reply "$output" Access-Reject "$MSG_UNAVAILABLE"
	expect_decision "$radius_dir" alice "" ldap-unavailable

	# slapd comes back with the same data and port, and radiusd must
	# reconnect without a restart.
	slapd_resume "$ldap_dir" "$ldap_port" || { fail "slapd_resume failed"; return; }
	tries=0
	while :; do
		output=$(send_request "$radius_port" alice alice-pw)
		code=$(radius_reply_code "$output")
		if [ "$code" = Access-Challenge ] || [ "$tries" -ge 10 ]; then
			break
		fi
		tries=$((tries + 1))
		sleep 0.5
	done
	if ! expect_equal "round 1 reply code within 5 s of slapd_resume" Access-Challenge "$code"; then
		show_output "$output"
		return
	fi

	output=$(send_request "$radius_port" alice "$(alice_code 0)" "State = $(radius_reply_state "$output")")
	if ! expect_equal "round 2 reply code after slapd_resume" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
	fi

	radiusd_stop "$radius_dir"
	slapd_stop "$ldap_dir"
}

# ---------------------------------------------------------------------------
# LDAP over TLS, each test with a slapd started with SLAPD_TLS=1 and a
# radiusd of its own
# ---------------------------------------------------------------------------

# Print a TWOSTEP_CONF_SED script that sets tls { start_tls } to START_TLS
# (yes or no) and tls { ca_file } to CA_FILE.
tls_conf_sed() {
	local start_tls=$1 ca_file=$2

	printf 's/start_tls = no$/start_tls = %s/\n' "$start_tls"
	printf 's|^#[[:space:]]*ca_file = .*|\t\t\tca_file = "%s"|\n' "$ca_file"
}

# Check that the tls section of WORKDIR's module config has START_TLS,
# CA_FILE and require_cert = "demand".
expect_tls_config() {
	local workdir=$1 start_tls=$2 ca_file=$3
	local conf="$workdir/raddb/mods-enabled/twostep" setting

	for setting in "start_tls = $start_tls" "ca_file = \"$ca_file\"" 'require_cert = "demand"'; do
		if ! grep -qE "^[[:space:]]*$(regex_escape "$setting")[[:space:]]*\$" "$conf"; then
			fail "'$setting' is not in $conf"
		fi
	done
}

# Print the number of STARTTLS requests in WORKDIR's slapd log.
slapd_count_starttls() {
	grep -c ' STARTTLS$' "$1/slapd/slapd.log" || true
}

# Print "BINDS PLAIN": the number of bind requests with a DN in WORKDIR's
# slapd log, and how many of them came on a connection where slapd had not
# logged "TLS established". Anonymous binds, such as the start-up probe's,
# are not counted.
slapd_count_binds_by_tls() {
	local log="$1/slapd/slapd.log"

	awk '
		function conn_id(   i) {
			for (i = 1; i <= NF; i++) if ($i ~ /^conn=[0-9]+$/) return $i
			return ""
		}
		FNR == NR { if (/ TLS established /) tls[conn_id()] = 1; next }
		/ BIND dn="[^"]+" method=[0-9]+$/ {
			binds++
			if (!(conn_id() in tls)) plain++
		}
		END { printf "%d %d\n", binds, plain }
	' "$log" "$log"
}

# Check that slapd received at least one bind with a DN in WORKDIR's log and
# that every one came over TLS.
expect_binds_over_tls() {
	local workdir=$1 counts binds plain

	counts=$(slapd_count_binds_by_tls "$workdir")
	binds=${counts% *}
	plain=${counts#* }
	if [ "$binds" -lt 1 ]; then
		fail "slapd log: no bind with a DN, so the module never bound over TLS"
	fi
	expect_equal "slapd log: binds with a DN on connections without TLS (of $binds)" 0 "$plain"
}

test_ldap_starttls_signin() {
	local ldap_dir="$RUN_DIR/starttls-ldap" radius_dir="$RUN_DIR/starttls-radius"
	local ldap_port radius_port ca_file output starttls_count

	mkdir -p "$ldap_dir" "$radius_dir"
	ldap_port=$(free_port)
	SLAPD_TLS=1 slapd_start "$ldap_dir" "$ldap_port" || { fail "SLAPD_TLS=1 slapd_start failed"; return; }
	ca_file="$ldap_dir/slapd/tls/ca.pem"
	radius_port=$(free_port)
	TWOSTEP_CONF_SED=$(tls_conf_sed yes "$ca_file") \
		radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$ldap_port/" ||
		{ fail "radiusd_start with start_tls = yes failed"; return; }
	expect_tls_config "$radius_dir" yes "$ca_file"

	mark_log "$radius_dir"
	expect_challenge "$radius_port" alice alice-pw || return
	expect_decision "$radius_dir" alice challenge challenge-sent

	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice "$(alice_code 0)" "State = $ROUND1_STATE")
	if ! expect_equal "round 2 reply code" Access-Accept "$(radius_reply_code "$output")"; then
		show_output "$output"
		return
	fi
	expect_decision "$radius_dir" alice accept code-accepted

	# Each pool opens its connections with StartTLS, and slapd rejects a
	# simple bind without TLS, so the binds above came over TLS.
	starttls_count=$(slapd_count_starttls "$ldap_dir")
	if [ "$starttls_count" -lt 1 ]; then
		fail "slapd log: no STARTTLS request"
	fi
	expect_binds_over_tls "$ldap_dir"

	radiusd_stop "$radius_dir"
	slapd_stop "$ldap_dir"
}

test_ldaps_round1_challenge() {
	local ldap_dir="$RUN_DIR/ldaps-ldap" radius_dir="$RUN_DIR/ldaps-radius"
	local ldap_port ldaps_port radius_port ca_file

	mkdir -p "$ldap_dir" "$radius_dir"
	ldap_port=$(free_port)
	ldaps_port=$(free_port)
	SLAPD_TLS=1 slapd_start "$ldap_dir" "$ldap_port" "$ldaps_port" ||
		{ fail "SLAPD_TLS=1 slapd_start with an ldaps port failed"; return; }
	ca_file="$ldap_dir/slapd/tls/ca.pem"
	radius_port=$(free_port)
	# start_tls stays "no": ldaps:// is TLS from the first byte.
	TWOSTEP_CONF_SED=$(tls_conf_sed no "$ca_file") \
		radiusd_start "$radius_dir" "$radius_port" "ldaps://127.0.0.1:$ldaps_port/" ||
		{ fail "radiusd_start with an ldaps:// URI failed"; return; }
	expect_tls_config "$radius_dir" no "$ca_file"

	mark_log "$radius_dir"
	expect_challenge "$radius_port" alice alice-pw || return
	expect_decision "$radius_dir" alice challenge challenge-sent

	expect_equal "slapd log: STARTTLS requests on an ldaps:// connection" 0 "$(slapd_count_starttls "$ldap_dir")"
	expect_binds_over_tls "$ldap_dir"

	radiusd_stop "$radius_dir"
	slapd_stop "$ldap_dir"
}

test_ldap_starttls_untrusted_ca_unavailable() {
	local ldap_dir="$RUN_DIR/untrusted-ca-ldap" radius_dir="$RUN_DIR/untrusted-ca-radius"
	local ldap_port radius_port other_ca output counts

	mkdir -p "$ldap_dir" "$radius_dir"
	ldap_port=$(free_port)
	SLAPD_TLS=1 slapd_start "$ldap_dir" "$ldap_port" || { fail "SLAPD_TLS=1 slapd_start failed"; return; }
	# A CA of its own, which did not sign slapd's certificate.
	tls_ca_create "$radius_dir/other-ca" || { fail "tls_ca_create failed"; return; }
	other_ca="$radius_dir/other-ca/ca.pem"
	radius_port=$(free_port)
	# With the shipped start = 2, radiusd would not start at all, because
	# fr_connection_pool_init of FreeRADIUS 3.2.1 fails the module when the
	# pool cannot open its start connections. With start and min 0, radiusd
	# starts and each request tries to connect.
	TWOSTEP_CONF_SED="$(tls_conf_sed yes "$other_ca")"$'\n''s/^\([[:space:]]*\)\(start\|min\) = 2$/\1\2 = 0/' \
		radiusd_start "$radius_dir" "$radius_port" "ldap://127.0.0.1:$ldap_port/" ||
		{ fail "radiusd_start with start_tls = yes and another CA failed"; return; }
	expect_tls_config "$radius_dir" yes "$other_ca"

	mark_log "$radius_dir"
	output=$(send_request "$radius_port" alice alice-pw)
	expect_reply "$output" Access-Reject "$MSG_UNAVAILABLE"
	expect_decision "$radius_dir" alice "" ldap-unavailable

	if ! tail -n "+$((LOG_MARK + 1))" "$radius_dir/radiusd.log" |
		grep -qF "StartTLS with ldap://127.0.0.1:$ldap_port/ failed"; then
		fail "radiusd log: no 'StartTLS with ldap://127.0.0.1:$ldap_port/ failed' line since the request; module lines:"
		tail -n "+$((LOG_MARK + 1))" "$radius_dir/radiusd.log" | grep -i 'twostep' | tail -n 10 | sed 's/^/      | /'
	fi

	# The handshake failed before any bind, so no password reached slapd.
	if [ "$(slapd_count_starttls "$ldap_dir")" -lt 1 ]; then
		fail "slapd log: no STARTTLS request"
	fi
	counts=$(slapd_count_binds_by_tls "$ldap_dir")
	expect_equal "slapd log: binds with a DN" 0 "${counts% *}"

	radiusd_stop "$radius_dir"
	slapd_stop "$ldap_dir"
}

test_tls_slapd_rejects_plain_bind() {
	local ldap_dir="$RUN_DIR/tls-only-ldap" ldap_port uri output status
	local identity="cn=radius,ou=services,dc=example,dc=org"

	mkdir -p "$ldap_dir"
	ldap_port=$(free_port)
	SLAPD_TLS=1 slapd_start "$ldap_dir" "$ldap_port" || { fail "SLAPD_TLS=1 slapd_start failed"; return; }
	uri="ldap://127.0.0.1:$ldap_port/"

	# The service account's bind without TLS: confidentialityRequired (13).
	status=0
	output=$(ldapwhoami -x -H "$uri" -o nettimeout=3 -D "$identity" -w radius-pw 2>&1) || status=$?
	if ! expect_equal "ldapwhoami exit status, bind without TLS" 13 "$status"; then
		show_output "$output"
	fi

	# The same bind after StartTLS (-ZZ: fail unless TLS starts) succeeds.
	status=0
	output=$(LDAPTLS_CACERT="$ldap_dir/slapd/tls/ca.pem" LDAPTLS_REQCERT=demand \
		ldapwhoami -ZZ -x -H "$uri" -o nettimeout=3 -D "$identity" -w radius-pw 2>&1) || status=$?
	if ! expect_equal "ldapwhoami exit status, bind after StartTLS" 0 "$status"; then
		show_output "$output"
	fi

	slapd_stop "$ldap_dir"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

# Order matters for the accepted sign-ins: the current code comes before the
# next step's code, and test_log_has_no_secrets comes after every request
# to the shared radiusd.
ALL_TESTS=(
	test_password_round_sends_challenge
	test_totp_signin_accepted
	test_next_step_code_accepted
	test_wrong_password_rejected
	test_unknown_user_same_message
	test_empty_password_sends_no_bind
	test_absent_password_rejected_by_site
	test_unenrolled_user_rejected
	test_unenrolled_user_wrong_password_rejected
	test_filter_metacharacters_match_nothing
	test_stale_code_rejected
	test_wrong_code_ends_challenge
	test_malformed_code_rejected
	test_tampered_state_rejected
	test_expired_state_rejected
	test_state_for_other_user_rejected
	test_state_from_other_key_rejected
	test_foreign_state_rejected_by_site
	test_log_has_no_secrets
	test_policy_required_org_challenges_alice
	test_policy_exempt_user_password_only
	test_policy_optional_ou_overrides_org
	test_policy_idp_ou_password_only
	test_policy_unenrolled_user_asked_to_enroll
	test_policy_sms_user_without_sms_rejected
	test_policy_expired_exemption_enforced
	test_policy_exempt_group_member_password_only
	test_policy_required_group_beats_optional_ou
	test_policy_change_applies_after_ttl
	test_policy_unknown_enforcement_is_required
	test_ldap_failover_signin
	test_ldap_writes_return_to_provider
	test_ldap_outage_and_recovery
	test_ldap_starttls_signin
	test_ldaps_round1_challenge
	test_ldap_starttls_untrusted_ca_unavailable
	test_tls_slapd_rejects_plain_bind
)

# Run an integration suite: NAME names its run folder and its messages,
# START is the function that starts its servers, and the remaining arguments
# are the tests to run. Prints "N passed, N failed" last and exits 1 when
# any test failed. The run folder is kept when a test failed.
run_integration_suite() {
	local suite_name=$1 start=$2 test_name started
	shift 2

	started=$(date +%s)
	if [ ! -f "$ROOT/build/rlm_twostep.so" ]; then
		echo "tests/integration ($suite_name): $ROOT/build/rlm_twostep.so is missing; run 'make' first."
		echo "0 passed, $# failed"
		exit 1
	fi

	mkdir -p "$ROOT/build/test"
	RUN_DIR=$(mktemp -d "$ROOT/build/test/$suite_name.XXXXXX")
	echo "tests/integration ($suite_name): servers and logs in $RUN_DIR"
	if ! "$start"; then
		echo "tests/integration ($suite_name): starting the servers failed; see the logs in $RUN_DIR"
		echo "0 passed, $# failed"
		exit 1
	fi

	for test_name in "$@"; do
		run_test "$test_name"
	done

	stop_all
	echo "tests/integration ($suite_name): ran in $(( $(date +%s) - started )) s"
	if [ "$FAILED" -gt 0 ]; then
		echo "failed: ${FAILED_TESTS[*]}"
		echo "tests/integration ($suite_name): logs kept in $RUN_DIR"
	else
		rm -rf "$RUN_DIR"
	fi
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

# tests/integration/sms.sh sources this file for its helpers and stops here.
if [ -n "${TWOSTEP_INTEGRATION_HELPERS_ONLY:-}" ]; then
	return 0
fi

if [ $# -gt 0 ]; then
	run_integration_suite integration start_shared_servers "$@"
fi
run_integration_suite integration start_shared_servers "${ALL_TESTS[@]}"
