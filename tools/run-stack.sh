#!/usr/bin/env bash
# `make run`: the whole stack on this machine. A private PostgreSQL cluster under
# .run/pg on a free port, a one-node Apache Kafka (KRaft, tools/kafka/cluster.sh,
# log dirs under .run/kafka; KAFKA=devbroker: the in-memory devbroker instead, for a
# machine without Java), backend-api on :8000 and ws-gateway on :8005. Writes
# .run/stack.env; Ctrl-C stops everything it started.
set -uo pipefail
cd "$(dirname "$0")/.."
. tools/lib.sh

BIN=${BIN:-$PWD/build/bin}
RUN=$PWD/.run
API_PORT=${API_PORT:-8000}
GW_PORT=${GW_PORT:-8005}
KAFKA=${KAFKA:-kafka}
# The partition count of docker-compose.yml's kafka-init (checked by tests/deploy).
KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-6}
case $KAFKA in
kafka | devbroker) ;;
*) echo "run: KAFKA must be kafka or devbroker, not '$KAFKA'" >&2; exit 1 ;;
esac

for port in "$API_PORT" "$GW_PORT"; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "run: port $port is already in use (is another 'make run' up?)" >&2
		exit 1
	fi
done

pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "run: stopping"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}" 6; done
	kafka_down "$RUN/kafka"
	pg_stop "$RUN/pg"
	echo "run: stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

rm -rf "$RUN"
mkdir -p "$RUN"
pg_start "$RUN/pg" || exit 1
DATABASE_URL=$(pg_createdb tasksync) || exit 1
export KAFKA_TOPIC=${KAFKA_TOPIC:-task-updates}
if [ "$KAFKA" = kafka ]; then
	echo "run: starting Apache Kafka (one KRaft node) ..."
	kafka_up "$RUN/kafka" 1 "$KAFKA_TOPIC" "$KAFKA_PARTITIONS" || exit 1
	kafka_presence_topic "$RUN/kafka" || exit 1
	kafka_desc="Apache Kafka $KAFKA_VERSION, KRaft, 1 node (log dirs .run/kafka, log .run/kafka/node-1/server.log); topic $KAFKA_TOPIC, $KAFKA_PARTITIONS partitions"
else
	KAFKA_PARTITIONS=3 devbroker_start "$BIN/devbroker" "$RUN" || exit 1
	pids+=("$DEVBROKER_PID")
	KAFKA_HOME=""
	kafka_desc="devbroker: librdkafka's mock cluster, in memory, for development only"
fi
JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

export DATABASE_URL KAFKA_BROKERS JWT_SECRET
# the demo page's own origins (ws-gateway has no default: it refuses to start without it)
export ALLOWED_ORIGINS=${ALLOWED_ORIGINS:-http://127.0.0.1:$API_PORT,http://localhost:$API_PORT}
export LOG_LEVEL=${LOG_LEVEL:-info}

PORT=$API_PORT DEV_LOGIN=1 PUBLIC_GATEWAY_URL="ws://127.0.0.1:$GW_PORT" STATIC_DIR="$PWD/web" \
	"$BIN/backend-api" 2>>"$RUN/backend-api.log" &
pids+=($!)
PORT=$GW_PORT "$BIN/ws-gateway" 2>>"$RUN/ws-gateway.log" &
pids+=($!)

cat >"$RUN/stack.env" <<ENV
BACKEND_URL=http://127.0.0.1:$API_PORT
GATEWAY_URL=ws://127.0.0.1:$GW_PORT
KAFKA_BROKERS=$KAFKA_BROKERS
KAFKA_TOPIC=$KAFKA_TOPIC
KAFKA_HOME=$KAFKA_HOME
DATABASE_URL=$DATABASE_URL
JWT_SECRET=$JWT_SECRET
ENV

if ! wait_http "http://127.0.0.1:$API_PORT/healthz" 30; then
	echo "run: backend-api did not come up; see .run/backend-api.log" >&2
	tail -n 20 "$RUN/backend-api.log" >&2
	exit 1
fi
if ! wait_http "http://127.0.0.1:$GW_PORT/health" 30; then
	echo "run: ws-gateway did not come up; see .run/ws-gateway.log" >&2
	tail -n 20 "$RUN/ws-gateway.log" >&2
	exit 1
fi

if [ "$KAFKA" = kafka ]; then
	producer_hint="    \"\$KAFKA_HOME/bin/kafka-console-producer.sh\" --bootstrap-server \"\$KAFKA_BROKERS\" \\
      --topic $KAFKA_TOPIC --property parse.key=true --property key.separator='|'"
else
	producer_hint="    kcat -P -b \"\$KAFKA_BROKERS\" -t $KAFKA_TOPIC -K '|'"
fi
cat <<MSG

tasksync is up (logs in .run/*.log; environment in .run/stack.env)
  demo page     http://127.0.0.1:$API_PORT/
  backend-api   http://127.0.0.1:$API_PORT   (healthz, readyz, metrics, /api/v1/...)
  ws-gateway    ws://127.0.0.1:$GW_PORT/ws?token=...   (health, ready, status, metrics)
  PostgreSQL    $DATABASE_URL
  Kafka         $KAFKA_BROKERS ($kafka_desc)

In another terminal:
  source .run/stack.env
  TOKEN=\$(JWT_SECRET=\$JWT_SECRET build/bin/tasksync-token alice)     # or: make token USER=alice
  curl -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       -d '{"title":"Buy groceries"}' \$BACKEND_URL/api/v1/tasks
  echo 'alice|{"event_type":"task.created","user_id":"alice","task":{"id":"t1","title":"By hand"}}' |
$producer_hint

Ctrl-C stops everything.
MSG

# Stay up until Ctrl-C, or until a service dies.
while :; do
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "run: a process ($p) exited; see .run/*.log" >&2
			exit 1
		fi
	done
	sleep 1
done
