#!/usr/bin/env bash
# Check tests/mock-sms-gateway.py through the gateway functions of
# tests/lib/servers.sh: every mode, the outbox fields, JSON, form and GET
# requests, token authentication, keep-alive and the stop on TERM. Uses curl
# against gateways on free ports of 127.0.0.1. Prints one line per check and
# "N passed, N failed" last, and exits 1 if any check fails.
set -euo pipefail

# shellcheck source=SCRIPTDIR/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

passed=0
failed=0

pass() {
	echo "ok    $1"
	passed=$((passed + 1))
}

fail() {
	echo "FAIL  $1" >&2
	failed=$((failed + 1))
}

# check NAME COMMAND...: run COMMAND and report whether it succeeded.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

expect_equal() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

# Succeed when TEXT contains PART.
contains() {
	case "$1" in
	*"$2"*) return 0 ;;
	*) return 1 ;;
	esac
}

# outbox_field NAME INDEX FIELD: print FIELD of message INDEX (0 is the
# first, -1 the newest) of outbox NAME in $WORKDIR. Dots select nested
# fields (headers.Content-Type). Strings print as they are, other values as
# JSON.
outbox_field() {
	python3 - "$WORKDIR/$1-outbox.jsonl" "$2" "$3" <<'PY'
import json
import sys

path, index, field = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, encoding="utf-8") as outbox_file:
    value = [json.loads(line) for line in outbox_file][index]
for key in field.split("."):
    value = value[key]
print(value if isinstance(value, str) else json.dumps(value))
PY
}

# http_status ARGS...: run curl with ARGS, bounded to 3 s, and print the HTTP
# status code, or 000 when no reply arrived.
http_status() {
	curl -s --max-time 3 -o /dev/null -w '%{http_code}' "$@" || true
}

# elapsed_ms COMMAND...: run COMMAND, ignore its status, and print how long it
# took in milliseconds.
elapsed_ms() {
	local started
	started=$(date +%s%N)
	"$@" > /dev/null 2>&1 || true
	echo $((($(date +%s%N) - started) / 1000000))
}

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/twostep-mock-gateway.XXXXXX")
trap stop_all EXIT

#
# Start-up checks
#

if python3 "$TWOSTEP_SMS_GATEWAY" --host 0.0.0.0 --outbox "$WORKDIR/unused.jsonl" \
	> "$WORKDIR/host.out" 2>&1; then
	fail "gateway rejects --host 0.0.0.0"
else
	check "gateway rejects --host 0.0.0.0" grep -q 'listens on 127.0.0.1 only' "$WORKDIR/host.out"
fi

if sms_gateway_start "$WORKDIR" auto 0 accept; then
	check "port 0 picks a port and writes NAME.port" \
		test "$(cat "$WORKDIR/auto.port")" = "$SMS_GATEWAY_PORT"
	expect_equal "port 0: /_health answers" 200 \
		"$(http_status "http://127.0.0.1:$SMS_GATEWAY_PORT/_health")"
	check "listening line in the log" \
		grep -q "listening on http://127.0.0.1:$SMS_GATEWAY_PORT/ in mode accept" "$WORKDIR/auto.log"
	sms_gateway_stop "$WORKDIR" auto
else
	fail "sms_gateway_start with port 0"
fi

if sms_gateway_start "$WORKDIR" bad-mode 0 sideways 2> "$WORKDIR/bad-mode.err"; then
	fail "sms_gateway_start rejects an unknown mode"
else
	check "sms_gateway_start rejects an unknown mode" grep -q 'invalid gateway mode' "$WORKDIR/bad-mode.err"
fi

#
# Accept mode: JSON, form and GET requests
#

port=$(free_port)
if ! sms_gateway_start "$WORKDIR" gw "$port" accept --delay 1; then
	fail "sms_gateway_start in accept mode"
	echo "$passed passed, $failed failed"
	exit 1
fi
pass "sms_gateway_start in accept mode"
URL="http://127.0.0.1:$port"
expect_equal "outbox starts empty" 0 "$(sms_outbox_count "$WORKDIR" gw)"

reply=$(curl -s --max-time 3 -H 'Content-Type: application/json' \
	-d '{"to": "+15550100200", "text": "Your code is 123456"}' "$URL/v1/messages")
expect_equal "JSON reply status" queued \
	"$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["status"])' "$reply" 2>/dev/null || true)"
message_id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$reply" 2>/dev/null || true)
check "JSON reply has an id" test -n "$message_id"
expect_equal "outbox count after JSON" 1 "$(sms_outbox_count "$WORKDIR" gw)"
expect_equal "outbox id matches the reply" "$message_id" "$(outbox_field gw -1 id)"
expect_equal "outbox path" /v1/messages "$(outbox_field gw -1 path)"
expect_equal "outbox method" POST "$(outbox_field gw -1 method)"
expect_equal "outbox content_type" application/json "$(outbox_field gw -1 content_type)"
expect_equal "outbox to" +15550100200 "$(outbox_field gw -1 to)"
expect_equal "outbox text" "Your code is 123456" "$(outbox_field gw -1 text)"
expect_equal "outbox code" 123456 "$(outbox_field gw -1 code)"
expect_equal "outbox Content-Type header" application/json "$(outbox_field gw -1 headers.Content-Type)"
expect_equal "outbox Authorization absent" false "$(outbox_field gw -1 headers.Authorization)"
expect_equal "outbox raw body" '{"to": "+15550100200", "text": "Your code is 123456"}' \
	"$(outbox_field gw -1 raw)"
check "outbox time is ISO-8601 UTC" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$' <<<"$(outbox_field gw -1 time)"
expect_equal "headers record only two names" '["Authorization", "Content-Type"]' \
	"$(python3 -c 'import json, sys; print(json.dumps(sorted(json.loads(sys.argv[1]))))' \
		"$(outbox_field gw -1 headers)")"

reply=$(curl -s --max-time 3 --data-urlencode 'To=+15550100300' \
	--data-urlencode 'Body=Sign-in code: 24680135. It expires in 2 minutes.' "$URL/")
check "form reply is form-encoded" grep -qE '^status=queued&id=[0-9a-f]+$' <<<"$reply"
expect_equal "form: outbox to" +15550100300 "$(outbox_field gw -1 to)"
expect_equal "form: outbox text" "Sign-in code: 24680135. It expires in 2 minutes." "$(outbox_field gw -1 text)"
expect_equal "form: outbox code" 24680135 "$(outbox_field gw -1 code)"
expect_equal "form: outbox content_type" application/x-www-form-urlencoded "$(outbox_field gw -1 content_type)"

expect_equal "GET with a query: HTTP status" 200 \
	"$(http_status "$URL/send?phone=%2B15550100400&msg=code+4321+now")"
expect_equal "GET: outbox method" GET "$(outbox_field gw -1 method)"
expect_equal "GET: outbox to" +15550100400 "$(outbox_field gw -1 to)"
expect_equal "GET: outbox code" 4321 "$(outbox_field gw -1 code)"
expect_equal "GET: outbox query" "phone=%2B15550100400&msg=code+4321+now" "$(outbox_field gw -1 query)"

expect_equal "text without digits: code is null" null "$(
	curl -s --max-time 3 -o /dev/null -H 'Content-Type: application/json' \
		-d '{"recipient": "+15550100500", "message": "hello 123 and 12345678901"}' "$URL/"
	outbox_field gw -1 code
)"
expect_equal "JSON number as recipient" 15550100600 "$(
	curl -s --max-time 3 -o /dev/null -H 'Content-Type: application/json' \
		-d '{"number": 15550100600, "msg": "code 777777"}' "$URL/"
	outbox_field gw -1 to
)"

expect_equal "chunked JSON body" 31415 "$(
	curl -s --max-time 3 -o /dev/null -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
		-d '{"to": "+15550100600", "text": "code 31415"}' "$URL/"
	outbox_field gw -1 code
)"
long_text="code 27182 $(printf 'x%.0s' {1..3000})"
verbose=$(curl -sv --max-time 3 -o /dev/null -H 'Expect: 100-continue' \
	--data-urlencode 'to=+15550100600' --data-urlencode "text=$long_text" "$URL/" 2>&1 || true)
check "Expect: 100-continue gets 100 Continue" contains "$verbose" "HTTP/1.1 100 Continue"
expect_equal "body sent after 100 Continue recorded" 27182 "$(outbox_field gw -1 code)"
expect_equal "body over 64 KiB: 413" 413 "$(
	head -c 70000 /dev/zero | tr '\0' a | http_status --data-binary @- "$URL/"
)"
# Put a known message last again for the checks below.
curl -s --max-time 3 -o /dev/null -d 'number=15550100600&msg=code+777777' "$URL/"

expect_equal "sms_outbox_last_code, newest" 777777 "$(sms_outbox_last_code "$WORKDIR" gw)"
expect_equal "sms_outbox_last_code for one recipient" 24680135 \
	"$(sms_outbox_last_code "$WORKDIR" gw +15550100300)"
started=$(date +%s%N)
if sms_outbox_last_code "$WORKDIR" gw +19999999999 2> /dev/null; then
	fail "sms_outbox_last_code fails for a recipient without messages"
else
	pass "sms_outbox_last_code fails for a recipient without messages"
fi
waited=$((($(date +%s%N) - started) / 1000000))
check "sms_outbox_last_code waits about 3 s ($waited ms)" test "$waited" -ge 2900 -a "$waited" -lt 6000
if sms_outbox_last_code "$WORKDIR" gw +15550100500 2> /dev/null; then
	fail "sms_outbox_last_code fails when the text has no code"
else
	pass "sms_outbox_last_code fails when the text has no code"
fi
# A message that arrives during the wait is found.
(sleep 1 && curl -s --max-time 3 -o /dev/null "$URL/?to=%2B15550100700&text=code+5555") &
late_sender=$!
expect_equal "sms_outbox_last_code waits for a late message" 5555 \
	"$(sms_outbox_last_code "$WORKDIR" gw +15550100700 || true)"
wait "$late_sender" || true

count=$(sms_outbox_count "$WORKDIR" gw)
expect_equal "missing text: 400" 400 "$(http_status -d 'to=%2B15550100200' "$URL/")"
expect_equal "missing recipient: 400" 400 "$(http_status -d 'text=code+1234' "$URL/")"
expect_equal "invalid JSON: 400" 400 "$(http_status -H 'Content-Type: application/json' -d '{"to":' "$URL/")"
expect_equal "JSON array: 400" 400 "$(http_status -H 'Content-Type: application/json' -d '[1]' "$URL/")"
expect_equal "text/plain body: 415" 415 "$(http_status -H 'Content-Type: text/plain' -d 'to=1&text=1234' "$URL/")"
expect_equal "GET without a query: 400" 400 "$(http_status "$URL/send")"
expect_equal "rejected requests are not recorded" "$count" "$(sms_outbox_count "$WORKDIR" gw)"

#
# Keep-alive
#

verbose=$(curl -sv --max-time 5 -o /dev/null -o /dev/null \
	"$URL/?to=%2B15550100800&text=first+1111" "$URL/?to=%2B15550100800&text=second+2222" 2>&1 || true)
check "keep-alive: curl reuses the connection" contains "$verbose" "Re-using existing connection"
expect_equal "keep-alive: both messages recorded" 2222 "$(sms_outbox_last_code "$WORKDIR" gw +15550100800)"
verbose=$(curl -sv --max-time 5 -o /dev/null -o /dev/null -H 'Content-Type: application/json' \
	-d '{"to": "+15550100900", "text": "code 3333"}' "$URL/a" "$URL/b" 2>&1 || true)
check "keep-alive: curl reuses the connection for POST" contains "$verbose" "Re-using existing connection"
expect_equal "keep-alive: POST to the second path recorded" /b "$(outbox_field gw -1 path)"

#
# Error and delay modes
#

count=$(sms_outbox_count "$WORKDIR" gw)

check "sms_gateway_set_mode error500" sms_gateway_set_mode "$port" error500
expect_equal "error500: HTTP status" 500 "$(http_status -d 'to=%2B15550100200&text=code+1234' "$URL/")"
expect_equal "/_health reports the mode" error500 "$(
	curl -s --max-time 3 "$URL/_health" | python3 -c 'import json, sys; print(json.load(sys.stdin)["mode"])'
)"

check "sms_gateway_set_mode error-body" sms_gateway_set_mode "$port" error-body
reply=$(curl -s --max-time 3 -w '\n%{http_code}' -H 'Content-Type: application/json' \
	-d '{"to": "+15550100200", "text": "code 1234"}' "$URL/")
expect_equal "error-body: HTTP status" 200 "$(tail -n 1 <<<"$reply")"
expect_equal "error-body: JSON body" '{"status": "error", "error": "insufficient credit"}' "$(head -n 1 <<<"$reply")"
expect_equal "error-body: form body" "status=error&error=insufficient+credit" \
	"$(curl -s --max-time 3 -d 'to=%2B15550100200&text=code+1234' "$URL/")"

check "sms_gateway_set_mode hang" sms_gateway_set_mode "$port" hang
curl -s --max-time 1 -o /dev/null -d 'to=%2B15550100200&text=code+1234' "$URL/" &
hung_client=$!
sleep 0.3
expect_equal "hang: /_health answers during a held request" 200 \
	"$(http_status --max-time 0.5 "$URL/_health")"
hung_status=0
wait "$hung_client" || hung_status=$?
expect_equal "hang: curl --max-time 1 times out (exit 28)" 28 "$hung_status"
check "hang: the log shows the client closed the connection" \
	grep -q 'ended after .* without a reply: the client closed the connection' "$WORKDIR/gw.log"

check "sms_gateway_set_mode slow" sms_gateway_set_mode "$port" slow
took=$(elapsed_ms curl -sf --max-time 3 -d 'to=%2B15550101000&text=code+8888' "$URL/")
check "slow: reply after the 1 s delay ($took ms)" test "$took" -ge 950 -a "$took" -lt 2900
expect_equal "slow: message recorded" 8888 "$(sms_outbox_last_code "$WORKDIR" gw +15550101000)"
count=$(sms_outbox_count "$WORKDIR" gw)
slow_status=0
curl -s --max-time 0.5 -o /dev/null -d 'to=%2B15550101100&text=code+9999' "$URL/" || slow_status=$?
expect_equal "slow: curl --max-time 0.5 times out" 28 "$slow_status"
sleep 1
expect_equal "slow: message of a client that left is not recorded" "$count" "$(sms_outbox_count "$WORKDIR" gw)"
check "sms_gateway_set_mode slow with a delay" sms_gateway_set_mode "$port" slow 0.2
took=$(elapsed_ms curl -sf --max-time 3 -d 'to=%2B15550101000&text=code+8888' "$URL/")
check "slow: delay set at run time ($took ms)" test "$took" -ge 150 -a "$took" -lt 900

expect_equal "/_mode rejects an unknown mode" 400 "$(http_status "$URL/_mode?set=sideways")"
expect_equal "/_mode rejects an invalid delay" 400 "$(http_status "$URL/_mode?delay=-1")"
check "sms_gateway_set_mode back to accept" sms_gateway_set_mode "$port" accept

# TERM while a request is held: the gateway exits at once.
check "sms_gateway_set_mode hang before the stop" sms_gateway_set_mode "$port" hang
curl -s --max-time 4 -o /dev/null "$URL/?to=%2B15550100200&text=code+1234" &
hung_client=$!
sleep 0.3
gateway_pid=$(cat "$WORKDIR/gw.pid")
took=$(elapsed_ms sms_gateway_stop "$WORKDIR" gw)
check "stop during a held request is quick ($took ms)" test "$took" -lt 2000
check "gateway process is gone after the stop" test ! -e "/proc/$gateway_pid"
check "port is free after the stop" test -z "$(ss -Hltn "( sport = :$port )")"
check "log shows the stop on SIGTERM" grep -q 'stopped on SIGTERM' "$WORKDIR/gw.log"
if grep -q Traceback "$WORKDIR/gw.log"; then
	fail "log has no Python traceback"
else
	pass "log has no Python traceback"
fi
wait "$hung_client" || true

#
# Token authentication
#

port=$(free_port)
if sms_gateway_start "$WORKDIR" auth "$port" accept --token s3cret-token; then
	URL="http://127.0.0.1:$port"
	body='to=%2B15550100200&text=code+1234'
	expect_equal "token: Bearer accepted" 200 \
		"$(http_status -H 'Authorization: Bearer s3cret-token' -d "$body" "$URL/")"
	expect_equal "token: Basic with the token as password accepted" 200 \
		"$(http_status -u 'account:s3cret-token' -d "$body" "$URL/")"
	expect_equal "token: wrong Bearer gets 401" 401 \
		"$(http_status -H 'Authorization: Bearer wrong' -d "$body" "$URL/")"
	expect_equal "token: wrong Basic password gets 401" 401 \
		"$(http_status -u 'account:wrong' -d "$body" "$URL/")"
	expect_equal "token: missing Authorization gets 401" 401 "$(http_status -d "$body" "$URL/")"
	expect_equal "token: /_health needs no token" 200 "$(http_status "$URL/_health")"
	expect_equal "token: only authorized messages recorded" 2 "$(sms_outbox_count "$WORKDIR" auth)"
	expect_equal "token: outbox records Authorization as present" true \
		"$(outbox_field auth -1 headers.Authorization)"
	if grep -q s3cret-token "$WORKDIR/auth-outbox.jsonl" "$WORKDIR/auth.log"; then
		fail "token: outbox and log do not contain the token"
	else
		pass "token: outbox and log do not contain the token"
	fi
	sms_gateway_stop "$WORKDIR" auth
else
	fail "sms_gateway_start with --token"
fi

#
# Library checks
#

port=$(free_port)
if sms_gateway_start "$WORKDIR" first "$port" accept; then
	if sms_gateway_start "$WORKDIR" second "$port" accept 2> "$WORKDIR/second.err"; then
		fail "sms_gateway_start rejects a port in use"
	else
		check "sms_gateway_start rejects a port in use" grep -q 'already in use' "$WORKDIR/second.err"
	fi
	first_pid=$(cat "$WORKDIR/first.pid")
	stop_all
	check "stop_all stops the gateway" test ! -e "/proc/$first_pid"
else
	fail "sms_gateway_start for the stop_all check"
fi

stop_all
if [ "$failed" -ne 0 ]; then
	echo "test_mock_gateway: logs are in $WORKDIR" >&2
else
	rm -rf "$WORKDIR"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
