#!/usr/bin/env bash
# Apache Kafka clusters in KRaft mode on loopback, for `make run`, `make test` and
# bench/: every node a combined broker and controller (a plain JVM, no Docker), on
# free ports, its log dirs under DIR, started and stopped by PID.
#
#   cluster.sh up DIR [NODES]          format and start NODES (default 1) nodes; waits
#                                      until each has started; writes DIR/kafka.env
#   cluster.sh topic DIR NAME PARTS [--config K=V ...]
#                                      creates topic NAME (replication factor: the
#                                      node count, at most 3) with those configs
#   cluster.sh start DIR I             (re)starts node I on its own log dirs; waits
#   cluster.sh signal DIR I SIG        sends SIG to node I (KILL: waits for its exit)
#   cluster.sh pid DIR I               prints node I's PID
#   cluster.sh heal DIR [I]            every node (or node I) running again: a frozen
#                                      one thawed, a dead one started; waits
#   cluster.sh down DIR                stops every node (SIGTERM; SIGKILL after 30 s)
#
# DIR/kafka.env: KAFKA_HOME, KAFKA_VERSION, KAFKA_BROKERS (every node), KAFKA_NODES,
# KAFKA_DIR. Node I lives in DIR/node-I (server.properties, data/, server.log, pid).
# KAFKA_START_TIMEOUT (seconds, default 120) bounds each wait for a node.
set -euo pipefail
KAFKA_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KAFKA_HOME
. "$KAFKA_HOME/../lib.sh"
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}

die() {
	echo "kafka: $*" >&2
	exit 1
}

version() {
	local j
	j=$(compgen -G "$KAFKA_HOME/libs/kafka_2.13-*.jar" | head -n 1) || die "not installed (make deps)"
	j=${j##*/kafka_2.13-}
	echo "${j%.jar}"
}

node_pid() { cat "$1/node-$2/pid" 2>/dev/null || true; }

# wait_started DIR I BEFORE: until node I's log has more "Kafka Server started"
# lines than BEFORE, or it died, or the timeout.
wait_started() {
	local dir=$1 i=$2 before=$3 pid log=$1/node-$2/server.log
	pid=$(node_pid "$dir" "$i")
	local deadline=$((SECONDS + START_TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
		if [ "$(grep -c 'Kafka Server started' "$log" 2>/dev/null || true)" -gt "$before" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || {
			tail -n 30 "$log" >&2
			die "node $i exited while starting (log: $log)"
		}
		sleep 0.1
	done
	tail -n 30 "$log" >&2
	die "node $i did not start within $START_TIMEOUT s (log: $log)"
}

# launch DIR I: starts node I in the background, detached from this shell.
launch() {
	local dir=$1 i=$2 nd=$1/node-$2
	local heap=${KAFKA_NODE_HEAP:--Xmx512M -Xms128M}
	KAFKA_HEAP_OPTS=$heap setsid "$KAFKA_HOME/bin/kafka-server-start.sh" "$nd/server.properties" \
		</dev/null >>"$nd/server.log" 2>&1 &
	echo $! >"$nd/pid"
}

cmd_up() {
	local dir=$1 n=${2:-1}
	[ "$n" -ge 1 ] && [ "$n" -le 9 ] || die "NODES must be 1..9"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local ver
	ver=$(version)
	local ports=() cports=() voters="" brokers=""
	local used=" " p
	for ((i = 1; i <= n; i++)); do
		# free ports, none given twice within this cluster
		while p=$(free_port) && [[ $used == *" $p "* ]]; do :; done
		ports[i]=$p
		used+="$p "
		while p=$(free_port) && [[ $used == *" $p "* ]]; do :; done
		cports[i]=$p
		used+="$p "
		voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
		brokers+="${brokers:+,}127.0.0.1:${ports[i]}"
	done
	local rf=$((n < 3 ? n : 3)) isr=$((n < 3 ? 1 : 2))
	# base64url of 16 random bytes: a cluster id as kafka-storage.sh random-uuid gives
	local cid
	# (not starting with '-': kafka-storage.sh would take it for an option)
	cid=-
	while [[ $cid == -* ]]; do
		cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
	done
	for ((i = 1; i <= n; i++)); do
		local nd=$dir/node-$i
		mkdir -p "$nd/data"
		{
			grep -v '^#' "$KAFKA_HOME/config/broker.properties" | grep -v '^$' |
				grep -v -E '^(offsets.topic.replication.factor|transaction.state.log.(replication.factor|min.isr))='
			cat <<PROPS
# node $i of $n (cluster.sh)
node.id=$i
listeners=PLAINTEXT://127.0.0.1:${ports[i]},CONTROLLER://127.0.0.1:${cports[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[i]}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.voters=$voters
log.dirs=$nd/data
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
# A node that stops heartbeating is fenced within 3 s (defaults: 9 s, 2 s) so a
# failover test sees leadership move quickly.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
PROPS
		} >"$nd/server.properties"
		"$KAFKA_HOME/bin/kafka-storage.sh" format -t "$cid" -c "$nd/server.properties" \
			>"$nd/format.log" 2>&1 &
	done
	local ok=1
	for ((i = 1; i <= n; i++)); do wait -n || ok=0; done
	[ $ok = 1 ] || { cat "$dir"/node-*/format.log >&2; die "could not format storage"; }
	for ((i = 1; i <= n; i++)); do launch "$dir" "$i"; done
	for ((i = 1; i <= n; i++)); do wait_started "$dir" "$i" 0; done
	cat >"$dir/kafka.env" <<ENV
KAFKA_HOME=$KAFKA_HOME
KAFKA_VERSION=$ver
KAFKA_BROKERS=$brokers
KAFKA_NODES=$n
KAFKA_DIR=$dir
ENV
}

cmd_topic() {
	local dir=$1 name=$2 parts=$3
	shift 3
	. "$dir/kafka.env"
	local rf=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
	"$KAFKA_HOME/bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --create --if-not-exists \
		--topic "$name" --partitions "$parts" --replication-factor "$rf" "$@" >/dev/null
}

cmd_start() {
	local dir=$1 i=$2 pid
	pid=$(node_pid "$dir" "$i")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && die "node $i is running ($pid)"
	local before
	before=$(grep -c 'Kafka Server started' "$dir/node-$i/server.log" 2>/dev/null || true)
	launch "$dir" "$i"
	wait_started "$dir" "$i" "${before:-0}"
}

cmd_signal() {
	local dir=$1 i=$2 sig=$3 pid
	pid=$(node_pid "$dir" "$i")
	[ -n "$pid" ] || die "node $i has no pid"
	kill -s "$sig" "$pid"
	if [ "$sig" = KILL ] || [ "$sig" = 9 ]; then
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	fi
}

cmd_heal() {
	local dir=$1 only=${2:-} pf i pid
	for pf in "$dir"/node-*/pid; do
		[ -f "$pf" ] || continue
		i=${pf%/pid}
		i=${i##*/node-}
		[ -z "$only" ] || [ "$i" = "$only" ] || continue
		pid=$(cat "$pf")
		if kill -CONT "$pid" 2>/dev/null; then
			continue
		fi
		echo "kafka: node $i was down; starting it" >&2
		cmd_start "$dir" "$i"
	done
}

cmd_down() {
	local dir=$1 pids=()
	for pf in "$dir"/node-*/pid; do
		[ -f "$pf" ] || continue
		local pid
		pid=$(cat "$pf")
		kill -0 "$pid" 2>/dev/null || continue
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$pid")
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
topic) shift; cmd_topic "$@" ;;
start) shift; cmd_start "$@" ;;
signal) shift; cmd_signal "$@" ;;
pid) shift; node_pid "$@" ;;
heal) shift; cmd_heal "$@" ;;
down) shift; cmd_down "$@" ;;
version) version ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
