#!/usr/bin/env bash
# The test harness behind `make test`. Starts a throw-away PostgreSQL cluster and a
# one-node Apache Kafka cluster (KRaft, tools/kafka/cluster.sh) on free ports, runs
# every Check binary (SANBIN/test-*), then every tests/*/suite.sh (browser,
# deployment and schema checks), stops everything it started even when a test
# fails, and prints the totals. A failed suite's failing cases (name and
# assertion) and the tails of the service logs it wrote are printed before the
# files are deleted.
#
#   tests/support/run-tests.sh SANBUILD PLAINBUILD
#
# Check binaries and the services they start come from SANBUILD (ASan+UBSan); the
# browser tests run the PLAINBUILD services. Environment handed to every test:
#   TASKSYNC_ROOT, TASKSYNC_BIN (sanitizer binaries), TASKSYNC_PLAIN_BIN,
# ONLY="name ..." limits the run to those suites (e.g. ONLY=test-common).
#   PG_ADMIN_URL, PGHOST, PGPORT, TEST_RUN_DIR, and the Kafka cluster's KAFKA_HOME,
#   KAFKA_VERSION, KAFKA_BROKERS, KAFKA_NODES, KAFKA_DIR (tests/support/broker.h).
# A test that needs its own database creates one through PG_ADMIN_URL, its own
# topic through kafka_create_topic (the broker creates none by itself).
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
	kafka_down "$TEST_RUN_DIR/kafka"
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
tools/kafka/install.sh || exit 1
t0=$SECONDS
kafka_up "$TEST_RUN_DIR/kafka" 1 || { echo "could not start Apache Kafka"; exit 1; }
echo "harness: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT," \
	"Apache Kafka $KAFKA_VERSION (KRaft, 1 node, started in $((SECONDS - t0)) s) on $KAFKA_BROKERS," \
	"files in $TEST_RUN_DIR"

total_pass=0
total_fail=0
failed_suites=()
failure_report=""
failing_cases=""
# failing LOG N: the first N failing-case lines of a suite's output. Check:
# file:line:F|E:tcase:test:iteration: message; node's test runner and the shell
# suites: "not ok" / "FAIL" lines.
failing() {
	grep -E ':[FE]:[^:]*:[^:]*:[0-9]+: |^not ok |^# +(fail|FAIL)|FAIL|Error:' "$1" | head -n "$2"
}
# report NAME LOG STAMP: the failing cases of a suite's output and the tails of the
# logs written since STAMP.
report() {
	local name=$1 log=$2 stamp=$3
	echo "--- $name: failing cases"
	failing "$log" 40
	# When the broker went away, and who brought it back: Kafka's own shutdown and
	# start lines, and the guards' heals (tests/support/broker.c).
	grep -h -E 'Terminating process due to signal|Exiting Kafka|Kafka Server started|was down; starting' \
		"$TEST_RUN_DIR"/kafka/node-*/server.log "$TEST_RUN_DIR"/kafka/guard.log 2>/dev/null |
		awk -v s="$(date -u -r "$stamp" '+%Y-%m-%d %H:%M:%S')" 'substr($0, 2, 19) >= s || !/^\[/' |
		sed 's/^/kafka: /' | tail -n 20
	local f
	while IFS= read -r f; do
		echo "--- tail of $f"
		tail -n 15 "$f"
	done < <(find "$TEST_RUN_DIR" -name '*.log' -not -path '*/data/*' -newer "$stamp" -printf '%T@ %p\n' 2>/dev/null |
		sort -rn | head -n 6 | cut -d' ' -f2-)
}
run_one() { # name command...
	local name=$1
	shift
	# ONLY="test-backend e2e" runs just those suites (development aid).
	if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
		return 0
	fi
	local log="$TEST_RUN_DIR/$name.out" stamp="$TEST_RUN_DIR/.$name.start"
	touch "$stamp"
	echo "=== $name"
	local t=$SECONDS
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
	echo "=== $name: $((SECONDS - t)) s"
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		failed_suites+=("$name (exit $rc)")
		failure_report+=$(report "$name" "$log" "$stamp")$'\n'
		failing_cases+=$(failing "$log" 5 | cut -c1-400 | sed "s/^/$name: /")$'\n'
	fi
	# The broker must be whole for every suite; a suite that took a node away and
	# died before bringing it back leaves it up.
	kafka_heal "$TEST_RUN_DIR/kafka" || true
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
	echo "$failure_report"
	# again at the very end, where a truncated CI log still shows them
	echo "failing cases:"
	printf '%s' "$failing_cases"
	echo "failed: ${failed_suites[*]}"
fi
if [ $((total_pass + total_fail)) -eq 0 ]; then
	echo "no test ran"
	exit 1
fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
