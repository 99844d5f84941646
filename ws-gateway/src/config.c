#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gw_config g_cfg;

/* The one table: name, type, destination, default, bounds, help. */
static const cfg_entry table[] = {
    {"PORT", CFG_INT, &g_cfg.port, "8005", 1, 65535, "HTTP/WebSocket listen port"},
    {"KAFKA_BROKERS", CFG_STR, &g_cfg.kafka_brokers, "127.0.0.1:9092", 1, 1024,
     "Kafka bootstrap servers"},
    {"KAFKA_TOPIC", CFG_STR, &g_cfg.kafka_topic, "task-updates", 1, 249, "topic of task events"},
    {"JWT_SECRET", CFG_SECRET, &g_cfg.jwt_secret, NULL, 16, 4096,
     "HS256 secret shared with backend-api (at least 16 bytes)"},
    {"ALLOWED_ORIGINS", CFG_STR, &g_cfg.allowed_origins, NULL, 1, 4096,
     "allowed Origin values, comma-separated exact origins (the page's, e.g. "
     "https://tasksync.example.com); * allows any, for development only (make run sets it)"},
    {"LOG_LEVEL", CFG_LEVEL, &g_cfg.log_level, "info", 0, 0, "debug|info|warn|error|off"},
    {"MAX_CONNECTIONS", CFG_INT, &g_cfg.max_connections, "1000", 1, 100000,
     "open WebSockets in total (one civetweb thread each); the gateway refuses to start "
     "when RLIMIT_NOFILE or the container's memory limit cannot hold it"},
    {"MAX_CONNECTIONS_PER_USER", CFG_INT, &g_cfg.max_conn_per_user, "20", 1, 100000,
     "open WebSockets per user; more are closed with 1008"},
    {"MAX_MESSAGE_BYTES", CFG_INT, &g_cfg.max_message_bytes, "4096", 16, 1048576,
     "largest client message (a frame, or the fragments of one, added up); a header "
     "claiming more closes with 1009 before its payload is read"},
    {"CLIENT_RATE_LIMIT", CFG_INT, &g_cfg.client_rate_limit, "20", 0, 100000,
     "client messages per second per connection (every frame counts); more closes "
     "with 1008 and nothing more is read (0: off)"},
    {"CLIENT_RATE_BURST", CFG_INT, &g_cfg.client_rate_burst, "40", 1, 100000,
     "burst of client messages allowed above the rate"},
    {"HEARTBEAT_INTERVAL", CFG_INT, &g_cfg.heartbeat_interval, "30", 1, 3600,
     "seconds between server pings; a client silent for two intervals is closed"},
    {"SEND_QUEUE_MAX_FRAMES", CFG_INT, &g_cfg.send_queue_max_frames, "512", 1, 1000000,
     "frames queued for one socket; past it the client is closed with 1013"},
    {"SEND_QUEUE_MAX_BYTES", CFG_INT, &g_cfg.send_queue_max_bytes, "4194304", 1024, 1073741824,
     "bytes queued for one socket; past it the client is closed with 1013"},
    {"SEND_QUEUE_TOTAL_BYTES", CFG_INT, &g_cfg.send_queue_total, "67108864", 1048576, 68719476736L,
     "bytes queued on all sockets together; near it the sockets holding the most are "
     "closed with 1013, and no frame is queued past it"},
    {"SEND_MIN_DRAIN_RATE", CFG_INT, &g_cfg.send_min_drain_rate, "1024", 0, 1073741824,
     "bytes/s a socket with frames waiting must take, on average over SEND_DRAIN_WINDOW_MS, "
     "else it is closed with 1013 (0: off)"},
    {"SEND_DRAIN_WINDOW_MS", CFG_INT, &g_cfg.send_drain_window_ms, "10000", 500, 600000,
     "window of the drain-rate check"},
    {"HEALTH_PORT", CFG_INT, &g_cfg.health_port, "0", 0, 65535,
     "second listener with its own threads serving /health /ready /metrics, which "
     "WebSockets cannot starve (0: none; they are always on PORT too)"},
    {"MAX_EVENT_BYTES", CFG_INT, &g_cfg.max_event_bytes, "262144", 64, 16777216,
     "largest Kafka event accepted; bigger ones are rejected and counted"},
    {"KAFKA_FETCH_WAIT_MS", CFG_INT, &g_cfg.kafka_fetch_wait_ms, "10", 1, 10000,
     "fetch.wait.max.ms: small for latency, larger to spare the broker's CPU"},
    {"KAFKA_FETCH_MIN_BYTES", CFG_INT, &g_cfg.kafka_fetch_min_bytes, "1", 1, 1048576,
     "fetch.min.bytes: 1 answers a fetch with the first event; more lets the broker hold "
     "it (up to KAFKA_FETCH_WAIT_MS) until that many bytes are there: fewer fetch rounds "
     "per event at low rates, for up to that wait in latency"},
    {"KAFKA_METADATA_REFRESH_MS", CFG_INT, &g_cfg.kafka_refresh_ms, "1000", 100, 3600000,
     "how often new partitions of the topic are looked for (one metadata request each; "
     "a new partition is read from its start)"},
    {"KAFKA_CLOCK_SKEW_MS", CFG_INT, &g_cfg.kafka_clock_skew_ms, "2000", 0, 600000,
     "the first assignment reads events timestamped from this long before the first "
     "socket waited (clock skew between producers and this host)"},
    {"WRITER_THREADS", CFG_INT, &g_cfg.writer_threads, "2", 1, 64,
     "threads writing queued frames to sockets"},
    {"WRITE_INLINE_MAX", CFG_INT, &g_cfg.write_inline_max, "32", 0, 4096,
     "an event for at most this many sockets, when no socket waits for a writer, is "
     "written by the Kafka consumer's thread itself (non-blocking writes; no writer "
     "wakes: cheaper and faster at low rates); 0: always by the writer threads"},
    {"WRITE_TIMEOUT_MS", CFG_INT, &g_cfg.write_timeout_ms, "10000", 100, 600000,
     "a socket that takes no bytes for this long while frames wait is closed with 1013"},
    {"CLOSE_GRACE_MS", CFG_INT, &g_cfg.close_grace_ms, "2000", 10, 60000,
     "after a server-initiated close the socket is cut when the client has not closed"},
    {"WS_SNDBUF", CFG_INT, &g_cfg.ws_sndbuf, "0", 0, 16777216,
     "SO_SNDBUF of each WebSocket in bytes (0: kernel autotuning)"},
    {"SHUTDOWN_TIMEOUT", CFG_INT, &g_cfg.shutdown_timeout, "5", 1, 300,
     "seconds from SIGTERM to exit"},
    {"STATUS_TOKEN", CFG_SECRET, &g_cfg.status_token, "", 0, 4096,
     "bearer token /status requires (at least 16 characters); empty: /status is off "
     "(403); counts without user ids are on /metrics"},
    {"STATUS_MAX_USERS", CFG_INT, &g_cfg.status_max_users, "1000", 0, 1000000,
     "most users listed in /status connections_per_user (the rest are counted)"},
    {"ALLOW_QUERY_TOKEN", CFG_BOOL, &g_cfg.allow_query_token, "true", 0, 0,
     "accept the session token in the URL (?token=), for old clients and hand tests; "
     "set false in production: browsers then connect with ?ticket= (single use, 30 s, "
     "from backend-api's POST /api/v1/ws-ticket) and other clients send "
     "Authorization: Bearer"},
    {"PRESENCE_ENABLED", CFG_BOOL, &g_cfg.presence_enabled, "true", 0, 0,
     "list presence: sockets may subscribe to a list's presence with a ticket, and the "
     "gateway reads and writes PRESENCE_TOPIC (false: subscribe is refused)"},
    {"PRESENCE_TOPIC", CFG_STR, &g_cfg.presence_topic, "task-presence", 1, 249,
     "compacted topic of presence records (one per socket and list)"},
    {"PRESENCE_TTL_MS", CFG_INT, &g_cfg.presence_ttl_ms, "15000", 1000, 3600000,
     "a presence record not refreshed for this long is offline (a crashed gateway's "
     "sockets go offline within it)"},
    {"PRESENCE_HEARTBEAT_MS", CFG_INT, &g_cfg.presence_heartbeat_ms, "5000", 100, 1800000,
     "how often each subscription's record is re-produced with a fresh expiry (at most "
     "half of PRESENCE_TTL_MS)"},
    {"PRESENCE_MAX_LISTS", CFG_INT, &g_cfg.presence_max_lists, "64", 1, 4096,
     "presence subscriptions per socket; more are refused (too_many_subscriptions)"},
    {"PRESENCE_MAX_ENTRIES", CFG_INT, &g_cfg.presence_max_entries, "200000", 1, 10000000,
     "subscriptions the merged view holds (all gateways; about 250 bytes each); records "
     "beyond it are ignored and counted"},
    {"GATEWAY_ID", CFG_STR, &g_cfg.gateway_id, "", 0, 40,
     "this process's id in presence records, [A-Za-z0-9._-] (empty: hostname-pid-random; "
     "must differ between running gateways)"},
    {"STACK_TRIM", CFG_BOOL, &g_cfg.stack_trim, "false", 0, 0,
     "after each handshake give the stack pages it touched back to the kernel: about "
     "4 KiB less RSS per idle socket, but fewer handshakes per second"},
};

int gw_config_load(gw_config *cfg, char *err, size_t errlen)
{
	if (config_load(table, ARRAY_LEN(table), err, errlen))
		return -1;
	if (g_cfg.status_token[0] && strlen(g_cfg.status_token) < 16) {
		snprintf(err, errlen, "STATUS_TOKEN: must be empty or at least 16 characters\n");
		config_free(table, ARRAY_LEN(table));
		return -1;
	}
	const char *bad = NULL;
	if (g_cfg.presence_heartbeat_ms * 2 > g_cfg.presence_ttl_ms)
		bad = "PRESENCE_HEARTBEAT_MS: must be at most half of PRESENCE_TTL_MS\n";
	for (const char *p = g_cfg.gateway_id; !bad && *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			bad = "GATEWAY_ID: only [A-Za-z0-9._-]\n";
	if (bad) {
		snprintf(err, errlen, "%s", bad);
		config_free(table, ARRAY_LEN(table));
		return -1;
	}
	if (!g_cfg.gateway_id[0]) {
		/* hostname (its valid characters, 20 at most), pid, 6 random hex digits */
		char host[256] = "", id[48];
		(void)gethostname(host, sizeof(host) - 1);
		size_t k = 0;
		for (const char *p = host; *p && k < 20; p++)
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-')
				id[k++] = *p;
		char u[UUID_STR_LEN];
		uuid_new(u);
		snprintf(id + k, sizeof(id) - k, "%s%ld-%.6s", k ? "-" : "", (long)getpid(), u);
		free(g_cfg.gateway_id);
		g_cfg.gateway_id = xstrdup(id);
	}
	*cfg = g_cfg;
	return 0;
}

void gw_config_free(gw_config *cfg)
{
	config_free(table, ARRAY_LEN(table));
	memset(cfg, 0, sizeof(*cfg));
}

void gw_config_help(FILE *out, const char *prog)
{
	config_print_help(
	    out, prog,
	    "ws-gateway: pushes each task event from Kafka to every open WebSocket of "
	    "its user",
	    table, ARRAY_LEN(table));
}

void gw_config_log(void)
{
	config_log(table, ARRAY_LEN(table));
}
