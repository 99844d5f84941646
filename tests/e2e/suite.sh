#!/usr/bin/env bash
# The browser tests (issue 4): Debian's chromium driven by playwright-core against the
# real stack, which tests/e2e/stack.js starts on free ports (a fresh database in the
# harness's PostgreSQL, its own Apache Kafka (tools/kafka/cluster.sh), backend-api and ws-gateway from the plain
# build). Run by tests/support/run-tests.sh; standalone it starts its own PostgreSQL:
#   tests/e2e/suite.sh [test-name-filter]
# Last line: `e2e: N passed, N failed`; exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh
export TASKSYNC_ROOT=${TASKSYNC_ROOT:-$PWD}
export TASKSYNC_PLAIN_BIN=${TASKSYNC_PLAIN_BIN:-$PWD/build/bin}

fail() {
	echo "e2e: $1"
	echo "e2e: 0 passed, 1 failed"
	exit 1
}
command -v node >/dev/null || fail "node is not installed (make deps)"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is not installed (make deps)"
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
	(cd tests/e2e && npm install --no-audit --no-fund --loglevel=error) || fail "npm install of playwright-core failed"
fi
tools/kafka/install.sh || fail "could not install Apache Kafka (tools/kafka/install.sh)"
for b in backend-api ws-gateway; do
	[ -x "$TASKSYNC_PLAIN_BIN/$b" ] || fail "$TASKSYNC_PLAIN_BIN/$b is not built"
done

own_pg=
own_dir=
if [ -z "${PG_ADMIN_URL:-}" ]; then
	if [ -z "${TEST_RUN_DIR:-}" ]; then
		TEST_RUN_DIR=$(mktemp -d /tmp/tasksync-e2e.XXXXXX)
		own_dir=$TEST_RUN_DIR
	fi
	export TEST_RUN_DIR
	own_pg=$TEST_RUN_DIR/pg
	pg_start "$own_pg" || fail "could not start PostgreSQL"
fi
node tests/e2e/e2e.js "$@"
rc=$?
[ -n "$own_pg" ] && pg_stop "$own_pg"
# The logs of a failed run stay for reading; a green run leaves nothing behind.
if [ -n "$own_dir" ]; then
	if [ "$rc" -eq 0 ] && [ "${KEEP_TEST_DIR:-0}" != 1 ]; then
		rm -rf "$own_dir"
	else
		echo "# e2e: files kept in $own_dir"
	fi
fi
exit $rc
