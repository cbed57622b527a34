#!/bin/sh
# Run cmocka unit test binaries and sum up their results.
#
#   tests/unit/run.sh build/unit/test_a build/unit/test_b ...
#
# Prints each binary's output, then one line "N passed, N failed" that counts
# individual cmocka tests. A binary that crashes, or exits non-zero without
# reporting a failed test, counts as one failed test. Exits 1 when anything
# failed, 0 otherwise.
set -u

if [ "$#" -eq 0 ]; then
	echo "usage: $0 TEST_BINARY..." >&2
	exit 2
fi

# cmocka's plain text output is what is parsed below.
CMOCKA_MESSAGE_OUTPUT=stdout
export CMOCKA_MESSAGE_OUTPUT
unset CMOCKA_XML_FILE 2>/dev/null || true

out=$(mktemp "${TMPDIR:-/tmp}/twostep-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

passed=0
failed=0
status=0

for bin in "$@"; do
	echo "== $bin"
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin: not an executable file" >&2
		failed=$((failed + 1))
		status=1
		continue
	fi

	"$bin" >"$out" 2>&1
	rc=$?
	cat "$out"

	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	passed=$((passed + p))
	failed=$((failed + f))

	if [ "$rc" -ne 0 ]; then
		status=1
		if [ "$f" -eq 0 ]; then
			# Crashed, or stopped by a sanitizer, before cmocka could report.
			how="exited with status $rc"
			if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then
				how="$how (killed by signal $((rc - 128))?)"
			fi
			echo "run.sh: $bin: $how without a failed-test summary: counted as one failure" >&2
			failed=$((failed + 1))
		fi
	elif [ "$f" -ne 0 ]; then
		status=1
	elif [ "$p" -eq 0 ]; then
		echo "run.sh: $bin: no test summary found" >&2
		failed=$((failed + 1))
		status=1
	fi
done

echo "$passed passed, $failed failed"
exit "$status"
