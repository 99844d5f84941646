#!/usr/bin/env bash
# The browser benchmark of web/tasksync.js and the demo page (bench/web/bench.mjs):
# starts its own PostgreSQL (unless PG_ADMIN_URL is set), then the stack and chromium.
#   bench/web/run.sh        TASKS, EVENTS_PER_S, EVENT_SECONDS, QUEUE, HOURS: see bench.mjs
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh
export TASKSYNC_ROOT=${TASKSYNC_ROOT:-$PWD}
export TASKSYNC_PLAIN_BIN=${TASKSYNC_PLAIN_BIN:-$PWD/build/bin}
for b in backend-api ws-gateway; do
	[ -x "$TASKSYNC_PLAIN_BIN/$b" ] || { echo "bench/web: $TASKSYNC_PLAIN_BIN/$b is not built (make all)"; exit 1; }
done
[ -d tests/e2e/node_modules/playwright-core ] || (cd tests/e2e && npm install --no-audit --no-fund --loglevel=error) || exit 1
tools/kafka/install.sh || exit 1
own_pg=
if [ -z "${PG_ADMIN_URL:-}" ]; then
	export TEST_RUN_DIR=${TEST_RUN_DIR:-$(mktemp -d /tmp/tasksync-bench-web.XXXXXX)}
	own_pg=$TEST_RUN_DIR/pg
	pg_start "$own_pg" || { echo "bench/web: could not start PostgreSQL"; exit 1; }
fi
node bench/web/bench.mjs
rc=$?
if [ -n "$own_pg" ]; then
	pg_stop "$own_pg"
	[ "$rc" -eq 0 ] && rm -rf "$TEST_RUN_DIR"
fi
exit $rc
