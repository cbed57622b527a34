#!/usr/bin/env bash
# Check tests/lib/servers.sh and the demo directory: start slapd on a free
# port, check binds and the access rules of ldap/slapd.conf.in, count binds,
# stop and resume slapd, and check the radclient output parsers on sample
# output. Needs no radiusd. Prints one line per check and exits 1 if any fails.
set -euo pipefail

# shellcheck source=SCRIPTDIR/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

BASE=dc=example,dc=org
ALICE=uid=alice,ou=people,$BASE
BOB=uid=bob,ou=people,$BASE
CAROL=uid=carol,ou=people,$BASE
DAVE=uid=dave,ou=people,$BASE
ERIN=uid=erin,ou=contractors,$BASE
FRANK=uid=frank,ou=partners,$BASE
PARTNERS=ou=partners,$BASE
RADIUS=cn=radius,ou=services,$BASE
ROOTDN=cn=admin,$BASE
ADMINS=cn=2sv-admins,ou=groups,$BASE
ALICE_SEED=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ

failures=0

pass() {
	echo "ok    $1"
}

fail() {
	echo "FAIL  $1" >&2
	failures=$((failures + 1))
}

# check NAME COMMAND...: run COMMAND and report whether it succeeded.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# Succeed when a simple bind as DN with PASSWORD works.
can_bind() {
	ldapwhoami -x -H "$URI" -D "$1" -w "$2" > /dev/null 2>&1
}

# Print the values of ATTR in the entry at BASE_DN, as read by BIND_DN with
# BIND_PASSWORD, or anonymously when both are empty.
read_attr() {
	local bind_dn=$1 bind_password=$2 base_dn=$3 attr=$4
	local auth=(-x)
	if [ -n "$bind_dn" ]; then
		auth+=(-D "$bind_dn" -w "$bind_password")
	fi
	ldapsearch "${auth[@]}" -H "$URI" -LLL -o ldif-wrap=no -s base -b "$base_dn" \
		"(objectClass=*)" "$attr" 2>/dev/null |
		sed -n "s/^$attr: //p" || true
}

# Succeed when BIND_DN with BIND_PASSWORD may apply the LDIF change records
# in CHANGES.
can_modify() {
	local bind_dn=$1 bind_password=$2 changes=$3
	printf '%s\n' "$changes" |
		ldapmodify -x -H "$URI" -D "$bind_dn" -w "$bind_password" > /dev/null 2>&1
}

# check_rejected NAME COMMAND...: report whether COMMAND failed, as it should.
check_rejected() {
	local name=$1
	shift
	if "$@"; then fail "$name"; else pass "$name"; fi
}

# Print the DNs that an anonymous subtree search for any uid returns.
anonymous_search() {
	ldapsearch -x -H "$URI" -LLL -b "$BASE" "(uid=*)" dn 2>/dev/null |
		sed -n 's/^dn: //p' || true
}

# expect_equal NAME EXPECTED ACTUAL
expect_equal() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/twostep-selftest.XXXXXX")
trap stop_all EXIT

port=$(free_port)
if [ "$port" -ge 20000 ] && [ "$port" -le 59999 ]; then
	pass "free_port in 20000..59999 ($port)"
else
	fail "free_port in 20000..59999: got $port"
fi
URI="ldap://127.0.0.1:$port/"

if ! slapd_start "$WORKDIR" "$port"; then
	fail "slapd_start"
	exit 1
fi
pass "slapd_start"
check "slapd.pid names a running slapd" \
	test -d "/proc/$(cat "$WORKDIR/slapd/slapd.pid")"

# Binds.
check "alice binds with alice-pw" can_bind "$ALICE" alice-pw
check "erin binds with erin-pw" can_bind "$ERIN" erin-pw
check "radius account binds" can_bind "$RADIUS" radius-pw
if can_bind "$ALICE" wrong-pw; then
	fail "alice bind with a wrong password is rejected"
else
	pass "alice bind with a wrong password is rejected"
fi

# Access rules.
expect_equal "radius account reads alice's seed" \
	"$ALICE_SEED" "$(read_attr "$RADIUS" radius-pw "$ALICE" twostepTotpSecret)"
expect_equal "radius account reads bob's mobile" \
	"+15550100200" "$(read_attr "$RADIUS" radius-pw "$BOB" mobile)"
expect_equal "radius account cannot read userPassword" \
	"" "$(read_attr "$RADIUS" radius-pw "$ALICE" userPassword)"
expect_equal "alice reads her own cn" \
	"Alice Example" "$(read_attr "$ALICE" alice-pw "$ALICE" cn)"
expect_equal "alice cannot read her own seed" \
	"" "$(read_attr "$ALICE" alice-pw "$ALICE" twostepTotpSecret)"
expect_equal "bob cannot read alice's entry" \
	"" "$(read_attr "$BOB" bob-pw "$ALICE" cn)"
expect_equal "anonymous cannot read alice's entry" \
	"" "$(read_attr "" "" "$ALICE" cn)"
expect_equal "anonymous search finds no users" \
	"" "$(anonymous_search)"
expect_equal "anonymous reads the root DSE" \
	"$BASE" "$(read_attr "" "" "" namingContexts)"

# 2SV attributes and policies of the demo data.
expect_equal "radius account reads alice's method" \
	totp "$(read_attr "$RADIUS" radius-pw "$ALICE" twostepMethod)"
expect_equal "radius account reads bob's method" \
	sms "$(read_attr "$RADIUS" radius-pw "$BOB" twostepMethod)"
expect_equal "radius account reads carol's exemption" \
	TRUE "$(read_attr "$RADIUS" radius-pw "$CAROL" twostepExempt)"
expect_equal "radius account reads the base policy" \
	required "$(read_attr "$RADIUS" radius-pw "$BASE" twostepEnforcement)"
expect_equal "radius account reads the allowed methods" \
	"totp sms" "$(read_attr "$RADIUS" radius-pw "$BASE" twostepAllowedMethod | tr '\n' ' ' | sed 's/ $//')"
expect_equal "radius account reads the partners policy" \
	idp "$(read_attr "$RADIUS" radius-pw "$PARTNERS" twostepEnforcement)"
deadline=$(cat "$WORKDIR/slapd/enroll-deadline" 2>/dev/null || true)
expect_equal "enroll deadline loaded is the one in enroll-deadline" \
	"$deadline" "$(read_attr "$RADIUS" radius-pw "$BASE" twostepEnrollDeadline)"
deadline_seconds=$(date -u -d "$(sed -E 's/^(....)(..)(..)(..)(..)(..)Z$/\1-\2-\3 \4:\5:\6/' <<<"$deadline")" +%s 2>/dev/null || echo 0)
days_ahead=$(( (deadline_seconds - $(date +%s) + 3600) / 86400 ))
expect_equal "enroll deadline is 30 days ahead" 30 "$days_ahead"
check "frank binds with frank-pw" can_bind "$FRANK" frank-pw

# Who reads and writes the 2SV attributes.
expect_equal "alice reads her own method" \
	totp "$(read_attr "$ALICE" alice-pw "$ALICE" twostepMethod)"
expect_equal "carol reads her own exemption reason" \
	"$(read_attr "$RADIUS" radius-pw "$CAROL" twostepExemptReason)" \
	"$(read_attr "$CAROL" carol-pw "$CAROL" twostepExemptReason)"
expect_equal "bob cannot read alice's method" \
	"" "$(read_attr "$BOB" bob-pw "$ALICE" twostepMethod)"
expect_equal "anonymous cannot read the base policy" \
	"" "$(read_attr "" "" "$BASE" twostepEnforcement)"
check "radius account writes alice's last step" can_modify "$RADIUS" radius-pw \
	"dn: $ALICE
changetype: modify
replace: twostepLastStep
twostepLastStep: 58000000"
expect_equal "radius account reads alice's last step back" \
	58000000 "$(read_attr "$RADIUS" radius-pw "$ALICE" twostepLastStep)"
check "radius account writes dave's fail count" can_modify "$RADIUS" radius-pw \
	"dn: $DAVE
changetype: modify
replace: twostepFailCount
twostepFailCount: 3"
check_rejected "alice cannot write her own method" can_modify "$ALICE" alice-pw \
	"dn: $ALICE
changetype: modify
replace: twostepMethod
twostepMethod: sms"
check_rejected "alice cannot write her own last step" can_modify "$ALICE" alice-pw \
	"dn: $ALICE
changetype: modify
replace: twostepLastStep
twostepLastStep: 1"
check "radius account writes alice's last challenge" can_modify "$RADIUS" radius-pw \
	"dn: $ALICE
changetype: modify
replace: twostepLastChallenge
twostepLastChallenge: 0a1b2c3d4e5f60718293a4b5c6d7e8f9"
expect_equal "alice reads her own last challenge" \
	0a1b2c3d4e5f60718293a4b5c6d7e8f9 "$(read_attr "$ALICE" alice-pw "$ALICE" twostepLastChallenge)"
expect_equal "bob cannot read alice's last challenge" \
	"" "$(read_attr "$BOB" bob-pw "$ALICE" twostepLastChallenge)"
# Compare-and-swap: delete the value read, add the new one. The match is
# case-exact, so the old value in upper case does not match.
check_rejected "last challenge swap from a wrong-case value fails" can_modify "$RADIUS" radius-pw \
	"dn: $ALICE
changetype: modify
delete: twostepLastChallenge
twostepLastChallenge: 0A1B2C3D4E5F60718293A4B5C6D7E8F9
-
add: twostepLastChallenge
twostepLastChallenge: ffffffffffffffffffffffffffffffff"
check "radius account swaps alice's last challenge" can_modify "$RADIUS" radius-pw \
	"dn: $ALICE
changetype: modify
delete: twostepLastChallenge
twostepLastChallenge: 0a1b2c3d4e5f60718293a4b5c6d7e8f9
-
add: twostepLastChallenge
twostepLastChallenge: 11111111111111111111111111111111"
check_rejected "alice cannot write her own last challenge" can_modify "$ALICE" alice-pw \
	"dn: $ALICE
changetype: modify
replace: twostepLastChallenge
twostepLastChallenge: 00000000000000000000000000000000"
expect_equal "alice's last challenge is the swapped one" \
	11111111111111111111111111111111 "$(read_attr "$RADIUS" radius-pw "$ALICE" twostepLastChallenge)"
check_rejected "alice cannot write her own seed" can_modify "$ALICE" alice-pw \
	"dn: $ALICE
changetype: modify
replace: twostepTotpSecret
twostepTotpSecret: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_equal "alice's method is unchanged" \
	totp "$(read_attr "$RADIUS" radius-pw "$ALICE" twostepMethod)"

# The objectClass rule: the writers may remove and add twostepUser, and no
# other value. frank has no 2SV attribute, so the class can go.
check "radius account removes twostepUser from frank" can_modify "$RADIUS" radius-pw \
	"dn: $FRANK
changetype: modify
delete: objectClass
objectClass: twostepUser"
check "radius account adds twostepUser to frank" can_modify "$RADIUS" radius-pw \
	"dn: $FRANK
changetype: modify
add: objectClass
objectClass: twostepUser"
check_rejected "radius account cannot add uidObject to frank" can_modify "$RADIUS" radius-pw \
	"dn: $FRANK
changetype: modify
add: objectClass
objectClass: uidObject"
check_rejected "frank cannot remove twostepUser from himself" can_modify "$FRANK" frank-pw \
	"dn: $FRANK
changetype: modify
delete: objectClass
objectClass: twostepUser"

# 2SV admins: dave joins cn=2sv-admins, added by the rootdn as the tests do.
check_rejected "dave cannot write bob's exemption before joining the admins" \
	can_modify "$DAVE" dave-pw "dn: $BOB
changetype: modify
replace: twostepExempt
twostepExempt: TRUE"
check "rootdn adds dave to the 2SV admins" can_modify "$ROOTDN" admin-pw \
	"dn: $ADMINS
changetype: modify
add: member
member: $DAVE"
expect_equal "memberof gives dave memberOf" \
	"$ADMINS" "$(read_attr "$RADIUS" radius-pw "$DAVE" memberOf)"
check "admin dave writes bob's exemption" can_modify "$DAVE" dave-pw \
	"dn: $BOB
changetype: modify
replace: twostepExempt
twostepExempt: TRUE
-
replace: twostepExemptUntil
twostepExemptUntil: 20300101000000Z
-
replace: twostepExemptReason
twostepExemptReason: Selftest"
check "admin dave writes the partners policy" can_modify "$DAVE" dave-pw \
	"dn: $PARTNERS
changetype: modify
add: twostepAllowedMethod
twostepAllowedMethod: totp"
check "admin dave sets erin's seed" can_modify "$DAVE" dave-pw \
	"dn: $ERIN
changetype: modify
replace: twostepTotpSecret
twostepTotpSecret: $ALICE_SEED"
expect_equal "radius account reads erin's new seed" \
	"$ALICE_SEED" "$(read_attr "$RADIUS" radius-pw "$ERIN" twostepTotpSecret)"
expect_equal "admin dave cannot read erin's seed" \
	"" "$(read_attr "$DAVE" dave-pw "$ERIN" twostepTotpSecret)"
expect_equal "admin dave cannot read alice's seed" \
	"" "$(read_attr "$DAVE" dave-pw "$ALICE" twostepTotpSecret)"
expect_equal "admin dave reads alice's method" \
	totp "$(read_attr "$DAVE" dave-pw "$ALICE" twostepMethod)"
check_rejected "admin dave cannot write bob's mail" can_modify "$DAVE" dave-pw \
	"dn: $BOB
changetype: modify
replace: mail
mail: bob@example.org"
expect_equal "admin dave cannot read bob's password" \
	"" "$(read_attr "$DAVE" dave-pw "$BOB" userPassword)"

# Bind counting: four binds, one of them rejected, all counted.
binds_before=$(slapd_count_binds "$WORKDIR")
can_bind "$ALICE" alice-pw || true
can_bind "$ALICE" wrong-pw || true
can_bind "$BOB" bob-pw || true
can_bind "$RADIUS" radius-pw || true
binds_after=$(slapd_count_binds "$WORKDIR")
expect_equal "slapd_count_binds counts 4 binds" 4 $((binds_after - binds_before))

# Stop and resume on the same database.
slapd_pid=$(cat "$WORKDIR/slapd/slapd.pid")
slapd_stop "$WORKDIR"
check "slapd_stop ends slapd" test ! -d "/proc/$slapd_pid"
if can_bind "$ALICE" alice-pw; then
	fail "no bind after slapd_stop"
else
	pass "no bind after slapd_stop"
fi
if ! slapd_resume "$WORKDIR" "$port"; then
	fail "slapd_resume"
	exit 1
fi
pass "slapd_resume"
check "alice binds after slapd_resume" can_bind "$ALICE" alice-pw
if [ "$(slapd_count_binds "$WORKDIR")" -gt "$binds_after" ]; then
	pass "slapd_count_binds includes the log before the resume"
else
	fail "slapd_count_binds includes the log before the resume"
fi

# Parsers, on radclient -x output of the form that radclient 3.2.1 prints.
sample='Sent Access-Request Id 7 from 0.0.0.0:40000 to 127.0.0.1:1812 length 120
	User-Name = "alice"
	State = 0x0102
	Message-Authenticator = 0x00
Received Access-Challenge Id 7 from 127.0.0.1:1812 to 127.0.0.1:40000 length 90
	State = 0xabcdef0123
	Reply-Message = "Enter the code."
	Message-Authenticator = 0x5d41402abc4b2a76b9719d911017c592'
expect_equal "radius_reply_code on a challenge" \
	Access-Challenge "$(radius_reply_code "$sample")"
expect_equal "radius_reply_state takes the reply State" \
	0xabcdef0123 "$(radius_reply_state "$sample")"
expect_equal "radius_reply_message strips the quotes" \
	"Enter the code." "$(radius_reply_message "$sample")"
expect_equal "radius_reply_code without a reply" \
	none "$(radius_reply_code '(0) No reply from server for ID 7 socket 3')"

stop_all
if [ "$failures" -ne 0 ]; then
	echo "selftest: $failures checks failed; logs are in $WORKDIR" >&2
	exit 1
fi
rm -rf "$WORKDIR"
echo "selftest: all checks passed"
