#!/usr/bin/env bash
# The test harness behind `make test`. Starts a throw-away PostgreSQL cluster and the
# devbroker on free ports, runs every Check binary (SANBIN/test-*), then every
# tests/*/suite.sh (browser, deployment and schema checks), stops everything it
# started even when a test fails, and prints the totals.
#
#   tests/support/run-tests.sh SANBUILD PLAINBUILD
#
# Check binaries and the services they start come from SANBUILD (ASan+UBSan); the
# browser tests run the PLAINBUILD services. Environment handed to every test:
#   TASKSYNC_ROOT, TASKSYNC_BIN (sanitizer binaries), TASKSYNC_PLAIN_BIN,
# ONLY="name ..." limits the run to those suites (e.g. ONLY=test-common).
#   PG_ADMIN_URL, PGHOST, PGPORT, KAFKA_BROKERS, DEVBROKER_PID, TEST_RUN_DIR.
# A test that needs its own database creates one through PG_ADMIN_URL.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh

SANBUILD=${1:-build/asan}
PLAINBUILD=${2:-build}
export TASKSYNC_ROOT=$PWD
export TASKSYNC_BIN=$PWD/$SANBUILD/bin
export TASKSYNC_PLAIN_BIN=$PWD/$PLAINBUILD/bin
export TEST_RUN_DIR=$(mktemp -d /tmp/tasksync-test.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cleanup() {
	[ -n "${DEVBROKER_PID:-}" ] && stop_pid "$DEVBROKER_PID" 5
	pg_stop "$TEST_RUN_DIR/pg"
	if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then
		echo "test files kept in $TEST_RUN_DIR"
	else
		rm -rf "$TEST_RUN_DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_start "$TEST_RUN_DIR/pg" || { echo "could not start PostgreSQL"; exit 1; }
devbroker_start "$TASKSYNC_BIN/devbroker" "$TEST_RUN_DIR" || { echo "could not start devbroker"; exit 1; }
echo "harness: PostgreSQL on 127.0.0.1:$PGPORT, devbroker on $KAFKA_BROKERS, files in $TEST_RUN_DIR"

total_pass=0
total_fail=0
failed_suites=()
run_one() { # name command...
	local name=$1
	shift
	# ONLY="test-backend e2e" runs just those suites (development aid).
	if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
		return 0
	fi
	local log="$TEST_RUN_DIR/$name.out"
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line p f
	line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	else
		p=0
		f=1
	fi
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$rc" -ne 0 ] && failed_suites+=("$name (exit $rc)")
	# The devbroker must survive every suite; a suite that took it down leaves it up.
	kill -USR2 "$DEVBROKER_PID" 2>/dev/null || true
}

for t in "$TASKSYNC_BIN"/test-*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t"
done
for s in tests/*/suite.sh; do
	[ -x "$s" ] || continue
	run_one "$(basename "$(dirname "$s")")" "$s"
done

echo
if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failed: ${failed_suites[*]}"
fi
if [ $((total_pass + total_fail)) -eq 0 ]; then
	echo "no test ran"
	exit 1
fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
