/* Readiness that tells the truth, and the gateway's own access rules (issue 12):
 * /ready against the consumer's real state (assignment, a lost broker), the
 * "catching_up" / "connected" handshake and the events of sockets opened before the
 * broker was up, new partitions, token expiry on open sockets, /status's token,
 * and the rate-limited log of malformed records. The real binary against the
 * harness's Apache Kafka. */
#include "harness.h"

#include "../support/broker.h"
#include "../support/kafka_io.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "suites.h"
#include "ws_client.h"

#include "common/util.h"

#include <check.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ready_status(int port)
{
	char *body = NULL;
	int st = http_get(port, "/ready", &body);
	free(body);
	return st;
}

/* Polls /ready until it answers want (at most ms); returns the last status. */
static int wait_ready(int port, int want, int ms)
{
	int st = -1;
	for (long long t0 = ms_now(); ms_now() - t0 < ms; usleep(100000)) {
		st = ready_status(port);
		if (st == want)
			break;
	}
	return st;
}

/* The "type" of a text message (static buffer). */
static const char *type_of(const char *m)
{
	static char type[64];
	json_t *j = json_loads(m, 0, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", m);
	snprintf(type, sizeof(type), "%s", json_string_value(json_object_get(j, "type")) ?: "");
	json_decref(j);
	return type;
}

static ws_client *open_socket(int port, const char *user, long ttl, char **first)
{
	char t[1024];
	char *tok = token_for(user, ttl);
	snprintf(t, sizeof(t), "/ws?token=%s", tok);
	free(tok);
	int st;
	ws_client *c = ws_open(port, t, NULL, 0, &st);
	ck_assert_msg(c != NULL, "connect %s: status %d", user, st);
	*first = ws_recv_text(c, 5000);
	ck_assert_msg(*first != NULL, "no first message for %s", user);
	return c;
}

/* Reads until every id in ids was seen as a task_update (any order), also noting a
 * "connected"; fails on a timeout. */
static void expect_ids(ws_client *c, char ids[][UUID_STR_LEN], int n, int *connected,
                       int timeout_ms)
{
	int seen = 0, got[64] = {0};
	long long t0 = ms_now();
	while (seen < n) {
		int left = (int)(timeout_ms - (ms_now() - t0));
		ck_assert_msg(left > 0, "%d of %d events arrived (close %d)", seen, n,
		              ws_close_code(c));
		char *m = ws_recv_text(c, left);
		ck_assert_msg(m != NULL, "%d of %d events arrived (close %d)", seen, n,
		              ws_close_code(c));
		json_t *j = json_loads(m, 0, NULL);
		const char *type = json_string_value(json_object_get(j, "type"));
		if (type && !strcmp(type, "connected") && connected)
			*connected = 1;
		const char *id = json_string_value(json_object_get(j, "event_id"));
		for (int i = 0; id && i < n; i++)
			if (!got[i] && !strcmp(id, ids[i])) {
				got[i] = 1;
				seen++;
			}
		json_decref(j);
		free(m);
	}
}

static void produce_events(const char *topic, const char *user, char ids[][UUID_STR_LEN], int n)
{
	for (int i = 0; i < n; i++) {
		char *ev = make_event(user, ids[i], 0);
		produce(topic, user, ev, strlen(ev));
		free(ev);
	}
}

static void start_without_wait(proc *p, const char *topic, const char *const *more)
{
	char bin[1024], brokers[512], t[128];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", topic);
	const char *env[16] = {brokers,
	                       t,
	                       "JWT_SECRET=" TEST_SECRET,
	                       "LOG_LEVEL=info",
	                       "MAX_CONNECTIONS=32",
	                       "ALLOWED_ORIGINS=*"};
	size_t n = 6;
	for (size_t i = 0; more && more[i] && n < 15; i++)
		env[n++] = more[i];
	proc_start(p, bin, NULL, env, "/health", 200);
}

/* The gateway starts while Apache Kafka is down: /ready is 503, a socket opened
 * meanwhile is told "catching_up"; the broker comes back; every event produced from
 * then on reaches that socket (none lost to the watermark race), "connected"
 * follows, and /ready turned 200 only after the partitions were assigned. */
START_TEST(started_before_the_broker)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	broker_guard(1);
	broker_kill(1);
	proc p;
	start_without_wait(&p, topic, NULL);
	char *first;
	ws_client *c = open_socket(p.port, "early", 600, &first);
	ck_assert_str_eq(type_of(first), "catching_up");
	free(first);
	for (int i = 0; i < 10; i++) { /* two seconds of not ready */
		ck_assert_int_eq(ready_status(p.port), 503);
		usleep(200000);
	}
	broker_start(1);
	/* at once, racing the gateway's reconnect, metadata and assignment */
	char ids[10][UUID_STR_LEN];
	produce_events(topic, "early", ids, 10);
	int connected = 0;
	expect_ids(c, ids, 10, &connected, 30000);
	ck_assert_int_eq(wait_ready(p.port, 200, 60000), 200);
	char *log = read_text_file(p.log);
	ck_assert_msg(strstr(log, "partitions assigned") != NULL, "no assignment logged");
	free(log);
	for (long long t0 = ms_now(); !connected && ms_now() - t0 < 10000;) {
		char *m = ws_recv_text(c, 10000);
		ck_assert_ptr_nonnull(m);
		connected = !strcmp(type_of(m), "connected");
		free(m);
	}
	ck_assert_msg(connected, "no \"connected\" after catching up");
	/* and it stays live */
	char more[1][UUID_STR_LEN];
	produce_events(topic, "early", more, 1);
	expect_ids(c, more, 1, NULL, 10000);
	ws_free(c);
	ck_assert_int_eq(proc_stop(&p, NULL), 0);
}
END_TEST

/* A running gateway loses its broker: /ready turns 503 (a socket opened then is
 * told "catching_up"), and 200 again once the broker is back; events flow to the
 * old socket and to the new one, which gets its "connected". */
START_TEST(broker_loss_turns_ready_503_and_back)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	ws_client *a = open_socket(g.port, "u1", 600, &first);
	ck_assert_str_eq(type_of(first), "connected");
	free(first);
	broker_guard(1);
	long long t0 = ms_now();
	broker_kill(1);
	ck_assert_int_eq(wait_ready(g.port, 503, 30000), 503);
	long long down_ms = ms_now() - t0;
	ws_client *b = open_socket(g.port, "u1", 600, &first);
	ck_assert_str_eq(type_of(first), "catching_up");
	free(first);
	t0 = ms_now();
	broker_start(1);
	ck_assert_int_eq(wait_ready(g.port, 200, 60000), 200);
	long long up_ms = ms_now() - t0;
	fprintf(stderr,
	        "# broker_loss: /ready 503 %lld ms after the kill, 200 %lld ms after the "
	        "restart began\n",
	        down_ms, up_ms);
	char ids[3][UUID_STR_LEN];
	produce_events(g.topic, "u1", ids, 3);
	expect_ids(a, ids, 3, NULL, 30000);
	int connected = 0;
	expect_ids(b, ids, 3, &connected, 30000);
	if (!connected) {
		char *m = ws_recv_text(b, 5000);
		ck_assert_ptr_nonnull(m);
		ck_assert_str_eq(type_of(m), "connected");
		free(m);
	}
	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "kafka_consumer_ready"), 1);
	free(body);
	ws_free(a);
	ws_free(b);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* A frozen broker (SIGSTOP: its sockets stay open, nothing answers): /ready turns
 * 503 within the stall window, and 200 again once it is thawed; the socket opened
 * before gets what is produced afterwards. */
START_TEST(frozen_broker_turns_ready_503_and_back)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	ws_client *a = open_socket(g.port, "u1", 600, &first);
	free(first);
	broker_guard(1);
	long long t0 = ms_now();
	broker_freeze(1);
	int st = wait_ready(g.port, 503, 30000);
	long long down_ms = ms_now() - t0;
	broker_thaw(1);
	ck_assert_int_eq(st, 503);
	t0 = ms_now();
	ck_assert_int_eq(wait_ready(g.port, 200, 60000), 200);
	fprintf(stderr,
	        "# frozen_broker: /ready 503 %lld ms after SIGSTOP, 200 %lld ms after "
	        "SIGCONT\n",
	        down_ms, ms_now() - t0);
	char ids[3][UUID_STR_LEN];
	produce_events(g.topic, "u1", ids, 3);
	expect_ids(a, ids, 3, NULL, 30000);
	ws_free(a);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* A token that expires 3 s after the upgrade: the socket is closed with 4001 "token
 * expired" at (or just before) its exp; a long-lived token's socket stays open. */
START_TEST(token_expiry_closes_4001)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	long long t0 = ms_now();
	ws_client *shortlived = open_socket(g.port, "u1", 3, &first);
	free(first);
	ws_client *longlived = open_socket(g.port, "u1", 600, &first);
	free(first);
	char *m = ws_recv_text(shortlived, 10000);
	long long took = ms_now() - t0;
	ck_assert_msg(m == NULL, "unexpected %s", m);
	ck_assert_int_eq(ws_close_code(shortlived), 4001);
	ck_assert_str_eq(ws_close_reason(shortlived), "token expired");
	/* exp is whole seconds: 2 to 3 s after minting, closed at most 250 ms early */
	ck_assert_msg(took >= 1700 && took <= 4500, "closed after %lld ms", took);
	fprintf(stderr, "# token_expiry: closed 4001 %lld ms after a 3 s token was minted\n", took);
	ck_assert_int_eq(ws_send_text(longlived, "{\"type\":\"ping\"}"), 0);
	m = ws_recv_text(longlived, 3000);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m, "{\"type\":\"pong\"}");
	free(m);
	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "ws_server_closes_total{reason=\"token_expired\"}"), 1);
	free(body);
	ws_free(shortlived);
	ws_free(longlived);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

static int status_with(int port, const char *auth, char **body)
{
	http_resp r;
	char h[256] = "";
	if (auth)
		snprintf(h, sizeof(h), "Authorization: %s\r\n", auth);
	int st = http_request(port, "GET", "/status", auth ? h : NULL, NULL, 0, 0, &r);
	*body = xstrdup(r.body ? r.body : "");
	http_resp_free(&r);
	return st;
}

static const char *error_code(const char *body)
{
	static char code[64];
	json_t *j = json_loads(body, 0, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", body);
	snprintf(code, sizeof(code), "%s",
	         json_string_value(json_object_get(json_object_get(j, "error"), "code")) ?: "");
	json_decref(j);
	return code;
}

/* /status is off by default (403 JSON); with STATUS_TOKEN it needs that bearer
 * token (401 JSON without or with another); /metrics has the counts, no user ids. */
START_TEST(status_needs_its_token)
{
	char topic[64], *body;
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ck_assert_int_eq(status_with(g.port, NULL, &body), 403);
	ck_assert_str_eq(error_code(body), "status_disabled");
	free(body);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);

	const char *extra[] = {"STATUS_TOKEN=the-status-token-0123456789", NULL};
	gw_start(&g, topic, extra);
	char *first;
	ws_client *c = open_socket(g.port, "secret-user-42", 600, &first);
	free(first);
	ck_assert_int_eq(status_with(g.port, NULL, &body), 401);
	ck_assert_str_eq(error_code(body), "unauthorized");
	ck_assert_ptr_null(strstr(body, "secret-user-42"));
	free(body);
	ck_assert_int_eq(status_with(g.port, "Bearer the-status-token-012345678", &body), 401);
	free(body);
	ck_assert_int_eq(status_with(g.port, "Bearer the-status-token-0123456789", &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"secret-user-42\":1"));
	free(body);
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "ws_active_users"), 1);
	ck_assert_double_eq(metric_in(body, "ws_connections_open"), 1);
	ck_assert_double_eq(metric_in(body, "http_status_refusals_total"), 2);
	ck_assert_ptr_null(strstr(body, "secret-user-42"));
	free(body);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);

	/* a STATUS_TOKEN too short to be one is refused at start */
	char bin[1024];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	const char *args[] = {NULL};
	const char *env[] = {"JWT_SECRET=" TEST_SECRET, "ALLOWED_ORIGINS=*", "STATUS_TOKEN=short",
	                     NULL};
	ck_assert_int_eq(proc_run(bin, args, env, NULL, 10000), 2);
	/* and so is a gateway without ALLOWED_ORIGINS */
	const char *env2[] = {"JWT_SECRET=" TEST_SECRET, "ALLOWED_ORIGINS=", NULL};
	ck_assert_int_eq(proc_run(bin, args, env2, NULL, 10000), 2);
}
END_TEST

static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* 300 malformed records: every one counted, the log gets a bounded number of
 * lines (a burst of 10, then about one a second), each saying how many it left
 * out; the suppressed ones are counted too; a good event still arrives. */
START_TEST(malformed_records_counted_log_limited)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	ws_client *c = open_socket(g.port, "u1", 600, &first);
	free(first);
	long long t0 = ms_now();
	enum { BAD = 300 };
	for (int i = 0; i < BAD; i++)
		produce(topic, "u1", "this is not json", 16);
	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	char ids[1][UUID_STR_LEN];
	memcpy(ids[0], id, sizeof(ids[0]));
	expect_ids(c, ids, 1, NULL, 30000);
	long long secs = (ms_now() - t0) / 1000 + 1;
	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	double rejected = metric_in(body, "kafka_events_rejected_total{reason=\"not_json\"}");
	double suppressed = metric_in(body, "kafka_reject_logs_suppressed_total");
	free(body);
	char *log = read_text_file(g.log);
	int lines = count_lines(log, "\"msg\":\"event rejected\"");
	free(log);
	fprintf(stderr, "# malformed: %d records in %lld s: %d log lines, %g suppressed\n", BAD,
	        secs, lines, suppressed);
	ck_assert_double_eq(rejected, BAD);
	ck_assert_int_ge(lines, 1);
	ck_assert_msg(lines <= 10 + secs + 1, "%d lines in %lld s", lines, secs);
	ck_assert_double_eq(suppressed, BAD - lines);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char e[512];
	ck_assert_msg(rd_kafka_conf_set(c, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK, "%s: %s", k, e);
}

/* Grows topic to total partitions (CreatePartitions) and waits for the result. */
static void add_partitions(const char *topic, int total)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "%s", e);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_NewPartitions_t *np =
	    rd_kafka_NewPartitions_new(topic, (size_t)total, e, sizeof(e));
	ck_assert_msg(np != NULL, "%s", e);
	rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "CreatePartitions: no answer");
	const rd_kafka_CreatePartitions_result_t *res = rd_kafka_event_CreatePartitions_result(ev);
	ck_assert_ptr_nonnull(res);
	size_t n;
	const rd_kafka_topic_result_t **tr = rd_kafka_CreatePartitions_result_topics(res, &n);
	ck_assert_msg(n == 1 && !rd_kafka_topic_result_error(tr[0]), "CreatePartitions: %s",
	              n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_NewPartitions_destroy(np);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/* Produces payload to one partition of topic and waits for its delivery. */
static void produce_to(const char *topic, int32_t partition, const char *key, const char *payload)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "%s", e);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	for (long long t0 = ms_now(); ms_now() - t0 < 30000; usleep(200000)) {
		err =
		    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
		                      RD_KAFKA_V_KEY(key, strlen(key)),
		                      RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
		                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
			break;
		rd_kafka_poll(rk, 0); /* the producer's metadata may not show it yet */
	}
	ck_assert_msg(!err, "produce to %s/%d: %s", topic, partition, rd_kafka_err2str(err));
	ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

/* Partitions added to the topic under a running gateway: the events produced to
 * the new one, from its very first, reach the socket within seconds. */
START_TEST(new_partition_read_from_its_start)
{
	char topic[64];
	unique_name(topic, sizeof(topic), "gw-ready");
	kafka_create_topic(topic, 1);
	gw_proc g;
	gw_start(&g, topic, NULL); /* KAFKA_METADATA_REFRESH_MS=1000 (the default) */
	char *first;
	ws_client *c = open_socket(g.port, "u1", 600, &first);
	ck_assert_str_eq(type_of(first), "connected");
	free(first);
	add_partitions(topic, 3);
	char ids[3][UUID_STR_LEN];
	long long t0 = ms_now();
	for (int i = 0; i < 3; i++) {
		char *ev = make_event("u1", ids[i], 0);
		produce_to(topic, 2, "u1", ev); /* the newest partition, offsets 0, 1, 2 */
		free(ev);
	}
	expect_ids(c, ids, 3, NULL, 15000);
	long long took = ms_now() - t0;
	fprintf(stderr,
	        "# new_partition: 3 events of a new partition delivered %lld ms after "
	        "the first was produced\n",
	        took);
	ck_assert_msg(took < 5000, "took %lld ms", took);
	char *log = read_text_file(g.log);
	ck_assert_ptr_nonnull(strstr(log, "new partitions: reading them from their start"));
	free(log);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* Deletes the records of topic/partition before offset (RD_KAFKA_OFFSET_END: all). */
static void delete_records(const char *topic, int32_t partition, int64_t before)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "%s", e);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = before;
	rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_DeleteRecords(rk, &d, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "DeleteRecords: no answer");
	const rd_kafka_DeleteRecords_result_t *res = rd_kafka_event_DeleteRecords_result(ev);
	ck_assert_msg(res != NULL && !rd_kafka_event_error(ev), "DeleteRecords: %s",
	              rd_kafka_event_error_string(ev));
	const rd_kafka_topic_partition_list_t *r = rd_kafka_DeleteRecords_result_offsets(res);
	ck_assert_msg(r->cnt == 1 && !r->elems[0].err, "DeleteRecords: %s",
	              r->cnt ? rd_kafka_err2str(r->elems[0].err) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_DeleteRecords_destroy(d);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

/* Retention removes events the gateway has not read yet (it is stopped while they
 * are produced and deleted): its position falls below the log start, the offset is
 * out of range, and the logged decision is to resume at the log start, at once:
 * the next event reaches the socket. */
START_TEST(offset_out_of_range_resumes_at_log_start)
{
	char topic[64];
	unique_name(topic, sizeof(topic), "gw-ready");
	kafka_create_topic(topic, 1);
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	ws_client *c = open_socket(g.port, "u1", 600, &first);
	free(first);
	char ids[1][UUID_STR_LEN];
	produce_events(topic, "u1", ids, 1);
	expect_ids(c, ids, 1, NULL, 10000);

	ck_assert_int_eq(kill(g.pid, SIGSTOP), 0);
	usleep(1000000); /* the fetch in flight comes back empty and waits unread */
	char gone[5][UUID_STR_LEN];
	produce_events(topic, "u1", gone, 5);
	delete_records(topic, 0, RD_KAFKA_OFFSET_END);
	ck_assert_int_eq(kill(g.pid, SIGCONT), 0);
	produce_events(topic, "u1", ids, 1);
	expect_ids(c, ids, 1, NULL, 15000);

	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "kafka_offset_resets_total{reason=\"retention\"}"), 1);
	free(body);
	char *log = read_text_file(g.log);
	ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"offset out of range: resuming\""));
	ck_assert_ptr_nonnull(strstr(log, "resume at the log start"));
	free(log);
	ck_assert_int_eq(wait_ready(g.port, 200, 10000), 200); /* fetching it again */
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* Deletes topic and waits until its metadata says it is gone. */
static void delete_topic(const char *topic)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "%s", e);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteTopic_t *d = rd_kafka_DeleteTopic_new(topic);
	rd_kafka_DeleteTopics(rk, &d, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	ck_assert_msg(ev != NULL, "DeleteTopics: no answer");
	size_t n;
	const rd_kafka_topic_result_t **tr =
	    rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
	ck_assert_msg(n == 1 && !rd_kafka_topic_result_error(tr[0]), "DeleteTopics: %s",
	              n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_DeleteTopic_destroy(d);
	rd_kafka_queue_destroy(q);
	for (long long t0 = ms_now(); ms_now() - t0 < 30000; usleep(200000)) {
		const rd_kafka_metadata_t *md = NULL;
		rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
		rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t, &md, 5000);
		rd_kafka_topic_destroy(t);
		int gone = !err && md->topic_cnt == 1 && md->topics[0].err;
		if (md)
			rd_kafka_metadata_destroy(md);
		if (gone)
			break;
	}
	rd_kafka_destroy(rk);
}

/* The topic is deleted and created again under a running gateway (a log shorter
 * than its position, as after an unclean leader election): the offset is out of
 * range past the end, and the logged decision resumes at the last event's time, so
 * the events of the new log reach the socket. */
START_TEST(offset_out_of_range_after_the_topic_was_recreated)
{
	char topic[64];
	unique_name(topic, sizeof(topic), "gw-ready");
	kafka_create_topic(topic, 1);
	gw_proc g;
	gw_start(&g, topic, NULL);
	char *first;
	ws_client *c = open_socket(g.port, "u1", 600, &first);
	free(first);
	char ids[3][UUID_STR_LEN];
	produce_events(topic, "u1", ids, 3);
	expect_ids(c, ids, 3, NULL, 10000);
	delete_topic(topic);
	kafka_create_topic(topic, 1);
	produce_events(topic, "u1", ids, 1);
	expect_ids(c, ids, 1, NULL, 30000);
	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "kafka_offset_resets_total{reason=\"truncated\"}"), 1);
	free(body);
	char *log = read_text_file(g.log);
	ck_assert_ptr_nonnull(strstr(log, "log truncated or recreated"));
	free(log);
	ck_assert_int_eq(wait_ready(g.port, 200, 10000), 200);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

Suite *ready_suite(void)
{
	Suite *s = suite_create("ready");
	TCase *tc = tcase_create("integration");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, started_before_the_broker);
	tcase_add_test(tc, broker_loss_turns_ready_503_and_back);
	tcase_add_test(tc, frozen_broker_turns_ready_503_and_back);
	tcase_add_test(tc, token_expiry_closes_4001);
	tcase_add_test(tc, status_needs_its_token);
	tcase_add_test(tc, malformed_records_counted_log_limited);
	tcase_add_test(tc, new_partition_read_from_its_start);
	tcase_add_test(tc, offset_out_of_range_resumes_at_log_start);
	tcase_add_test(tc, offset_out_of_range_after_the_topic_was_recreated);
	suite_add_tcase(s, tc);
	return s;
}
