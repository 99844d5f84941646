#!/usr/bin/env bash
# bench/run.sh [BIN [SCENARIO...]]: the benchmark driver (`make bench`). Starts its
# own throw-away PostgreSQL and a one-node Apache Kafka (tools/lib.sh, KRaft;
# KAFKA=devbroker: the librdkafka mock broker of the earlier figures), the services from BIN
# (default build/bin) on free loopback ports, runs each scenario RUNS times (default
# 3), bounded in count and time, prints a table of medians and stops everything it
# started, by PID.
#
#   scenarios: fanout latency skip capacity handshake presence api lists (default: all; also SCENARIOS=..)
#     e.g. bench/run.sh build/bin fanout latency
#   RUNS=3  KEEP=1 (keep the work dir: raw JSON results in results.jsonl)
#   API_MODES="saturation rate" (the api scenario's runs: saturation, 1,000 writes/s)
#   API_VACUUM=1 (VACUUM the database before each api run; 0: don't)
#   WARMUP=1 (warm the broker's JVM up before the gateway scenarios; default 1 on Apache Kafka)
#
# A scenario whose service binary is missing (backend-api for api) is skipped with a
# message; a scenario asked for by name on the command line fails instead.
#
# Figures, not pass/fail: nothing here asserts a target. Timings on a shared 2-core
# machine are noisy; compare the ratios within one run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. tools/lib.sh

BIN=$(cd "${1:-${BIN:-build/bin}}" && pwd) || { echo "bench: no bin dir" >&2; exit 2; }
[ $# -gt 0 ] && shift
RUNS=${RUNS:-3}
# fetch.wait.max.ms of the gateway's consumer in the latency scenarios (its default: 10).
# The mock broker holds an empty fetch for the whole wait even when data arrives, so
# this wait is most of the latency measured here; a real broker answers as soon as
# fetch.min.bytes (1) is there.
# Apache Kafka answers a fetch as soon as fetch.min.bytes (1) is there, so the wait
# only bounds an idle fetch: the gateway's default (10) costs no latency there.
KAFKA=${KAFKA:-kafka}
if [ "$KAFKA" = devbroker ]; then
	FETCH_WAIT_MS=${FETCH_WAIT_MS:-1}
else
	FETCH_WAIT_MS=${FETCH_WAIT_MS:-10}
fi
API_MODES=${API_MODES:-saturation rate}
# PIN=G:O (e.g. 1:0): the gateway on CPU G; the broker, ws-load and kafka-load on CPU
# O. A diagnosis of how much of the gateway's cost and of the latency tail comes from
# sharing both cores with them (as a deployment would not); off unless set, and every
# figure in the docs says when it was on.
GW_PIN=() LOAD_PIN=()
if [ -n "${PIN:-}" ]; then
	[[ $PIN =~ ^[0-9]+:[0-9]+$ ]] || { echo "bench: PIN must be G:O (CPU numbers)" >&2; exit 2; }
	GW_PIN=(taskset -c "${PIN%%:*}")
	LOAD_PIN=(taskset -c "${PIN##*:}")
fi
ALL_SCENARIOS="fanout latency skip capacity handshake presence api lists"
NAMED=0
if [ $# -gt 0 ]; then
	SCENARIOS="$*"
	NAMED=1
fi
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
for sc in $SCENARIOS; do
	[[ " $ALL_SCENARIOS " == *" $sc "* ]] || { echo "bench: unknown scenario $sc (one of: $ALL_SCENARIOS)" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/tasksync-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
CLK_TCK=$(getconf CLK_TCK)
JWT_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export JWT_SECRET KAFKA_TOPIC=task-updates

for b in ws-load kafka-load $([ "$KAFKA" = devbroker ] && echo devbroker); do
	[ -x "$BIN/$b" ] || { echo "bench: $BIN/$b missing (make)" >&2; exit 2; }
done
# missing SERVICE SCENARIO...: the service binary is absent; fatal when a scenario
# was named on the command line, a skip otherwise.
missing() {
	local svc=$1
	shift
	if [ "$NAMED" = 1 ]; then
		echo "bench: $BIN/$svc missing but asked for: $* (build it first)" >&2
		exit 2
	fi
	log "no $BIN/$svc: scenarios skipped: $*"
}

pids=()
GW_PID= API_PID= PG_STARTED= TOPIC_SEQ=0
cleanup() {
	trap - INT TERM EXIT
	for p in "$GW_PID" "$API_PID" "${W_PID:-}"; do [ -n "$p" ] && stop_pid "$p" 10; done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}" 5; done
	[ -n "$PG_STARTED" ] && pg_stop "$WORK/pg"
	[ -n "${KAFKA_STARTED:-}" ] && kafka_down "$WORK/kafka"
	if [ "${KEEP:-0}" = 1 ]; then echo "bench: results kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# cpu_s PID: user+system CPU seconds of PID so far (all threads).
cpu_s() {
	[ -r "/proc/$1/stat" ] || { echo 0; return; }
	sed 's/.*) //' "/proc/$1/stat" | awk -v t="$CLK_TCK" '{printf "%.2f", ($12 + $13) / t}'
}
# machine_busy: "busy total" jiffies of all CPUs (from /proc/stat).
machine_busy() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a - b}'; }
# pg_cpu_s: CPU seconds of the bench's PostgreSQL (postmaster and its backends).
pg_cpu_s() {
	local pm t=0 c
	pm=$(head -n 1 "$WORK/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	for p in "$pm" $(pgrep -P "$pm"); do
		c=$(cpu_s "$p")
		t=$(awk -v a="$t" -v b="$c" 'BEGIN {printf "%.2f", a + b}')
	done
	echo "$t"
}

# wait_file FILE SECONDS
wait_file() {
	for _ in $(seq 1 $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# /status (connections, users, cap) needs its token (off without one)
GW_STATUS_TOKEN=bench-status-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# start_gateway VAR=VALUE...: a ws-gateway on a free port; sets GW_PID, GW_PORT.
start_gateway() {
	stop_gateway
	# free_port only knows listening sockets: right after a scenario with thousands of
	# client sockets, the port it picks may still be some socket's local port and the
	# bind fails. The gateway then exits at once: try another port.
	local try
	for try in 1 2 3 4 5; do
		GW_PORT=$(free_port)
		env "$@" PORT="$GW_PORT" KAFKA_BROKERS="$KAFKA_BROKERS" ALLOWED_ORIGINS='*' \
			STATUS_TOKEN="$GW_STATUS_TOKEN" LOG_LEVEL=warn "${GW_PIN[@]}" "$BIN/ws-gateway" 2>>"$WORK/ws-gateway.log" &
		GW_PID=$!
		local i
		for i in $(seq 1 1800); do # 180 s: 19,500 civetweb threads start slowly
			if ! kill -0 "$GW_PID" 2>/dev/null; then
				wait "$GW_PID"
				GW_PID=
				break
			fi
			curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$GW_PORT/ready" 2>/dev/null &&
				return 0
			sleep 0.1
		done
		[ -n "$GW_PID" ] && break # alive but never ready
		log "ws-gateway exited at start (try $try); last log line: $(tail -n 1 "$WORK/ws-gateway.log")"
	done
	log "ws-gateway did not get ready; last log lines:"
	tail -n 5 "$WORK/ws-gateway.log" >&2
	stop_gateway
	return 1
}
stop_gateway() {
	[ -n "$GW_PID" ] && stop_pid "$GW_PID" 10
	GW_PID=
}

# metric_now NAME: the value of one series in the gateway's /metrics (0 when absent).
metric_now() {
	curl -fsS --max-time 5 "http://127.0.0.1:$GW_PORT/metrics" 2>/dev/null |
		awk -v n="$1" '$1 == n {v = $2} END {print v + 0}'
}

# gw_histograms: the gateway's latency histograms as JSON {name: {le: count}} (the
# gateway's own share, consumed -> written; event timestamp -> written; and Kafka
# record timestamp -> consumed, the path before the gateway's consumer thread).
gw_histograms() {
	curl -fsS --max-time 5 "http://127.0.0.1:$GW_PORT/metrics" 2>/dev/null |
		python3 -c '
import json, re, sys
h = {}
for line in sys.stdin:
    m = re.match(r"(ws_consumed_to_write_seconds|ws_event_delivery_seconds|kafka_event_age_seconds)_bucket\{le=\"([^\"]+)\"\} (\S+)", line)
    if m:
        h.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
print(json.dumps(h))' 2>/dev/null || echo '{}'
}

# gw_threads_cpu: CPU seconds of the gateway's threads grouped by thread name, as
# JSON {"gw-consumer": s, "gw-writer": s, "civetweb-worker": s, "rdk:broker...": s}.
gw_threads_cpu() {
	awk -v t="$CLK_TCK" '{
		c = $0; sub(/^[0-9]+ \(/, "", c); n = c; sub(/\) .*/, "", n); sub(/^.*\) /, "", c)
		split(c, f, " "); cpu[n] += (f[12] + f[13]) / t
	} END {
		printf "{"; sep = ""
		for (n in cpu) { gsub(/"/, "", n); printf "%s\"%s\":%.2f", sep, n, cpu[n]; sep = "," }
		printf "}\n"
	}' /proc/"$GW_PID"/task/*/stat 2>/dev/null || echo '{}'
}

# Syscalls of the gateway over a measured run, counted by `perf stat` on its
# tracepoints (PERF_STAT=1, the default when perf can count them; 0: off).
PERF_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_sendmsg,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,context-switches
if [ -z "${PERF_STAT:-}" ]; then
	PERF_STAT=0
	command -v perf >/dev/null && perf stat -x, -e "$PERF_EVENTS" true >/dev/null 2>&1 && PERF_STAT=1
fi
# perf_counts: the counts of the last perf stat as JSON {event: n} ({} without one).
perf_counts() {
	[ -s "$WORK/perf.csv" ] || { echo '{}'; return; }
	awk -F, '$1 ~ /^[0-9]+$/ {
		n = $3; sub(/^.*:/, "", n); sub(/^sys_enter_?/, "", n); if (n == "") n = "all"
		printf "%s\"%s\":%s", (k++ ? "," : "{"), n, $1 }
		END { print (k ? "}" : "{}") }' "$WORK/perf.csv"
}

# ws_recv_run LABEL CONNS USERS EVENTS RATE LINGER STALLED GWVAR=VALUE...: a fresh
# gateway (settings GWVAR...) on a fresh topic; ws-load holds CONNS sockets,
# kafka-load produces EVENTS events (RATE/s, 0 flat out) over USERS users; one JSON
# line with every figure goes to results.jsonl.
# Each run gets its own topic because the librdkafka mock broker's CPU per fetch
# grows with the length of the partition's log (runs on one topic got slower and
# slower: 1.8 -> 6 broker CPU seconds for the same 10,000 events).
ws_recv_run() {
	local label=$1 conns=$2 users=$3 events=$4 rate=$5 linger=$6 stalled=$7
	shift 7
	local per_user=$(((conns + users - 1) / users))
	local expect=$((events * (conns - stalled) / users))
	local topic="bench-$label-$((++TOPIC_SEQ))"
	make_topic "$topic" || return 1
	start_gateway "$@" KAFKA_TOPIC="$topic" || return 1
	rm -f "$WORK/ready" "$WORK/wl.json" "$WORK/kl.json"
	timeout 200 env WS_PORT="$GW_PORT" CONNECTIONS="$conns" USERS="$users" MODE=recv \
		DURATION_S=90 IDLE_S=3 EXPECT_FRAMES="$expect" STALLED="$stalled" SRC_ADDRS=32 \
		READY_FILE="$WORK/ready" LOG_LEVEL=warn "${LOAD_PIN[@]}" "$BIN/ws-load" >"$WORK/wl.json" \
		2>>"$WORK/ws-load.log" &
	local wl=$!
	if ! wait_file "$WORK/ready" 60; then
		log "$label: ws-load did not connect"
		kill "$wl" 2>/dev/null; wait "$wl"
		return 1
	fi
	sleep 0.5
	local g0 b0 t0 g1 b1 t1
	g0=$(cpu_s "$GW_PID") b0=$(cpu_s "$BROKER_PID") t0=$(now)
	local m0 m1
	m0=$(machine_busy)
	local slow0 slow1
	slow0=$(metric_now 'ws_server_closes_total{reason="slow_client"}')
	local perf_pid=
	rm -f "$WORK/perf.csv"
	if [ "$PERF_STAT" = 1 ]; then
		perf stat -x, -e "$PERF_EVENTS" -p "$GW_PID" -o "$WORK/perf.csv" 2>/dev/null &
		perf_pid=$!
	fi
	timeout 120 env KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_TOPIC="$topic" USERS="$users" \
		RATE="$rate" COUNT="$events" \
		DURATION_S=100 LINGER_MS="$linger" LOG_LEVEL=warn "${LOAD_PIN[@]}" "$BIN/kafka-load" \
		>"$WORK/kl.json" 2>>"$WORK/kafka-load.log"
	wait "$wl"
	g1=$(cpu_s "$GW_PID") b1=$(cpu_s "$BROKER_PID") t1=$(now)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null
		wait "$perf_pid"
	fi
	local sysc
	sysc=$(perf_counts)
	m1=$(machine_busy)
	slow1=$(metric_now 'ws_server_closes_total{reason="slow_client"}')
	local hist thr
	hist=$(gw_histograms)
	thr=$(gw_threads_cpu)
	stop_gateway
	local mbusy
	mbusy=$(echo "$m0 $m1" | awk '{printf "%.2f", ($3 - $1) / ($4 - $2) * '"$(nproc)"'}')
	if ! jq -e . "$WORK/wl.json" >/dev/null 2>&1 || ! jq -e . "$WORK/kl.json" >/dev/null 2>&1; then
		log "$label: a load tool gave no result (see $WORK/*.log)"
		return 1
	fi
	jq -c -n --arg sc "$label" --slurpfile ws "$WORK/wl.json" --slurpfile k "$WORK/kl.json" \
		--argjson gw "$(sub "$g1" "$g0")" --argjson br "$(sub "$b1" "$b0")" \
		--argjson wall "$(sub "$t1" "$t0")" --argjson pu "$per_user" --argjson mb "$mbusy" \
		--argjson slow "$(sub "$slow1" "$slow0")" --argjson hist "$hist" --argjson thr "$thr" \
		--argjson sysc "$sysc" \
		'{scenario:$sc, ws:$ws[0], kafka:$k[0], gateway_cpu_s:$gw, broker_cpu_s:$br,
		  wall_s:$wall, sockets_per_user:$pu, machine_busy_cores:$mb,
		  gateway_slow_client_closes:$slow, gateway_histograms:$hist,
		  gateway_threads_cpu_s:$thr, gateway_syscalls:$sysc}' >>"$RESULTS"
	jq -r '"  \(.scenario): \(.ws.frames) frames, \(.ws.frames_per_s|floor)/s, p50 \(.ws.latency.p50_us) us, p99 \(.ws.latency.p99_us) us, gw cpu \(.gateway_cpu_s) s, broker cpu \(.broker_cpu_s) s, ws-load cpu \(.ws.cpu_s) s, closes \(.ws.close_codes), gateway 1013 closes \(.gateway_slow_client_closes)"' \
		<(tail -n 1 "$RESULTS") >&2
}

log "work dir $WORK, bin $BIN, runs $RUNS, scenarios: $SCENARIOS"
if [ "$KAFKA" = devbroker ]; then
	devbroker_start "$BIN/devbroker" "$WORK" || exit 1
	pids+=("$BROKER_PID")
	BROKER_PID=$BROKER_PID
	log "Kafka: devbroker (librdkafka mock cluster) on $KAFKA_BROKERS"
else
	tools/kafka/install.sh || exit 1
	kafka_up "$WORK/kafka" 1 task-updates 3 || exit 1
	kafka_presence_topic "$WORK/kafka" || exit 1
	KAFKA_STARTED=1
	BROKER_PID=$(cat "$WORK/kafka/node-1/pid")
	[ -n "${PIN:-}" ] && taskset -a -p -c "${PIN##*:}" "$BROKER_PID" >/dev/null
	log "Kafka: Apache Kafka $KAFKA_VERSION (KRaft, 1 node) on $KAFKA_BROKERS"
fi
# make_topic NAME: Apache Kafka creates no topic by itself (3 partitions, as in the tests).
make_topic() {
	[ "$KAFKA" = devbroker ] && return 0
	tools/kafka/cluster.sh topic "$WORK/kafka" "$1" 3
}

GW_COMMON=(JWT_SECRET="$JWT_SECRET" MAX_CONNECTIONS_PER_USER=200 HEARTBEAT_INTERVAL=60)
# A fresh broker's JVM compiles its hot paths during the first minute of traffic (in
# one run its C2 compiler threads took 20 CPU s, and the first latency run's p50 was
# 1.7 s against 0.85 ms in the second): the gateway scenarios start after a warm-up
# of the same shapes of traffic, whose figures are not kept. WARMUP=0: none.
WARMUP=${WARMUP:-$([ "$KAFKA" = devbroker ] && echo 0 || echo 1)}
if [ "$WARMUP" = 1 ] && [ -x "$BIN/ws-gateway" ] &&
	{ has fanout || has latency || has skip; }; then
	log "broker warm-up (figures not kept)"
	RESULTS=$WORK/warmup.jsonl ws_recv_run warmup-flat 1000 100 30000 0 5 0 "${GW_COMMON[@]}" \
		MAX_CONNECTIONS=1100 SEND_QUEUE_MAX_FRAMES=20000 SEND_QUEUE_MAX_BYTES=16777216 \
		SEND_QUEUE_TOTAL_BYTES=4294967296
	for rate in 2000 1000; do
		RESULTS=$WORK/warmup.jsonl ws_recv_run "warmup-paced-$rate" 1000 100 $((rate * 10)) \
			"$rate" 0 0 "${GW_COMMON[@]}" MAX_CONNECTIONS=1100
	done
fi
if [ -x "$BIN/ws-gateway" ]; then
	if has fanout; then
		# Flat out: the per-connection queue must hold a whole burst, or the
		# saturation run measures slow-client closes instead of throughput (and so
		# must the total budget: 1,000 bursts of up to 16 MiB).
		fan_gw=("${GW_COMMON[@]}" MAX_CONNECTIONS=1100 SEND_QUEUE_MAX_FRAMES=20000
			SEND_QUEUE_MAX_BYTES=16777216 SEND_QUEUE_TOTAL_BYTES=4294967296)
		for r in $(seq 1 "$RUNS"); do
			log "fanout run $r"
			ws_recv_run fanout-1000x100 1000 100 100000 0 5 0 "${fan_gw[@]}"
			ws_recv_run fanout-1000x10 1000 10 30000 0 5 0 "${fan_gw[@]}"
		done
	fi
	if has latency; then
		# A small fetch wait for latency; a short queue and write timeout so the
		# stalled socket is cut within the run (both runs use the same settings).
		# The stalled socket's user gets 100 frames per run: a 16-frame queue behind a
		# small socket buffer (WS_SNDBUF) cannot hold them, so it is closed within the run.
		lat_gw=("${GW_COMMON[@]}" MAX_CONNECTIONS=1100 KAFKA_FETCH_WAIT_MS="$FETCH_WAIT_MS"
			SEND_QUEUE_MAX_FRAMES=16 WS_SNDBUF=4096 WRITE_TIMEOUT_MS=2000)
		for r in $(seq 1 "$RUNS"); do
			log "latency run $r (10,000 frames/s: 1,000 events/s to 1,000 sockets of 100 users, fetch wait $FETCH_WAIT_MS ms)"
			ws_recv_run latency-10k 1000 100 10000 1000 0 0 "${lat_gw[@]}"
			ws_recv_run stalled-1-of-1000 1000 100 10000 1000 0 1 "${lat_gw[@]}"
			# 300 of them stop reading: the others' delivery must not suffer.
			ws_recv_run stalled-300-of-1000 1000 100 10000 1000 0 300 "${lat_gw[@]}"
		done
	fi
	if has skip; then
		# Events for users with no socket on this replica (each replica reads every
		# partition): skipped by Kafka key before any parse. SKIP_EVENTS events flat
		# out to 10,000 users, none connected; the gateway's CPU until it has
		# consumed the last one.
		skip_n=${SKIP_EVENTS:-1000000}
		for r in $(seq 1 "$RUNS"); do
			log "skip run $r ($skip_n events for users with no socket)"
			topic="bench-skip-$((++TOPIC_SEQ))"
			make_topic "$topic" || continue
			start_gateway "${GW_COMMON[@]}" KAFKA_TOPIC="$topic" || continue
			sleep 0.5
			c0=$(metric_now kafka_events_consumed_total) v0=$(metric_now kafka_events_valid_total)
			g0=$(cpu_s "$GW_PID") t0=$(now)
			timeout 120 env KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_TOPIC="$topic" USERS=10000 \
				USER_PREFIX=nobody- RATE=0 COUNT="$skip_n" DURATION_S=100 LINGER_MS=5 \
				LOG_LEVEL=warn "$BIN/kafka-load" >"$WORK/kl.json" 2>>"$WORK/kafka-load.log" &
			kl=$!
			consumed=0
			for _ in $(seq 1 1200); do
				consumed=$(metric_now kafka_events_consumed_total)
				[ "$(awk -v a="$consumed" -v b="$c0" -v n="$skip_n" 'BEGIN {print (a - b >= n)}')" = 1 ] && break
				sleep 0.1
			done
			g1=$(cpu_s "$GW_PID") t1=$(now)
			wait "$kl"
			skipped=$(metric_now kafka_events_skipped_total)
			parsed=$(awk -v a="$(metric_now kafka_events_valid_total)" -v b="$v0" 'BEGIN {print a - b}')
			thr=$(gw_threads_cpu)
			stop_gateway
			jq -c -n --argjson n "$skip_n" --argjson sk "$skipped" --argjson pa "$parsed" \
				--argjson gw "$(sub "$g1" "$g0")" --argjson wall "$(sub "$t1" "$t0")" \
				--argjson thr "$thr" --slurpfile k "$WORK/kl.json" \
				'{scenario:"skip", events:$n, skipped:$sk, parsed:$pa, gateway_cpu_s:$gw,
				  wall_s:$wall, gateway_threads_cpu_s:$thr, kafka:$k[0]}' >>"$RESULTS"
			jq -r '"  skip: \(.skipped) of \(.events) skipped, gateway cpu \(.gateway_cpu_s) s, \(.events / .gateway_cpu_s | floor) events per CPU s, \(.parsed) parsed"' <(tail -n 1 "$RESULTS") >&2
		done
	fi
	if has capacity; then
		# The most the fd limit holds: the gateway refuses a MAX_CONNECTIONS above
		# RLIMIT_NOFILE - 16 spare threads - 64 queued - 512 for the rest.
		cap=$(($(ulimit -n) - 600))
		log "capacity: gateway with MAX_CONNECTIONS=$cap (the fd limit $(ulimit -n) minus its reserve)"
		t_start=$(now)
		start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS="$cap" || exit 1
		t_ready=$(now)
		sleep 2
		rss0=$(rss_kib "$GW_PID") thr0=$(threads "$GW_PID")
		rm -f "$WORK/ready"
		timeout 300 env WS_PORT="$GW_PORT" CONNECTIONS="$cap" USERS=1000 MODE=hold HOLD_S=15 \
			CONCURRENCY=200 SRC_ADDRS=64 CONNECT_DEADLINE_S=180 READY_FILE="$WORK/ready" \
			LOG_LEVEL=warn "$BIN/ws-load" >"$WORK/hold.json" 2>>"$WORK/ws-load.log" &
		wl=$!
		if wait_file "$WORK/ready" 200; then
			sleep 5
			rss1=$(rss_kib "$GW_PID") thr1=$(threads "$GW_PID")
			status=$(curl -fsS --max-time 5 -H "Authorization: Bearer $GW_STATUS_TOKEN" "http://127.0.0.1:$GW_PORT/status" | jq -c '{connections, active_users, max_connections}' 2>/dev/null || echo null)
			fds=$(ls "/proc/$GW_PID/fd" 2>/dev/null | wc -l)
		fi
		wait "$wl"
		if jq -e . "$WORK/hold.json" >/dev/null 2>&1 && [ -n "${rss1:-}" ]; then
			jq -c -n --slurpfile ws "$WORK/hold.json" --argjson rss0 "$rss0" --argjson rss1 "$rss1" \
				--argjson thr0 "$thr0" --argjson thr1 "$thr1" --argjson st "$status" \
				--argjson fds "$fds" --argjson startup "$(sub "$t_ready" "$t_start")" \
				'{scenario:"capacity", ws:$ws[0], rss_empty_kib:$rss0, rss_held_kib:$rss1,
				  threads_empty:$thr0, threads_held:$thr1, gateway_status:$st, gateway_fds:$fds,
				  startup_s:$startup}' >>"$RESULTS"
			jq -r '"  capacity: \(.ws.open_after_connect) open of \(.ws.connections) (refusals \(.ws.refusal_status)), RSS \(.rss_empty_kib) -> \(.rss_held_kib) KiB, threads \(.threads_held), \(.ws.handshakes_per_s|floor) handshakes/s"' <(tail -n 1 "$RESULTS") >&2
		else
			log "capacity: no result"
		fi
		stop_gateway
	fi
	if has handshake; then
		start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS=5000 || exit 1
		for r in $(seq 1 "$RUNS"); do
			log "handshake run $r"
			if timeout 120 env WS_PORT="$GW_PORT" CONNECTIONS=4000 USERS=1000 MODE=connect \
				CONCURRENCY=100 SRC_ADDRS=64 LOG_LEVEL=warn "$BIN/ws-load" \
				>"$WORK/hs.json" 2>>"$WORK/ws-load.log"; then
				jq -c --arg sc handshake '{scenario:$sc, ws:.}' "$WORK/hs.json" >>"$RESULTS"
				jq -r '"  handshake: \(.ws.opened) opened, \(.ws.handshakes_per_s|floor)/s"' <(tail -n 1 "$RESULTS") >&2
			fi
			sleep 3 # let the gateway release the closed sockets' threads
		done
		stop_gateway
	fi
	if has presence; then
		# Connects/s with a presence subscribe per socket, on vs off, paired in the
		# same window (the order alternates between runs): each socket opens,
		# subscribes to one of 50 lists and gets its answer (the presence message,
		# or error presence_off), then all close (a tombstone each when on). The
		# gateway's and the broker's CPU over the whole run, per socket.
		# PRESENCE_DELAY=0 skips the delay runs below.
		pres_n=${PRESENCE_CONNECTIONS:-2000}
		# 50 lists: 40 sockets online in each, so each subscribe is also a presence
		# message to the list's other subscribers; PRESENCE_LISTS=2000: one each,
		# the cost of the subscribe alone
		pres_lists=${PRESENCE_LISTS:-50}
		for r in $(seq 1 "$RUNS"); do
			order="on off"
			[ $((r % 2)) = 0 ] && order="off on"
			for onoff in $order; do
				log "presence run $r, presence $onoff ($pres_n sockets, connect + subscribe)"
				start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS=$((pres_n + 100)) \
					PRESENCE_ENABLED=$([ "$onoff" = on ] && echo true || echo false) \
					GATEWAY_ID=bench-a || continue
				g0=$(cpu_s "$GW_PID") b0=$(cpu_s "$BROKER_PID")
				if timeout 180 env WS_PORT="$GW_PORT" CONNECTIONS="$pres_n" USERS="$pres_n" \
					USER_PREFIX="bp$r$onoff-" MODE=connect SUBSCRIBE=1 LISTS="$pres_lists" CONCURRENCY=100 \
					SRC_ADDRS=64 LOG_LEVEL=warn "$BIN/ws-load" >"$WORK/pr.json" \
					2>>"$WORK/ws-load.log"; then
					sleep 1 # the closes (and their tombstones) done
					g1=$(cpu_s "$GW_PID") b1=$(cpu_s "$BROKER_PID")
					jq -c --arg sc "presence-$onoff" --argjson gw "$(sub "$g1" "$g0")" \
						--argjson br "$(sub "$b1" "$b0")" \
						'{scenario:$sc, ws:., gw_cpu_s:$gw, broker_cpu_s:$br}' "$WORK/pr.json" >>"$RESULTS"
					jq -r '"  \(.scenario): \(.ws.subscribed) answered (\(.ws.subscribe_errors) errors), \(.ws.sessions_per_s|floor) connects+subscribes/s, \(.ws.handshakes_per_s|floor) handshakes/s, subscribe->answer p50 \(.ws.subscribe_reply.p50_us) us p99 \(.ws.subscribe_reply.p99_us) us, gateway CPU \(.gw_cpu_s) s, broker CPU \(.broker_cpu_s) s"' <(tail -n 1 "$RESULTS") >&2
				fi
				stop_gateway
				sleep 2 # let the closed sockets' threads go
			done
			# The delay: a watcher on gateway W subscribed to 20 lists (fewer than
			# CLIENT_RATE_BURST: it sends them at once); 300 sockets of 300 users
			# connect to gateway A one every 50 ms and subscribe (a list changes every
			# second: no coalescing wait); subscribe sent -> the watcher's presence
			# message showing that user.
			[ "${PRESENCE_DELAY:-1}" = 1 ] || continue
			log "presence run $r: delay across gateways (300 subscribes, one per 50 ms)"
			start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS=700 GATEWAY_ID=bench-w || continue
			W_PID=$GW_PID W_PORT=$GW_PORT GW_PID=
			if start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS=700 GATEWAY_ID=bench-a; then
				if timeout 180 env WS_PORT="$GW_PORT" WATCH_PORT="$W_PORT" CONNECTIONS=300 \
					USERS=300 USER_PREFIX="bd$r-" MODE=connect SUBSCRIBE=1 LISTS=20 \
					CONCURRENCY=1 PACE_MS=50 LOG_LEVEL=warn "$BIN/ws-load" >"$WORK/pd.json" \
					2>>"$WORK/ws-load.log"; then
					jq -c --arg sc presence-delay '{scenario:$sc, ws:.}' "$WORK/pd.json" >>"$RESULTS"
					jq -r '"  presence-delay: \(.ws.watch_seen) of \(.ws.subscribed) seen, subscribe -> other gateway p50 \(.ws.presence_delay.p50_us) us p99 \(.ws.presence_delay.p99_us) us max \(.ws.presence_delay.max_us) us"' <(tail -n 1 "$RESULTS") >&2
				fi
			fi
			stop_gateway
			stop_pid "$W_PID" 10
			W_PID=
		done
	fi
	stop_gateway
else
	gw_sc=()
	for sc in fanout latency skip capacity handshake presence; do has "$sc" && gw_sc+=("$sc"); done
	[ ${#gw_sc[@]} -gt 0 ] && missing ws-gateway "${gw_sc[@]}"
fi

if has api; then
	if [ -x "$BIN/backend-api" ] && [ -x "$BIN/api-load" ]; then
		pg_start "$WORK/pg" && PG_STARTED=1 || exit 1
		DATABASE_URL=$(pg_createdb tasksync_bench) || exit 1
		# Each run gets a backend-api on a topic of its own (see ws_recv_run: the
		# mock broker's fetch walks the partition's whole log, so a topic that grows
		# run after run makes the broker, not the service, slower). The database is
		# kept: the outbox grows from run to run as it would in service.
		start_api() { # TOPIC
			stop_pid "$API_PID" 10
			API_PORT=$(free_port)
			PORT=$API_PORT DATABASE_URL=$DATABASE_URL KAFKA_BROKERS=$KAFKA_BROKERS \
				KAFKA_TOPIC=$1 LOG_LEVEL=warn "$BIN/backend-api" 2>>"$WORK/backend-api.log" &
			API_PID=$!
			if ! wait_http "http://127.0.0.1:$API_PORT/readyz" 60; then
				log "backend-api did not get ready"
				tail -n 5 "$WORK/backend-api.log" >&2
				return 1
			fi
			# One write first, so that the producer has the new topic's metadata
			# before the measured run (a producer in service has it long before):
			# the first events of a topic wait some 300 ms for it otherwise.
			local token
			token=$("$BIN/tasksync-token" bench-warmup) &&
				curl -fsS -o /dev/null --max-time 10 -H "Authorization: Bearer $token" \
					-H 'Content-Type: application/json' -d '{"title":"warm-up"}' \
					"http://127.0.0.1:$API_PORT/api/v1/tasks" || log "warm-up write failed"
			sleep 1
			# What the previous run left in the slot (a saturation run ends seconds
			# ahead of the relay) is drained before this run is measured, as a
			# process in service would have drained it before the next load.
			local target drained=0
			target=$(psql -qAtX "$DATABASE_URL" -c 'SELECT pg_current_wal_lsn()')
			for _ in $(seq 1 600); do
				[ "$(psql -qAtX "$DATABASE_URL" -c "SELECT bool_and(confirmed_flush_lsn >= '$target') FROM pg_replication_slots")" = t ] && { drained=1; break; }
				sleep 0.1
			done
			[ $drained = 1 ] || log "the slot was not drained in 60 s"
		}
		api_run() { # LABEL VAR=VALUE...
			local label=$1 a0 b0 p0 a1 b1 p1
			local topic="bench-$label-$((++TOPIC_SEQ))"
			shift
			# Vacuumed first, as autovacuum keeps it in service: otherwise a run that
			# follows a saturation run (30,000 rows written and marked published)
			# shares the machine with the autovacuum of that burst.
			[ "${API_VACUUM:-1}" = 1 ] && psql -q -X "$DATABASE_URL" -c 'VACUUM (ANALYZE)' >/dev/null
			make_topic "$topic" || return 1
			start_api "$topic" || return 1
			a0=$(cpu_s "$API_PID") b0=$(cpu_s "$BROKER_PID")
			p0=$(pg_cpu_s)
			if timeout 120 env "$@" API_PORT="$API_PORT" KAFKA_BROKERS="$KAFKA_BROKERS" \
				KAFKA_TOPIC="$topic" LOG_LEVEL=warn "$BIN/api-load" >"$WORK/api.json" \
				2>>"$WORK/api-load.log"; then
				a1=$(cpu_s "$API_PID") b1=$(cpu_s "$BROKER_PID")
				p1=$(pg_cpu_s)
				# The relay's own counters (dead letters, resets) and its
				# commit-to-acknowledgement histogram, measured in the service.
				curl -fsS --max-time 5 "http://127.0.0.1:$API_PORT/metrics" >"$WORK/api-metrics.txt" ||
					: >"$WORK/api-metrics.txt"
				relay=$(awk '$1 ~ /^outbox_(dead_letters|relay_resets)_total$/ \
						{ printf "%s\"%s\":%s", n++ ? "," : "{", $1, $2 }
					$1 ~ /^outbox_commit_to_ack_seconds_bucket/ {
						le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
						if (le == "+Inf") le = "1e9"
						b = b (b ? "," : "") "[" le "," $2 "]" }
					END { printf "%s\"ack_buckets\":[%s]}\n", n ? "," : "{", b }' \
					"$WORK/api-metrics.txt")
				jq -c --arg sc "$label" --argjson a "$(sub "$a1" "$a0")" \
					--argjson b "$(sub "$b1" "$b0")" --argjson p "$(sub "$p1" "$p0")" \
					--argjson relay "$relay" \
					'{scenario:$sc, api:., api_cpu_s:$a, broker_cpu_s:$b, pg_cpu_s:$p, relay:$relay}' \
					"$WORK/api.json" >>"$RESULTS"
				jq -r '"  \(.scenario): \(.api.writes_per_s|floor) writes/s, p50 \(.api.latency.p50_us) us, p99 \(.api.latency.p99_us) us, status \(.api.status), topic p50/p99 \(.api.topic.commit_to_topic.p50_us)/\(.api.topic.commit_to_topic.p99_us) us, api cpu \(.api_cpu_s) s"' <(tail -n 1 "$RESULTS") >&2
			else
				log "$label: api-load failed (see $WORK/api-load.log)"
			fi
		}
		for r in $(seq 1 "$RUNS"); do
			log "api run $r"
			[[ " $API_MODES " == *" saturation "* ]] &&
				api_run api-saturation MODE=saturation CONNECTIONS=${API_CONNECTIONS:-16} \
					DURATION_S=10 USERS=100
			[[ " $API_MODES " == *" rate "* ]] &&
				api_run api-rate-1000 MODE=rate RATE=1000 CONNECTIONS=${API_CONNECTIONS:-16} \
					DURATION_S=10 USERS=100
		done
		stop_pid "$API_PID" 10
		API_PID=
	else
		missing backend-api api
	fi
fi

# lists: a change to a list shared with N members (LIST_SIZES, default 0 1 10 100
# 1000; 0 is the user's default list, the path without lists; 1 a list of one): commit to the last member's socket (api-load writes into
# the list, ~2,000 member events/s, with its send time in the description; ws-load holds one
# socket per member and measures receive - send over every member's frames), then
# writes/s at saturation into that one list (4 connections: they serialise on it).
if has lists; then
	if [ -x "$BIN/backend-api" ] && [ -x "$BIN/api-load" ] && [ -x "$BIN/ws-gateway" ]; then
		if [ -z "$PG_STARTED" ]; then
			pg_start "$WORK/pg" && PG_STARTED=1 || exit 1
		fi
		LDB=$(pg_createdb tasksync_lists) || exit 1
		for r in $(seq 1 "$RUNS"); do
			for n in ${LIST_SIZES:-0 1 10 100 1000}; do
				topic="bench-lists-$n-$((++TOPIC_SEQ))"
				make_topic "$topic" || break
				stop_pid "$API_PID" 10
				API_PORT=$(free_port)
				PORT=$API_PORT DATABASE_URL=$LDB KAFKA_BROKERS=$KAFKA_BROKERS KAFKA_TOPIC=$topic \
					USER_RATE_LIMIT=0 LOG_LEVEL=warn "$BIN/backend-api" 2>>"$WORK/backend-api.log" &
				API_PID=$!
				wait_http "http://127.0.0.1:$API_PORT/readyz" 60 || { log "backend-api did not get ready"; break; }
				start_gateway "${GW_COMMON[@]}" MAX_CONNECTIONS=1100 KAFKA_TOPIC="$topic" || break
				prefix="bl$r-$n-u"
				owner_token=$("$BIN/tasksync-token" "${prefix}0")
				if [ "$n" = 0 ]; then # the default list: the path without lists
					lid=default n=1
				else
					lid=$(curl -fsS --max-time 10 -H "Authorization: Bearer $owner_token" \
						-H 'Content-Type: application/json' -d '{"name":"bench"}' \
						"http://127.0.0.1:$API_PORT/api/v1/lists" | jq -r .id)
				fi
				t0=$SECONDS
				seq 1 $((n - 1)) | xargs -r -P 4 -I{} curl -fsS -o /dev/null --max-time 10 \
					-H "Authorization: Bearer $owner_token" -H 'Content-Type: application/json' \
					-d "{\"user_id\":\"${prefix}{}\",\"role\":\"editor\"}" \
					"http://127.0.0.1:$API_PORT/api/v1/lists/$lid/members"
				log "lists: $n members shared in $((SECONDS - t0)) s"
				# the same event budget at every size: LIST_EVENTS_S events/s (default
				# 2,000) for 20 s, at most 20 changes/s and 100 changes
				rate=$(( ${LIST_EVENTS_S:-2000} / n )); [ "$rate" -gt 20 ] && rate=20; [ "$rate" -lt 1 ] && rate=1
				writes=$((rate * 20)); [ "$writes" -gt "${LIST_WRITES:-100}" ] && writes=${LIST_WRITES:-100}
				rm -f "$WORK/ready" "$WORK/wl.json"
				timeout 200 env WS_PORT="$GW_PORT" CONNECTIONS="$n" USERS="$n" USER_PREFIX="$prefix" \
					MODE=recv DURATION_S=120 IDLE_S=5 EXPECT_FRAMES=$((n * writes)) SRC_ADDRS=4 \
					READY_FILE="$WORK/ready" LOG_LEVEL=warn "$BIN/ws-load" >"$WORK/wl.json" \
					2>>"$WORK/ws-load.log" &
				wl=$!
				for _ in $(seq 1 600); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
				timeout 120 env API_PORT="$API_PORT" MODE=rate RATE="$rate" CONNECTIONS=4 \
					USERS=1 USER_PREFIX="$prefix" LIST_ID="$lid" MAX_REQUESTS="$writes" \
					DURATION_S=$((writes / rate + 2)) WARMUP_S=0 LOG_LEVEL=warn \
					"$BIN/api-load" >"$WORK/la.json" 2>>"$WORK/api-load.log"
				wait "$wl"
				# writes into one list serialise on its lock: a few connections saturate it
				timeout 120 env API_PORT="$API_PORT" MODE=saturation CONNECTIONS=4 USERS=1 \
					USER_PREFIX="$prefix" LIST_ID="$lid" DURATION_S=10 LOG_LEVEL=warn \
					"$BIN/api-load" >"$WORK/ls.json" 2>>"$WORK/api-load.log"
				jq -c -n --arg sc "lists-$([ "$lid" = default ] && echo default || echo "$n")" --argjson n "$n" \
					--argjson rate "$rate" --slurpfile ws "$WORK/wl.json" \
					--slurpfile r "$WORK/la.json" --slurpfile sat "$WORK/ls.json" \
					'{scenario:$sc, members:$n, changes_per_s:$rate, ws:$ws[0], rated:$r[0], saturation:$sat[0]}' >>"$RESULTS"
				jq -r '"  \(.scenario): frames \(.ws.frames) of \(.members * '"$writes"'), commit->member socket p50 \(.ws.latency.p50_us) us p99 \(.ws.latency.p99_us) us max \(.ws.latency.max_us) us; saturation \(.saturation.writes_per_s|floor) writes/s (\(.saturation.writes_per_s * .members|floor) events/s), POST p99 \(.saturation.latency.p99_us) us"' \
					<(tail -n 1 "$RESULTS") >&2
				stop_gateway
			done
		done
		stop_pid "$API_PID" 10
		API_PID=
	else
		missing backend-api lists
	fi
fi

echo
python3 "$ROOT/bench/summary.py" "$RESULTS" "$CLK_TCK"
