#!/usr/bin/env bash
#
# Integration tests for SMS codes: a real slapd, real radiusd processes
# loading build/rlm_twostep.so, and mock SMS gateways (tests/mock-sms-gateway.py),
# all on 127.0.0.1. Codes are read from the gateways' outbox files.
#
# Usage: tests/integration/sms.sh [TEST_FUNCTION...]
# The last line of output is "N passed, N failed"; the exit status is 1 when
# any test failed.
#
# Layout: one slapd with fresh demo data and two gateways, "gw1" and "gw2".
# radiusd "main" uses gw1 then gw2 with no per-user interval, so tests can
# send several codes. radiusd "limit-a" and "limit-b" share the slapd with
# the default per-user limits, to show they hold across servers.

set -u

SMS_DIR_OF_SCRIPT=$(cd "$(dirname "$0")" && pwd)
TWOSTEP_INTEGRATION_HELPERS_ONLY=1
# shellcheck source=run.sh
. "$SMS_DIR_OF_SCRIPT/run.sh"
unset TWOSTEP_INTEGRATION_HELPERS_ONLY

DEMO_BASE="dc=example,dc=org"
BOB_NUMBER=+15550100200

# Read the texts of the SMS messages from the module config.
MSG_SMS_LIMITED_PREFIX=$(config_message sms_limited | sed 's/{wait}.*//')
MSG_SMS_FAILED=$(config_message sms_failed)
MSG_SMS_FALLBACK=$(config_message sms_fallback)
MSG_PHONE_INVALID=$(config_message phone_invalid)

# Apply the LDIF on standard input to the slapd of these tests, as the rootdn.
sms_ldap_modify() {
	if ! ldapmodify -x -H "ldap://127.0.0.1:$SMS_LDAP_PORT/" -D "cn=admin,$DEMO_BASE" -w admin-pw \
		>"$RUN_DIR/ldapmodify.out" 2>&1; then
		fail "ldapmodify failed: $(tr '\n' ' ' <"$RUN_DIR/ldapmodify.out")"
		return 1
	fi
}

# Print the Reply-Message of a reply, with radclient's escaping of quotes undone.
reply_text() {
	radius_reply_message "$1" | sed 's/\\"/"/g'
}

# Send round 1 for USER and expect an SMS challenge. Sets ROUND1_STATE.
expect_sms_challenge() {
	local port=$1 user=$2 password=$3 output message

	ROUND1_OUTPUT=$(send_request "$port" "$user" "$password")
	ROUND1_STATE=$(radius_reply_state "$ROUND1_OUTPUT")
	message=$(reply_text "$ROUND1_OUTPUT")
	if ! expect_equal "round 1 reply code" Access-Challenge "$(radius_reply_code "$ROUND1_OUTPUT")"; then
		show_output "$ROUND1_OUTPUT"
		return 1
	fi
	if [[ "$message" != "Enter the code sent to "* ]]; then
		fail "round 1 Reply-Message: expected the SMS prompt, got '$message'"
		return 1
	fi
}

# Wait for a new message in GATEWAY's outbox after COUNT messages, and print its code.
new_code() {
	local gateway=$1 count=$2 tries=0

	while [ "$(sms_outbox_count "$RUN_DIR" "$gateway")" -le "$count" ] && [ $tries -lt 30 ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
	sms_outbox_last_code "$RUN_DIR" "$gateway"
}

start_sms_servers() {
	local name
	SMS_LDAP_PORT=$(free_port)
	slapd_start "$RUN_DIR/ldap" "$SMS_LDAP_PORT" || return 1
	mkdir -p "$RUN_DIR/ldap"

	sms_gateway_start "$RUN_DIR" gw1 0 accept || return 1
	GW1_PORT=$SMS_GATEWAY_PORT
	sms_gateway_start "$RUN_DIR" gw2 0 accept || return 1
	GW2_PORT=$SMS_GATEWAY_PORT

	MAIN_DIR="$RUN_DIR/main"
	mkdir -p "$MAIN_DIR"
	MAIN_PORT=$(free_port)
	TWOSTEP_SMS_GATEWAYS="gw1=http://127.0.0.1:$GW1_PORT/send gw2=http://127.0.0.1:$GW2_PORT/send" \
	TWOSTEP_CONF_SED='s/min_interval = 30/min_interval = 0/; s/max_per_hour = 5/max_per_hour = 100/; s/send_budget = 4000/send_budget = 3000/; s/code_lifetime = 300/code_lifetime = 10/' \
		radiusd_start "$MAIN_DIR" "$MAIN_PORT" "ldap://127.0.0.1:$SMS_LDAP_PORT/" || return 1

	for name in limit-a limit-b; do
		mkdir -p "$RUN_DIR/$name"
	done
	LIMIT_A_PORT=$(free_port)
	TWOSTEP_SMS_GATEWAYS="gw1=http://127.0.0.1:$GW1_PORT/send" \
		radiusd_start "$RUN_DIR/limit-a" "$LIMIT_A_PORT" "ldap://127.0.0.1:$SMS_LDAP_PORT/" || return 1
	LIMIT_B_PORT=$(free_port)
	TWOSTEP_SMS_GATEWAYS="gw1=http://127.0.0.1:$GW1_PORT/send" \
		radiusd_start "$RUN_DIR/limit-b" "$LIMIT_B_PORT" "ldap://127.0.0.1:$SMS_LDAP_PORT/" || return 1
}

# Make USER an SMS user with NUMBER.
enroll_sms() {
	local dn=$1 number=$2

	sms_ldap_modify <<LDIF
dn: $dn
changetype: modify
replace: twostepMethod
twostepMethod: sms
-
replace: mobile
mobile: $number
LDIF
}

test_sms_signin_accepted() {
	local count output code

	count=$(sms_outbox_count "$RUN_DIR" gw1)
	mark_log "$MAIN_DIR"
	expect_sms_challenge "$MAIN_PORT" bob bob-pw || return
	expect_equal "Reply-Message" 'Enter the code sent to +1 *** *** 0200. Reply "resend" for a new code.' \
		"$(reply_text "$ROUND1_OUTPUT")"
	expect_decision "$MAIN_DIR" bob challenge sms-sent

	code=$(new_code gw1 "$count") || { fail "no code in gw1's outbox"; return; }
	expect_equal "recipient" "$BOB_NUMBER" "$(tail -n 1 "$RUN_DIR/gw1-outbox.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["to"])')"

	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob "$code" "State = $ROUND1_STATE")
	expect_equal "round 2 reply code" Access-Accept "$(radius_reply_code "$output")" || show_output "$output"
	expect_decision "$MAIN_DIR" bob accept code-accepted

	# The code works once: the same State and code again are refused.
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob "$code" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$MAIN_DIR" bob reject state-used
}

test_sms_wrong_code_rejected() {
	local count code wrong output

	count=$(sms_outbox_count "$RUN_DIR" gw1)
	expect_sms_challenge "$MAIN_PORT" bob bob-pw || return
	code=$(new_code gw1 "$count") || { fail "no code in gw1's outbox"; return; }
	wrong=$(printf '%06d' $(( (10#$code + 1) % 1000000 )))

	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob "$wrong" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_CODE_INVALID"
	expect_decision "$MAIN_DIR" bob reject code-invalid
}

test_sms_first_gateway_500_second_used() {
	local count1 count2 code output

	sms_gateway_set_mode "$GW1_PORT" error500 || { fail "switching gw1 to error500 failed"; return; }
	count1=$(sms_outbox_count "$RUN_DIR" gw1)
	count2=$(sms_outbox_count "$RUN_DIR" gw2)
	mark_log "$MAIN_DIR"
	expect_sms_challenge "$MAIN_PORT" bob bob-pw || { sms_gateway_set_mode "$GW1_PORT" accept; return; }
	code=$(new_code gw2 "$count2") || fail "no code in gw2's outbox"
	expect_equal "messages in gw1's outbox" "$count1" "$(sms_outbox_count "$RUN_DIR" gw1)"
	if ! tail -n "+$((LOG_MARK + 1))" "$MAIN_DIR/radiusd.log" | grep -q 'Gateway gw1 failed for +1 \*\*\* \*\*\* 0200: HTTP 500'; then
		fail "no log line for gw1's HTTP 500"
	fi
	sms_gateway_set_mode "$GW1_PORT" accept

	output=$(send_request "$MAIN_PORT" bob "$code" "State = $ROUND1_STATE")
	expect_equal "round 2 reply code" Access-Accept "$(radius_reply_code "$output")"
}

test_sms_error_body_is_failure() {
	local count2

	sms_gateway_set_mode "$GW1_PORT" error-body || { fail "switching gw1 failed"; return; }
	count2=$(sms_outbox_count "$RUN_DIR" gw2)
	mark_log "$MAIN_DIR"
	expect_sms_challenge "$MAIN_PORT" bob bob-pw
	new_code gw2 "$count2" >/dev/null || fail "gw1's error body was taken as success: no message at gw2"
	if ! tail -n "+$((LOG_MARK + 1))" "$MAIN_DIR/radiusd.log" | grep -q 'Gateway gw1 failed for .*HTTP 200'; then
		fail "no log line for gw1's HTTP 200 with an error body"
	fi
	sms_gateway_set_mode "$GW1_PORT" accept
}

test_sms_all_gateways_down_rejected() {
	local output

	sms_gateway_set_mode "$GW1_PORT" error500
	sms_gateway_set_mode "$GW2_PORT" error500
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob bob-pw)
	expect_reply "$output" Access-Reject "$MSG_SMS_FAILED"
	expect_decision "$MAIN_DIR" bob reject sms-send-failed
	sms_gateway_set_mode "$GW1_PORT" accept
	sms_gateway_set_mode "$GW2_PORT" accept
}

test_sms_hanging_gateway_gives_up_at_budget() {
	local output other start end elapsed pid

	sms_gateway_set_mode "$GW1_PORT" hang
	sms_gateway_set_mode "$GW2_PORT" hang
	mark_log "$MAIN_DIR"
	start=$(date +%s%N)
	# radclient must wait longer than the module's 3 s budget.
	TWOSTEP_RADCLIENT_TIMEOUT=8 send_request "$MAIN_PORT" bob bob-pw >"$RUN_DIR/hang.out" &
	pid=$!

	# Meanwhile radiusd still serves other users.
	sleep 0.5
	other=$(send_request "$MAIN_PORT" carol carol-pw)
	expect_equal "carol's reply while bob's SMS hangs" Access-Accept "$(radius_reply_code "$other")"

	wait "$pid"
	end=$(date +%s%N)
	elapsed=$(( (end - start) / 1000000 ))
	output=$(cat "$RUN_DIR/hang.out")
	expect_reply "$output" Access-Reject "$MSG_SMS_FAILED"
	# gw1 times out after its 2000 ms; gw2 gets the 1000 ms left of the 3000 ms budget.
	if ! tail -n "+$((LOG_MARK + 1))" "$MAIN_DIR/radiusd.log" | grep -q 'Gateway gw1 failed for .*Timeout was reached'; then
		fail "no timeout logged for gw1"
	fi
	if [ "$elapsed" -gt 6000 ]; then
		fail "bob's request took $elapsed ms, more than the 3000 ms send budget allows"
	fi
	sms_gateway_set_mode "$GW1_PORT" accept
	sms_gateway_set_mode "$GW2_PORT" accept
}

test_sms_resend_sends_new_code() {
	local count code1 code2 output

	count=$(sms_outbox_count "$RUN_DIR" gw1)
	expect_sms_challenge "$MAIN_PORT" bob bob-pw || return
	code1=$(new_code gw1 "$count") || { fail "no first code"; return; }

	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob resend "State = $ROUND1_STATE")
	expect_equal "reply to resend" Access-Challenge "$(radius_reply_code "$output")" || { show_output "$output"; return; }
	expect_decision "$MAIN_DIR" bob challenge sms-sent
	code2=$(new_code gw1 "$((count + 1))") || { fail "no second code"; return; }

	# The first State was used up by "resend"; the new one takes the new code.
	output=$(send_request "$MAIN_PORT" bob "$code2" "State = $(radius_reply_state "$output")")
	expect_equal "round 2 with the new code" Access-Accept "$(radius_reply_code "$output")"
	[ "$code1" != "$code2" ] || echo "    (the two random codes happen to be equal)"
}

test_sms_switch_to_app_and_back() {
	local count output code

	enroll_sms "uid=alice,ou=people,$DEMO_BASE" "+1 555 010 0100" || return
	count=$(sms_outbox_count "$RUN_DIR" gw1)
	expect_sms_challenge "$MAIN_PORT" alice alice-pw || return

	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" alice app "State = $ROUND1_STATE")
	expect_reply "$output" Access-Challenge "$MSG_CHALLENGE" || return
	expect_decision "$MAIN_DIR" alice challenge switch-to-app

	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" alice sms "State = $(radius_reply_state "$output")")
	expect_equal "reply to sms" Access-Challenge "$(radius_reply_code "$output")" || { show_output "$output"; return; }
	expect_decision "$MAIN_DIR" alice challenge sms-sent
	code=$(new_code gw1 "$((count + 1))") || { fail "no code after switching back to SMS"; return; }

	output=$(send_request "$MAIN_PORT" alice "$code" "State = $(radius_reply_state "$output")")
	expect_equal "round 2 with the SMS code" Access-Accept "$(radius_reply_code "$output")"
}

test_sms_failure_falls_back_to_app() {
	local output

	# alice is an SMS user with an app since the previous test.
	sms_gateway_set_mode "$GW1_PORT" error500
	sms_gateway_set_mode "$GW2_PORT" error500
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" alice alice-pw)
	expect_reply "$output" Access-Challenge "$MSG_SMS_FALLBACK"
	expect_decision "$MAIN_DIR" alice challenge sms-failed-totp
	sms_gateway_set_mode "$GW1_PORT" accept
	sms_gateway_set_mode "$GW2_PORT" accept

	output=$(send_request "$MAIN_PORT" alice "$(alice_code 0)" "State = $(radius_reply_state "$output")")
	expect_equal "round 2 with the app's code" Access-Accept "$(radius_reply_code "$output")"
}

test_sms_expired_code_rejected() {
	local count code output

	count=$(sms_outbox_count "$RUN_DIR" gw1)
	expect_sms_challenge "$MAIN_PORT" bob bob-pw || return
	code=$(new_code gw1 "$count") || { fail "no code"; return; }

	# The main radiusd gives codes 10 s; wait past that.
	sleep 11 &
	wait $!
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" bob "$code" "State = $ROUND1_STATE")
	expect_reply "$output" Access-Reject "$MSG_STATE_INVALID"
	expect_decision "$MAIN_DIR" bob reject state-expired
}

test_sms_invalid_number_rejected() {
	local count output

	enroll_sms "uid=dave,ou=people,$DEMO_BASE" "555-CALL-DAVE" || return
	count=$(sms_outbox_count "$RUN_DIR" gw1)
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" dave dave-pw)
	expect_reply "$output" Access-Reject "$MSG_PHONE_INVALID"
	expect_decision "$MAIN_DIR" dave reject phone-invalid
	expect_equal "messages sent" "$count" "$(sms_outbox_count "$RUN_DIR" gw1)"
}

test_sms_country_not_allowed() {
	local count output

	# Only +1 numbers may receive codes in these tests.
	enroll_sms "uid=dave,ou=people,$DEMO_BASE" "+44 7700 900123" || return
	count=$(sms_outbox_count "$RUN_DIR" gw1)
	mark_log "$MAIN_DIR"
	output=$(send_request "$MAIN_PORT" dave dave-pw)
	expect_reply "$output" Access-Reject "$MSG_PHONE_INVALID"
	expect_decision "$MAIN_DIR" dave reject country-not-allowed
	expect_equal "messages sent" "$count" "$(sms_outbox_count "$RUN_DIR" gw1)"
}

test_sms_limit_holds_across_servers() {
	local output message

	# dave gets a +1 number; limit-a sends him a code, then limit-b must
	# refuse another within the 30 s interval stored on his entry.
	enroll_sms "uid=dave,ou=people,$DEMO_BASE" "+1 555 010 0300" || return
	expect_sms_challenge "$LIMIT_A_PORT" dave dave-pw || return

	mark_log "$RUN_DIR/limit-b"
	output=$(send_request "$LIMIT_B_PORT" dave dave-pw)
	message=$(reply_text "$output")
	expect_equal "reply code at the second server" Access-Reject "$(radius_reply_code "$output")"
	if [[ "$message" != "$MSG_SMS_LIMITED_PREFIX"*" seconds." ]]; then
		fail "Reply-Message: expected '$MSG_SMS_LIMITED_PREFIX... seconds.', got '$message'"
	fi
	expect_decision "$RUN_DIR/limit-b" dave reject sms-limit-interval
}

test_sms_hourly_limit() {
	local output i

	# The main radiusd allows 100 codes an hour; erin gets a phone and 5
	# existing send times from the last hour, then one more is refused at
	# limit-a, whose limit is the default 5.
	sms_ldap_modify <<LDIF || return
dn: uid=erin,ou=contractors,$DEMO_BASE
changetype: modify
replace: twostepMethod
twostepMethod: sms
-
replace: mobile
mobile: +15550100400
-
replace: twostepSmsSent
$(for i in 10 20 30 40 50; do echo "twostepSmsSent: $(date -u -d "-$i minutes" +%Y%m%d%H%M%SZ)"; done)
LDIF
	mark_log "$RUN_DIR/limit-a"
	output=$(send_request "$LIMIT_A_PORT" erin erin-pw)
	expect_equal "reply code" Access-Reject "$(radius_reply_code "$output")"
	expect_decision "$RUN_DIR/limit-a" erin reject sms-limit-hourly
}

test_sms_resend_too_early_keeps_code() {
	local count code output message

	# grace is a new SMS user; limit-a keeps the default 30 s between codes.
	sms_ldap_modify <<LDIF || return
dn: uid=grace,ou=people,$DEMO_BASE
changetype: add
objectClass: inetOrgPerson
objectClass: twostepUser
uid: grace
cn: Grace Example
sn: Example
userPassword: grace-pw
twostepMethod: sms
mobile: +15550100500
LDIF
	count=$(sms_outbox_count "$RUN_DIR" gw1)
	expect_sms_challenge "$LIMIT_A_PORT" grace grace-pw || return
	code=$(new_code gw1 "$count") || { fail "no code for grace"; return; }

	mark_log "$RUN_DIR/limit-a"
	output=$(send_request "$LIMIT_A_PORT" grace resend "State = $ROUND1_STATE")
	message=$(reply_text "$output")
	expect_equal "reply to an early resend" Access-Challenge "$(radius_reply_code "$output")" || { show_output "$output"; return; }
	if [[ "$message" != "$MSG_SMS_LIMITED_PREFIX"*"Enter the code already sent." ]]; then
		fail "Reply-Message: expected the limit text and 'Enter the code already sent.', got '$message'"
	fi
	expect_decision "$RUN_DIR/limit-a" grace challenge sms-resend-refused
	expect_equal "messages sent" "$((count + 1))" "$(sms_outbox_count "$RUN_DIR" gw1)"

	output=$(send_request "$LIMIT_A_PORT" grace "$code" "State = $(radius_reply_state "$output")")
	expect_equal "round 2 with the first code" Access-Accept "$(radius_reply_code "$output")"
}

test_sms_log_has_no_code_or_number() {
	local code dir

	for dir in "$MAIN_DIR" "$RUN_DIR/limit-a" "$RUN_DIR/limit-b"; do
		# radiusd's own debug dump of a request shows User-Password; the
		# module's lines must show neither the codes nor full numbers.
		if grep -E '15550100[0-9]{3}|447700900123' "$dir/radiusd.log" | grep -q .; then
			fail "a full phone number appears in $dir/radiusd.log"
			grep -nE '15550100[0-9]{3}|447700900123' "$dir/radiusd.log" | head -n 3 | sed 's/^/      | /'
		fi
		for code in $(python3 -c 'import json,sys
for path in sys.argv[1:]:
    for line in open(path):
        c = json.loads(line).get("code")
        if c: print(c)' "$RUN_DIR/gw1-outbox.jsonl" "$RUN_DIR/gw2-outbox.jsonl"); do
			if grep -E 'twostep|Gateway' "$dir/radiusd.log" | grep -v 'User-Password' | grep -q -- "$code"; then
				fail "code $code appears in a module line of $dir/radiusd.log"
			fi
		done
	done
}

SMS_TESTS=(
	test_sms_signin_accepted
	test_sms_wrong_code_rejected
	test_sms_first_gateway_500_second_used
	test_sms_error_body_is_failure
	test_sms_all_gateways_down_rejected
	test_sms_hanging_gateway_gives_up_at_budget
	test_sms_resend_sends_new_code
	test_sms_switch_to_app_and_back
	test_sms_failure_falls_back_to_app
	test_sms_expired_code_rejected
	test_sms_invalid_number_rejected
	test_sms_country_not_allowed
	test_sms_limit_holds_across_servers
	test_sms_hourly_limit
	test_sms_resend_too_early_keeps_code
	test_sms_log_has_no_code_or_number
)

if [ $# -gt 0 ]; then
	run_integration_suite sms start_sms_servers "$@"
fi
run_integration_suite sms start_sms_servers "${SMS_TESTS[@]}"
