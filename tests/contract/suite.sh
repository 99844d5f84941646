#!/usr/bin/env bash
# The API as a contract (issue 17): node tests/contract/contract.js lints proto/, sends
# real requests to backend-api and validates every answer against proto/openapi.yaml,
# checks the routes both ways, the operator files (alert rules with promtool, the
# Grafana dashboard) against the metrics the running services export, and the web
# package's TypeScript declarations. Run by tests/support/run-tests.sh (the harness's
# PostgreSQL and Kafka); standalone it starts its own PostgreSQL and Kafka:
#   tests/contract/suite.sh [test-name-filter]
# Last line: `contract: N passed, N failed`; exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh
export TASKSYNC_ROOT=${TASKSYNC_ROOT:-$PWD}
export TASKSYNC_PLAIN_BIN=${TASKSYNC_PLAIN_BIN:-$PWD/build/bin}

fail() {
	echo "contract: $1"
	echo "contract: 0 passed, 1 failed"
	exit 1
}
command -v node >/dev/null || fail "node is not installed (make deps)"
if [ ! -x tests/contract/node_modules/.bin/redocly ] || [ tests/contract/package.json -nt tests/contract/node_modules ]; then
	(cd tests/contract && npm install --no-audit --no-fund --loglevel=error && touch node_modules) ||
		fail "npm install in tests/contract failed"
fi
for b in backend-api ws-gateway; do
	[ -x "$TASKSYNC_PLAIN_BIN/$b" ] || fail "$TASKSYNC_PLAIN_BIN/$b is not built"
done

own_pg=
own_dir=
if [ -z "${PG_ADMIN_URL:-}" ]; then
	tools/kafka/install.sh || fail "could not install Apache Kafka (tools/kafka/install.sh)"
	if [ -z "${TEST_RUN_DIR:-}" ]; then
		TEST_RUN_DIR=$(mktemp -d /tmp/tasksync-contract.XXXXXX)
		own_dir=$TEST_RUN_DIR
	fi
	export TEST_RUN_DIR
	own_pg=$TEST_RUN_DIR/pg
	pg_start "$own_pg" || fail "could not start PostgreSQL"
fi
node tests/contract/contract.js "$@"
rc=$?
[ -n "$own_pg" ] && pg_stop "$own_pg"
if [ -n "$own_dir" ]; then
	if [ "$rc" -eq 0 ] && [ "${KEEP_TEST_DIR:-0}" != 1 ]; then
		rm -rf "$own_dir"
	else
		echo "# contract: files kept in $own_dir"
	fi
fi
exit $rc
