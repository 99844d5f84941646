#!/usr/bin/env bash
# Deployment checks (issue 5): docker-compose.yml, the Dockerfiles, k8s/ (kustomize +
# the Kubernetes OpenAPI schemas via kubernetes-models), and the HEALTHCHECK and probe
# paths against the real services. Run by tests/support/run-tests.sh and by
# `make deploy-check`; standalone it starts its own PostgreSQL and devbroker:
#   tests/deploy/suite.sh
# Needs: docker-compose (Debian), kubectl with kustomize, node, the plain build of
# backend-api and ws-gateway (TASKSYNC_PLAIN_BIN, default build/bin).
# Last line: `deploy: N passed, N failed`; exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh
export TASKSYNC_ROOT=${TASKSYNC_ROOT:-$PWD}
export TASKSYNC_PLAIN_BIN=${TASKSYNC_PLAIN_BIN:-$PWD/build/bin}

fail() {
	echo "deploy: $1"
	echo "deploy: 0 passed, 1 failed"
	exit 1
}
for t in docker-compose kubectl node psql readelf; do
	command -v "$t" >/dev/null || fail "$t is not installed (make deps)"
done
kv=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
[ "${kv:-0}" -ge 4 ] || fail "kubectl has no kustomize v4 or later (found '${kv:-none}'); k8s/ needs it"
if [ ! -d tests/deploy/node_modules/kubernetes-models ] || [ ! -d tests/deploy/node_modules/yaml ]; then
	(cd tests/deploy && npm install --no-audit --no-fund --loglevel=error) || fail "npm install in tests/deploy failed"
fi

own_dir=
own_pg=
own_broker=
cleanup() {
	[ -n "$own_broker" ] && stop_pid "$own_broker" 5
	[ -n "$own_pg" ] && pg_stop "$own_pg"
	[ -n "$own_dir" ] && rm -rf "$own_dir"
}
trap cleanup EXIT
if [ -z "${PG_ADMIN_URL:-}" ] || [ -z "${KAFKA_BROKERS:-}" ]; then
	own_dir=$(mktemp -d /tmp/tasksync-deploy.XXXXXX)
fi
if [ -z "${PG_ADMIN_URL:-}" ]; then
	own_pg=$own_dir/pg
	pg_start "$own_pg" || fail "could not start PostgreSQL"
fi
if [ -z "${KAFKA_BROKERS:-}" ]; then
	[ -x "$TASKSYNC_PLAIN_BIN/devbroker" ] || fail "$TASKSYNC_PLAIN_BIN/devbroker is not built"
	devbroker_start "$TASKSYNC_PLAIN_BIN/devbroker" "$own_dir" || fail "could not start devbroker"
	own_broker=$DEVBROKER_PID
fi
# The services' default topic (the live checks start ws-gateway on it, which is
# ready only once it is assigned): Apache Kafka here creates no topic by itself,
# and nothing else in this suite creates it.
if [ -n "${KAFKA_HOME:-}" ]; then
	"$KAFKA_HOME/bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --create \
		--if-not-exists --topic task-updates --partitions 3 --replication-factor 1 \
		>/dev/null || fail "could not create the topic task-updates"
fi
node tests/deploy/check.mjs
exit $?
