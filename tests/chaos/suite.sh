#!/usr/bin/env bash
# The chaos run (docs/chaos.md): short inside `make test` (the harness runs every
# tests/*/suite.sh), long through `make chaos`. Starts a PostgreSQL cluster of its
# own (the run restarts it; the harness's stays untouched) and runs the `chaos`
# program, which starts its own 3-node Kafka cluster and the services. Everything is
# stopped by PID when it ends, however it ends.
#
# Settings (environment; defaults are the short run):
#   CHAOS_SECONDS (90)   longest time the faults run     CHAOS_FAULTS (8)  faults
#   CHAOS_MIN_FAULTS (8) faults to run even past CHAOS_SECONDS (the short run: every
#                        kind once, however slow the machine)
#   CHAOS_USERS (12)     users                            CHAOS_SOCKETS (3) devices per user
#   CHAOS_RATE (15)      writes/s, all writers together   CHAOS_WRITERS (4) writer threads
#   CHAOS_READERS (2)    device reader threads            CHAOS_SEED (1)    the schedule's seed
#   CHAOS_SETTLE_S (60)  quiet settle before the verdict  CHAOS_GAP_S (3)   calm between faults
#   CHAOS_FREEZE_S (20)  relay leader SIGSTOP             CHAOS_STALL_S (15) a client not reading
#   CHAOS_DOWN_MS (2000) a killed service stays down
#   CHAOS_BIN            where backend-api and ws-gateway are (default: the
#                        harness's TASKSYNC_BIN, else build/asan/bin)
# The last line is "chaos: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh

own_dir=0
if [ -z "${TEST_RUN_DIR:-}" ]; then
	TEST_RUN_DIR=$(mktemp -d /tmp/tasksync-chaos.XXXXXX)
	own_dir=1
fi
export TEST_RUN_DIR
export TASKSYNC_ROOT=$PWD
export TASKSYNC_BIN=${CHAOS_BIN:-${TASKSYNC_BIN:-$PWD/build/asan/bin}}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The run is one test in the program's own process: a signal reaches its handler
# (which ends the schedule early and stops what it started), and a failed check
# ends the process, whose guards stop the Kafka nodes.
export CK_FORK=no
prog=${CHAOS_PROG:-$(dirname "$TASKSYNC_BIN")/bin/chaos}
[ -x "$prog" ] || prog=$PWD/build/asan/bin/chaos

pg_dir=$TEST_RUN_DIR/chaos-pg
child=""
cleanup() {
	[ -n "$child" ] && kill -0 "$child" 2>/dev/null && { kill -TERM "$child"; wait "$child"; }
	pg_stop "$pg_dir"
	if [ "$own_dir" = 1 ] && [ "${rc:-1}" = 0 ] && [ "${KEEP_TEST_DIR:-0}" != 1 ]; then
		rm -rf "$TEST_RUN_DIR"
	elif [ "$own_dir" = 1 ]; then
		echo "chaos: files kept in $TEST_RUN_DIR"
	fi
}
trap cleanup EXIT
trap 'echo "chaos: interrupted"; [ -n "$child" ] && kill -TERM "$child"' INT TERM

if [ ! -x "$prog" ]; then
	echo "chaos: $prog not built (make SAN=1 tests)"
	echo "chaos: 0 passed, 1 failed"
	exit 1
fi
pg_start "$pg_dir" >/dev/null || {
	echo "chaos: could not start PostgreSQL"
	echo "chaos: 0 passed, 1 failed"
	exit 1
}
export CHAOS_PG_DIR=$pg_dir PG_BIN
echo "chaos: PostgreSQL on 127.0.0.1:$PGPORT ($pg_dir), services from $TASKSYNC_BIN, files in $TEST_RUN_DIR"
"$prog" &
child=$!
wait "$child"
rc=$?
# a signal interrupts the first wait; the program goes on stopping what it started
while kill -0 "$child" 2>/dev/null; do
	wait "$child"
	rc=$?
done
child=""
exit "$rc"
