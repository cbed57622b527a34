#!/usr/bin/env bash
# Run the rlm_twostep demo in the foreground: slapd with the demo directory on
# 127.0.0.1:3890, a mock SMS gateway on 127.0.0.1:8025 and radiusd with the
# twostep module on 127.0.0.1:1812 (UDP), all started from a fresh build/demo.
# `make run` builds the module first. Ctrl-C stops all three servers.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../tests/lib/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/lib/servers.sh"

LDAP_PORT=3890
RADIUS_PORT=1812
SMS_PORT=8025
WORKDIR="$TWOSTEP_ROOT/build/demo"

# Print the sockets that listen on PORT with PROTOCOL (tcp or udp), the
# processes behind them and how to stop each, and return 1. Return 0 when
# nothing listens on the port.
check_port() {
	local port=$1 protocol=$2 flag sockets holders name pid
	case "$protocol" in
	tcp) flag=-t ;;
	udp) flag=-u ;;
	esac
	sockets=$(ss -Hlnp "$flag" "( sport = :$port )" 2>/dev/null)
	[ -n "$sockets" ] || return 0

	echo "demo: $protocol port $port is already in use:" >&2
	printf '%s\n' "$sockets" | sed -e 's/^/    /' >&2

	# ss prints each process as ("NAME",pid=PID,fd=FD).
	holders=$(printf '%s\n' "$sockets" |
		grep -o '("[^"]*",pid=[0-9]*' | sed -e 's/^("\([^"]*\)",pid=\([0-9]*\)$/\1 \2/' | sort -u)
	if [ -z "$holders" ]; then
		echo "demo: ss shows no process for it. Run 'ss -lntup' as root to find it, then stop it" >&2
		return 1
	fi
	while read -r name pid; do
		echo "demo: $name (PID $pid) listens on it. Stop it with: kill $pid" >&2
		case "$name" in
		freeradius | radiusd | slapd)
			echo "demo: if that is the system service, stop it with: systemctl stop ${name/radiusd/freeradius}" >&2
			;;
		esac
	done <<< "$holders"
	return 1
}

if [ ! -f "$TWOSTEP_ROOT/build/rlm_twostep.so" ]; then
	echo "demo: build/rlm_twostep.so not found: run 'make' first (or 'make run')" >&2
	exit 1
fi

ports_free=1
check_port "$LDAP_PORT" tcp || ports_free=0
check_port "$RADIUS_PORT" udp || ports_free=0
check_port "$SMS_PORT" tcp || ports_free=0
[ "$ports_free" -eq 1 ] || exit 1

# PIDs of the tails that show the radiusd log and the text messages, once
# they run.
tail_pid=""
sms_tail_pid=""

stop_demo() {
	if [ -n "$tail_pid" ]; then
		kill "$tail_pid" 2>/dev/null || true
	fi
	if [ -n "$sms_tail_pid" ]; then
		kill "$sms_tail_pid" 2>/dev/null || true
	fi
	stop_all
	echo "demo: servers stopped"
}

trap stop_demo EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$WORKDIR"
mkdir -p "$WORKDIR"

echo "demo: starting slapd on ldap://127.0.0.1:$LDAP_PORT/ (log: build/demo/slapd/slapd.log)"
slapd_start "$WORKDIR" "$LDAP_PORT"

echo "demo: starting the mock SMS gateway on http://127.0.0.1:$SMS_PORT/ (outbox: build/demo/sms-outbox.jsonl, log: build/demo/sms.log)"
sms_gateway_start "$WORKDIR" sms "$SMS_PORT" accept --print

echo "demo: starting radiusd on 127.0.0.1:$RADIUS_PORT (log: build/demo/radiusd.log)"
TWOSTEP_SMS_GATEWAYS="demo=http://127.0.0.1:$SMS_PORT/send" RADIUSD_DEBUG="" RADIUSD_REJECT_DELAY=1 \
	radiusd_start "$WORKDIR" "$RADIUS_PORT" "ldap://127.0.0.1:$LDAP_PORT/"

cat <<EOF

The demo is running. Sign in as alice (password alice-pw) from another terminal.

Round 1, user name and password:

  echo 'User-Name = "alice", User-Password = "alice-pw", Message-Authenticator = 0x00' | radclient -x 127.0.0.1:$RADIUS_PORT auth testing123

  radiusd answers with "Received Access-Challenge" and a line "State = 0x...".
  Copy that 0x... value: it is valid for 120 seconds.

Round 2, the State from round 1 and the current code of alice's authenticator:

  code=\$(oathtool --totp -b GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ)
  echo "User-Name = \"alice\", User-Password = \"\$code\", State = 0x..., Message-Authenticator = 0x00" | radclient -x 127.0.0.1:$RADIUS_PORT auth testing123

  radiusd answers with "Received Access-Accept".

Sign in as bob (password bob-pw) to get the code by text message.

Round 1, the same command with bob's user name and password:

  echo 'User-Name = "bob", User-Password = "bob-pw", Message-Authenticator = 0x00' | radclient -x 127.0.0.1:$RADIUS_PORT auth testing123

  radiusd answers with "Received Access-Challenge" and a State, and sends the
  code for +15550100200 to the mock SMS gateway at http://127.0.0.1:$SMS_PORT/.
  The message appears below as a line starting with "sms:", and in
  build/demo/sms-outbox.jsonl.

Round 2, the State from round 1 and the code from the message:

  echo "User-Name = \"bob\", User-Password = \"CODE\", State = 0x..., Message-Authenticator = 0x00" | radclient -x 127.0.0.1:$RADIUS_PORT auth testing123

  Reply "resend" instead of the code for a new one (at most one code every
  30 seconds and 5 an hour per user).

Other demo users, each showing a policy: carol (exempt: accepted on the
password), dave (not enrolled: asked to enroll), erin (ou=contractors, 2SV
optional: accepted on the password) and frank (ou=partners, left to the
identity provider: accepted on the password). Their passwords are
carol-pw, dave-pw, erin-pw and frank-pw.

The decision lines of rlm_twostep, and errors, from build/demo/radiusd.log
follow, with each text message that the mock SMS gateway receives. Press
Ctrl-C to stop the servers.

EOF

# The gateway prints each accepted message to its log as "sms: to ...: TEXT".
sms_pid=$(cat "$WORKDIR/sms.pid")
tail -n +1 -F --pid="$sms_pid" "$WORKDIR/sms.log" 2>/dev/null \
	> >(grep --line-buffered '^sms: ') &
sms_tail_pid=$!

# Show the decision lines, errors and warnings. radiusd runs without debug
# output, so the log holds no request attributes (passwords, codes). tail
# exits when radiusd does. It runs in the background because the wait builtin
# returns on Ctrl-C at once, so the INT trap runs, whatever tail and grep do
# with the signal.
radiusd_pid=$(cat "$WORKDIR/radiusd.pid")
tail -n +1 -F --pid="$radiusd_pid" "$WORKDIR/radiusd.log" 2>/dev/null \
	> >(grep --line-buffered -E 'rlm_twostep|ERROR|WARNING|Error|Warning') &
tail_pid=$!
wait "$tail_pid" || true
tail_pid=""

echo "demo: radiusd (PID $radiusd_pid) exited; last lines of build/demo/radiusd.log:" >&2
tail -n 20 "$WORKDIR/radiusd.log" >&2
exit 1
