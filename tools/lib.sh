# Shell helpers for make run and make test (sourced). A private, throw-away
# PostgreSQL cluster and Apache Kafka (or the devbroker), each started on free
# loopback ports and stopped by PID.

TASKSYNC_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}

# apt_install WHO PKG...: installs Debian packages (apt-get update first; sudo when
# not root), saying "WHO: installing PKG..." first.
apt_install() {
	local who=$1 sudo=""
	shift
	echo "$who: installing $*"
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on, below the
# kernel's ephemeral range (a port from that range can be taken by any outgoing
# connection between the pick and the bind, or while a broker is down for a test).
free_port() {
	local p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	[ "$lo" -gt 12000 ] || lo=32768
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# pg_start DIR: initdb (as the postgres user: initdb refuses root) and start a
# cluster in DIR on a free port. Sets PGPORT, PGHOST and PG_ADMIN_URL.
# What the relay needs of PostgreSQL (backend-api/src/outbox.h): logical decoding.
# Every test database gets a slot of its own, hence the many; an abandoned slot
# keeps at most max_slot_wal_keep_size of WAL.
PG_LOGICAL="-c wal_level=logical -c max_replication_slots=400 -c max_wal_senders=64 -c max_slot_wal_keep_size=2GB"
pg_start() {
	local dir=$1
	[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found (make deps)" >&2; return 1; }
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local run_as=()
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres:postgres "$dir"
		# Every parent must be traversable by postgres.
		local d=$dir
		while [ "$d" != "/" ]; do d=$(dirname "$d"); chmod o+x "$d" 2>/dev/null || true; done
		run_as=(runuser -u postgres --)
	fi
	PGPORT=$(free_port)
	PGHOST=127.0.0.1
	"${run_as[@]}" "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	mkdir -p "$dir/sock"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/sock"
	# Throw-away clusters skip fsync (fast tests); PG_DURABLE=1 keeps PostgreSQL's
	# durable defaults for benchmarks that must be honest. synchronous_commit stays
	# on: the relay streams a commit once its WAL is flushed (with fsync off that
	# costs nothing; off, commits would reach the stream up to wal_writer_delay late).
	local durability="-c fsync=off -c full_page_writes=off"
	[ "${PG_DURABLE:-0}" = 1 ] && durability=""
	"${run_as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
		-o "-p $PGPORT -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=200 $durability $PG_LOGICAL" \
		start >/dev/null || { cat "$dir/postgres.log" >&2; return 1; }
	PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
	export PGPORT PGHOST PG_ADMIN_URL
}

# pg_stop DIR: stops the cluster started by pg_start DIR (fast shutdown).
pg_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	local run_as=()
	[ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
	"${run_as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
}

# pg_createdb NAME: creates database NAME in the running cluster; prints its URL.
pg_createdb() {
	psql -q -X -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE \"$1\"" >/dev/null
	echo "postgresql://postgres@127.0.0.1:$PGPORT/$1"
}

# devbroker_start BIN DIR: starts the devbroker; sets KAFKA_BROKERS and DEVBROKER_PID.
devbroker_start() {
	local bin=$1 dir=$2
	rm -f "$dir/bootstrap"
	"$bin" --topic "${KAFKA_TOPIC:-task-updates}" --partitions "${KAFKA_PARTITIONS:-3}" \
		--bootstrap-file "$dir/bootstrap" >"$dir/devbroker.out" 2>"$dir/devbroker.log" &
	DEVBROKER_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$dir/bootstrap" ] && break
		kill -0 "$DEVBROKER_PID" 2>/dev/null || { cat "$dir/devbroker.log" >&2; return 1; }
		sleep 0.05
	done
	KAFKA_BROKERS=$(cat "$dir/bootstrap")
	export KAFKA_BROKERS DEVBROKER_PID
}

# kafka_up DIR [NODES] [TOPIC PARTITIONS]: an Apache Kafka cluster in KRaft mode
# (tools/kafka/cluster.sh) with its files in DIR, and TOPIC created when given.
# Exports KAFKA_HOME, KAFKA_VERSION, KAFKA_BROKERS, KAFKA_NODES and KAFKA_DIR.
kafka_up() {
	local dir=$1 nodes=${2:-1}
	"$TASKSYNC_TOOLS/kafka/cluster.sh" up "$dir" "$nodes" || return 1
	set -a
	. "$dir/kafka.env"
	set +a
	if [ -n "${3:-}" ]; then
		"$TASKSYNC_TOOLS/kafka/cluster.sh" topic "$dir" "$3" "${4:-6}" || return 1
	fi
}

# The presence topic's settings (ws-gateway PRESENCE_TOPIC; README "Presence"):
# compacted, so a gateway that starts reads one record per live subscription; and
# deleted past retention.ms, so the last records of a crashed gateway (never
# tombstoned, expired by their TTL) do not stay forever. Small segments let both
# act within minutes. docker-compose.yml and k8s/overlays/dev use the same values.
PRESENCE_TOPIC_CONFIGS=(--config cleanup.policy=compact,delete --config retention.ms=3600000
	--config segment.ms=600000 --config min.cleanable.dirty.ratio=0.1
	--config delete.retention.ms=60000)

# kafka_presence_topic DIR [NAME]: creates the presence topic (default
# task-presence) in the cluster in DIR, 3 partitions.
kafka_presence_topic() {
	"$TASKSYNC_TOOLS/kafka/cluster.sh" topic "$1" "${2:-task-presence}" 3 \
		"${PRESENCE_TOPIC_CONFIGS[@]}"
}

# kafka_down DIR: stops every node of the cluster in DIR.
kafka_down() {
	[ -f "$1/kafka.env" ] || [ -d "$1/node-1" ] || return 0
	"$TASKSYNC_TOOLS/kafka/cluster.sh" down "$1"
}

# kafka_heal DIR: every node of the cluster in DIR running again (a test that froze
# or killed one and died before bringing it back must not break the next suite).
kafka_heal() {
	[ -d "$1/node-1" ] || return 0
	"$TASKSYNC_TOOLS/kafka/cluster.sh" heal "$1"
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 5).
stop_pid() {
	local pid=$1 t=${2:-5}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 $((t * 10))); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# wait_http URL [SECONDS]: waits until URL answers 200.
wait_http() {
	local url=$1 t=${2:-20}
	for _ in $(seq 1 $((t * 10))); do
		curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
