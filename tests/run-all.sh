#!/usr/bin/env bash
#
# Run the unit tests (make unit), the mock SMS gateway's self-test, the
# integration tests (LDAP, policy, TLS, SMS, cluster) and the valgrind test of radiusd
# with the module, and print the combined count as the last line:
# "N passed, N failed". Exits 1 when any test failed. Expects the module and
# tools to be built ('make' or 'make test' does that first).

set -u

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO_ROOT" || exit 1

TOTAL_PASSED=0
TOTAL_FAILED=0

# Run one suite, show its output, and add its "N passed, N failed" line to
# the totals. A suite that prints no such line counts as one test, passed or
# failed by its exit status.
run_suite() {
	local name=$1
	shift
	local output_file status summary

	echo "=== $name"
	output_file=$(mktemp)
	"$@" 2>&1 | tee "$output_file"
	status=${PIPESTATUS[0]}
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$output_file" | tail -n 1)
	rm -f "$output_file"

	if [ -n "$summary" ]; then
		TOTAL_PASSED=$((TOTAL_PASSED + $(cut -d' ' -f1 <<<"$summary")))
		TOTAL_FAILED=$((TOTAL_FAILED + $(cut -d' ' -f3 <<<"$summary")))
		if [ "$status" -ne 0 ] && [ "$(cut -d' ' -f3 <<<"$summary")" -eq 0 ]; then
			echo "$name: exit status $status although no test failed; counted as one failure"
			TOTAL_FAILED=$((TOTAL_FAILED + 1))
		fi
	elif [ "$status" -eq 0 ]; then
		echo "$name: no \"N passed, N failed\" line; counted as one passed suite"
		TOTAL_PASSED=$((TOTAL_PASSED + 1))
	else
		echo "$name: failed with exit status $status and no \"N passed, N failed\" line"
		TOTAL_FAILED=$((TOTAL_FAILED + 1))
	fi
}

run_suite "unit tests" make -s --no-print-directory unit
run_suite "mock SMS gateway" ./tests/lib/test_mock_gateway.sh
run_suite "integration tests" ./tests/integration/run.sh
run_suite "SMS integration tests" ./tests/integration/sms.sh
run_suite "cluster integration tests" ./tests/integration/cluster.sh
run_suite "valgrind test" ./tests/integration/valgrind.sh

echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
