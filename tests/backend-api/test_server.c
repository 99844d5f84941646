/* The service around the API (backend-api/src/server.c): /healthz, /readyz with
 * the devbroker or the database gone, /metrics, dev login, /config.json, static
 * files, CORS and shutdown. */
#include "harness.h"
#include "suites.h"

#include "../support/runner.h"

#include "common/auth.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int get(const backend *b, const char *path, json_t **out, http_resp *r)
{
	return api(b, NULL, "GET", path, NULL, NULL, out, r);
}

static json_t *wait_ready(const backend *b, int want, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int st = -1;
	for (;;) {
		json_t *j = NULL;
		st = get(b, "/readyz", &j, NULL);
		if (st == want)
			return j ? j : json_object();
		json_decref(j);
		ck_assert_msg(mono_ms() < deadline, "/readyz stayed %d, want %d", st, want);
		usleep(100000);
	}
}

START_TEST(health_and_metrics)
{
	backend b;
	be_start(&b, NULL);
	json_t *j = NULL;
	ck_assert_int_eq(get(&b, "/healthz", &j, NULL), 200);
	ck_assert_str_eq(jstr(j, "status"), "ok");
	json_decref(j);
	ck_assert_int_eq(get(&b, "/readyz", &j, NULL), 200);
	json_decref(j);
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&b, u, "m");
	ck_assert_int_eq(api(&b, u, "GET", task_path(jstr(t, "id")), NULL, NULL, NULL, NULL), 200);
	ck_assert_int_eq(api(&b, u, "GET", task_path(jstr(t, "id")), NULL, NULL, NULL, NULL), 200);
	char other[UUID_STR_LEN];
	uuid_new(other);
	ck_assert_int_eq(api(&b, u, "GET", task_path(other), NULL, NULL, NULL, NULL), 404);
	wait_published(&b, u, 30000);
	http_resp r;
	ck_assert_int_eq(get(&b, "/metrics", NULL, &r), 200);
	char ct[128];
	ck_assert(http_resp_header(&r, "Content-Type", ct, sizeof(ct)));
	ck_assert_ptr_nonnull(strstr(ct, "text/plain"));
	const char *m = r.body;
	/* requests by route pattern (never the raw id), method and status */
	ck_assert_ptr_null(strstr(m, jstr(t, "id")));
	ck_assert_ptr_null(strstr(m, other));
	const char *series[] = {"http_requests_total",
	                        "http_request_duration_seconds_bucket",
	                        "http_request_duration_seconds_count",
	                        "outbox_backlog",
	                        "outbox_published_total",
	                        "kafka_publish_errors_total",
	                        "outbox_slot_lag_bytes",
	                        "outbox_dead_letters_total",
	                        "outbox_relay_resets_total",
	                        "outbox_leader",
	                        "outbox_commit_to_ack_seconds_bucket",
	                        "db_pool_size",
	                        "db_pool_in_use",
	                        "db_errors_total"};
	for (size_t i = 0; i < ARRAY_LEN(series); i++)
		ck_assert_msg(strstr(m, series[i]), "/metrics lacks %s:\n%s", series[i], m);
	ck_assert_msg(strstr(m, "status=\"201\""), "no status=\"201\" series");
	ck_assert_msg(strstr(m, "status=\"404\""), "no status=\"404\" series");
	ck_assert_msg(strstr(m, "method=\"POST\""), "no method label");
	ck_assert_msg(strstr(m, "route=\"/api/v1/tasks\""), "no route label for /api/v1/tasks");
	ck_assert_msg(strstr(m, "route=\"/api/v1/tasks/{id}\""), "no route pattern for a task id");
	ck_assert_msg(metric_in(m, "outbox_backlog") == 0, "outbox_backlog %g after publishing",
	              metric_in(m, "outbox_backlog"));
	ck_assert_msg(metric_in(m, "outbox_published_total") >= 1, "outbox_published_total %g",
	              metric_in(m, "outbox_published_total"));
	ck_assert_msg(metric_in(m, "db_pool_size") == 4, "db_pool_size %g (DB_POOL_SIZE=4)",
	              metric_in(m, "db_pool_size"));
	http_resp_free(&r);
	json_decref(t);
	be_stop(&b);
}
END_TEST

START_TEST(readyz_ignores_the_broker)
{
	/* Readiness is "can accept writes": with Kafka down the process stays ready
	 * (the outbox absorbs the outage) and says Kafka is down. */
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	broker_down();
	int64_t t0 = mono_ms();
	char *text = NULL;
	while (mono_ms() - t0 < 15000) {
		json_t *j = NULL;
		ck_assert_int_eq(get(&b, "/readyz", &j, NULL), 200);
		free(text);
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (strstr(text, "\"kafka\":\"down\""))
			break;
		usleep(200000);
	}
	ck_assert_msg(strstr(text, "\"kafka\":\"down\""), "readyz body with Kafka down: %s", text);
	free(text);
	/* writes go on while Kafka is away */
	json_decref(create_task(&b, u, "queued"));
	ck_assert_int_eq(get(&b, "/healthz", NULL, NULL), 200);
	/* the gauge may be refreshed periodically: give it a few seconds */
	double backlog = -1;
	for (int64_t end = mono_ms() + 5000; mono_ms() < end && backlog < 1; usleep(200000)) {
		http_resp r;
		ck_assert_int_eq(get(&b, "/metrics", NULL, &r), 200);
		backlog = metric_in(r.body, "outbox_backlog");
		http_resp_free(&r);
	}
	ck_assert_msg(backlog >= 1, "outbox_backlog %g while down", backlog);
	broker_up();
	wait_published(&b, u, 30000);
	be_stop(&b);
}
END_TEST

START_TEST(database_gone_and_back)
{
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&b, u, "before");
	/* The harness's cluster is shared, so the database is taken away rather than
	 * the server: no new connections, existing ones terminated. */
	const char *dbname = strrchr(b.db, '/') + 1;
	const char *admin = test_env("PG_ADMIN_URL");
	const char *p[] = {dbname};
	char sql[256];
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", dbname);
	PQclear(pgtest_exec(admin, sql, 0, NULL));
	PQclear(pgtest_exec(
	    admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", 1,
	    p));
	json_t *j = wait_ready(&b, 503, 15000);
	char *text = json_dumps(j, JSON_COMPACT);
	ck_assert_msg(strstr(text, "database") || strstr(text, "db"),
	              "503 body does not name the database: %s", text);
	free(text);
	json_decref(j);
	int64_t t0 = mono_ms();
	http_resp r;
	json_t *e = NULL;
	ck_assert_int_eq(
	    api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"during\"}", NULL, &e, &r), 503);
	char ra[32];
	ck_assert_msg(http_resp_header(&r, "Retry-After", ra, sizeof(ra)),
	              "503 without Retry-After");
	http_resp_free(&r);
	expect_error(e, "unavailable", NULL);
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/tasks", NULL, NULL, &e, NULL), 503);
	expect_error(e, "unavailable", NULL);
	ck_assert_int_eq(api(&b, u, "GET", task_path(jstr(t, "id")), NULL, NULL, &e, NULL), 503);
	expect_error(e, "unavailable", NULL);
	ck_assert_msg(mono_ms() - t0 < 15000, "503s took %lld ms", (long long)(mono_ms() - t0));
	ck_assert_int_eq(get(&b, "/healthz", NULL, NULL), 200);
	/* back: the same process recovers */
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname);
	PQclear(pgtest_exec(admin, sql, 0, NULL));
	json_decref(wait_ready(&b, 200, 30000));
	json_decref(create_task(&b, u, "after"));
	json_t *l = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 2); /* nothing partial */
	ck_assert_int_eq(jint(l, "seq"), 2);
	json_decref(l);
	wait_published(&b, u, 30000);
	size_t count;
	json_t **ev = topic_events(&b, u, 2, 30000, 500, &count);
	ck_assert_int_eq(count, 2);
	ck_assert_int_eq(jint(ev[1], "seq"), 2);
	free_events(ev, count);
	ck_assert_int_eq(get(&b, "/metrics", NULL, &r), 200);
	ck_assert_msg(metric_in(r.body, "db_errors_total") >= 1, "db_errors_total %g",
	              metric_in(r.body, "db_errors_total"));
	http_resp_free(&r);
	json_decref(t);
	be_stop(&b);
}
END_TEST

/* POST /api/v1/ws-ticket: a ticket for the caller's session that the gateway
 * takes (common/auth.h), valid 30 s, never past the session, never usable as an
 * API token; not without a session. */
START_TEST(ws_ticket)
{
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	json_t *j = NULL;
	http_resp r;
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/ws-ticket", NULL, NULL, &j, &r), 200);
	char v[128];
	ck_assert(http_resp_header(&r, "Cache-Control", v, sizeof(v)));
	ck_assert_str_eq(v, "no-store");
	http_resp_free(&r);
	ck_assert_int_eq(jint(j, "expires_in"), AUTH_TICKET_TTL_S);
	auth_ticket tk;
	ck_assert_int_eq(auth_verify_ticket(TEST_SECRET, jstr(j, "ticket"), &tk), AUTH_OK);
	ck_assert_str_eq(tk.user, u);
	long left = (long)(tk.exp_s - time(NULL));
	ck_assert_msg(left > AUTH_TICKET_TTL_S - 5 && left <= AUTH_TICKET_TTL_S, "%ld s", left);
	/* the socket's end is the session token's exp (harness tokens live 600 s) */
	long sess = (long)(tk.session_exp_s - time(NULL));
	ck_assert_msg(sess > 500 && sess <= 600, "session ends in %ld s", sess);
	/* a ticket is no API token */
	char h[4096];
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", jstr(j, "ticket"));
	json_t *e = NULL;
	ck_assert_int_eq(api(&b, NULL, "GET", "/api/v1/tasks", NULL, h, &e, NULL), 401);
	expect_error(e, "unauthorized", NULL);
	ck_assert_int_eq(api(&b, NULL, "POST", "/api/v1/ws-ticket", NULL, h, &e, NULL), 401);
	expect_error(e, "unauthorized", NULL);
	json_decref(j);
	ck_assert_int_eq(api(&b, NULL, "POST", "/api/v1/ws-ticket", NULL, NULL, &e, NULL), 401);
	expect_error(e, "unauthorized", NULL);
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/ws-ticket", NULL, NULL, &e, NULL), 405);
	expect_error(e, "method_not_allowed", NULL);
	be_stop(&b);
}
END_TEST

START_TEST(dev_login_and_config)
{
	backend b;
	const char *env[] = {"DEV_LOGIN=1", "PUBLIC_GATEWAY_URL=ws://127.0.0.1:9/ws", NULL};
	be_start(&b, env);
	json_t *j = NULL;
	ck_assert_int_eq(
	    api(&b, NULL, "POST", "/api/v1/dev/login", "{\"user\":\"alice\"}", NULL, &j, NULL),
	    200);
	ck_assert_str_eq(jstr(j, "user_id"), "alice");
	const char *tok = jstr(j, "token");
	ck_assert_ptr_nonnull(tok);
	char user[USER_ID_MAX + 1];
	ck_assert_int_eq(auth_verify(TEST_SECRET, tok, user, sizeof(user)), AUTH_OK);
	ck_assert_str_eq(user, "alice");
	jwt_t *jw = NULL;
	ck_assert_int_eq(
	    jwt_decode(&jw, tok, (const unsigned char *)TEST_SECRET, (int)strlen(TEST_SECRET)), 0);
	long ttl = jwt_get_grant_int(jw, "exp") - (long)time(NULL);
	jwt_free(jw);
	ck_assert_msg(ttl > 86400 - 120 && ttl <= 86400, "dev token lives %ld s, not 24 h", ttl);
	/* the token works on the API */
	char h[4096];
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
	json_t *l = NULL;
	ck_assert_int_eq(api(&b, NULL, "GET", "/api/v1/tasks", NULL, h, &l, NULL), 200);
	json_decref(l);
	json_decref(j);
	const char *bad[] = {"{\"user\":\"bad user\"}", "{\"user\":\"\"}", "{\"user\":5}", "{}"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int st = api(&b, NULL, "POST", "/api/v1/dev/login", bad[i], NULL, &j, NULL);
		ck_assert_msg(st == 400 || st == 422, "dev login %s: %d", bad[i], st);
		ck_assert(json_is_object(json_object_get(j, "error")));
		json_decref(j);
	}
	ck_assert_int_eq(get(&b, "/config.json", &j, NULL), 200);
	ck_assert_str_eq(jstr(j, "gateway_url"), "ws://127.0.0.1:9/ws");
	ck_assert(json_is_true(json_object_get(j, "dev_login")));
	json_decref(j);
	be_stop(&b);

	/* without DEV_LOGIN the route does not exist */
	be_start(&b, NULL);
	ck_assert_int_eq(
	    api(&b, NULL, "POST", "/api/v1/dev/login", "{\"user\":\"alice\"}", NULL, &j, NULL),
	    404);
	expect_error(j, "not_found", NULL);
	ck_assert_int_eq(get(&b, "/config.json", &j, NULL), 200);
	ck_assert(json_is_false(json_object_get(j, "dev_login")));
	json_decref(j);
	be_stop(&b);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(static_files)
{
	char dir[512], sub[600];
	const char *run = getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp";
	snprintf(dir, sizeof(dir), "%s/static-%d", run, (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	struct {
		const char *name, *text, *type;
	} files[] = {
	    {"index.html", "<!doctype html><p>index</p>", "text/html"},
	    {"app.js", "console.log('app')", "text/javascript"},
	    {"style.css", "p{}", "text/css"},
	    {"data.json", "{\"a\":1}", "application/json"},
	    {"logo.png", "PNGDATA", "image/png"},
	    {"logo.svg", "<svg/>", "image/svg+xml"},
	    {"favicon.ico", "ICO", "image/"},
	    {"app.webmanifest", "{}", "application/manifest+json"},
	};
	for (size_t i = 0; i < ARRAY_LEN(files); i++)
		write_file(dir, files[i].name, files[i].text);
	write_file(dir, ".secret", "dotfile");
	write_file(sub, "inner.js", "inner");
	char env_dir[600];
	snprintf(env_dir, sizeof(env_dir), "STATIC_DIR=%s", dir);
	const char *env[] = {env_dir, NULL};
	backend b;
	be_start(&b, env);
	http_resp r;
	char v[256];
	ck_assert_int_eq(get(&b, "/", NULL, &r), 200);
	ck_assert_str_eq(r.body, files[0].text);
	ck_assert(http_resp_header(&r, "Content-Type", v, sizeof(v)));
	ck_assert_ptr_nonnull(strstr(v, "text/html"));
	http_resp_free(&r);
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/%s", files[i].name);
		ck_assert_int_eq(get(&b, path, NULL, &r), 200);
		ck_assert_str_eq(r.body, files[i].text);
		ck_assert(http_resp_header(&r, "Content-Type", v, sizeof(v)));
		ck_assert_msg(strstr(v, files[i].type), "%s served as %s", files[i].name, v);
		ck_assert(http_resp_header(&r, "Cache-Control", v, sizeof(v)));
		ck_assert_msg(strstr(v, "no-cache"), "%s Cache-Control: %s", files[i].name, v);
		http_resp_free(&r);
	}
	const char *denied[] = {"/.secret",
	                        "/sub/inner.js",
	                        "/sub",
	                        "/sub/",
	                        "/../backend-api.log",
	                        "/%2e%2e/%2e%2e/etc/passwd",
	                        "/..%2f..%2fetc%2fpasswd",
	                        "/../../../../etc/passwd",
	                        "/missing.js",
	                        "/%2esecret"};
	for (size_t i = 0; i < ARRAY_LEN(denied); i++) {
		int st = get(&b, denied[i], NULL, &r);
		ck_assert_msg(st >= 400 && st < 500, "%s: %d", denied[i], st);
		ck_assert_msg(!strstr(r.body, "root:") && !strstr(r.body, "dotfile") &&
		                  !strstr(r.body, "inner"),
		              "%s leaked %s", denied[i], r.body);
		http_resp_free(&r);
	}
	/* an unknown file is a JSON 404 */
	json_t *e = NULL;
	ck_assert_int_eq(get(&b, "/missing.js", &e, NULL), 404);
	expect_error(e, "not_found", NULL);
	be_stop(&b);
}
END_TEST

START_TEST(cors)
{
	backend b;
	const char *env[] = {"ALLOWED_ORIGINS=http://app.example,http://other.example", NULL};
	be_start(&b, env);
	char u[64];
	new_user(u, sizeof(u));
	http_resp r;
	char v[512];
	int st = api(&b, NULL, "OPTIONS", "/api/v1/tasks", NULL,
	             "Origin: http://app.example\r\nAccess-Control-Request-Method: POST\r\n"
	             "Access-Control-Request-Headers: authorization, content-type, if-match, "
	             "x-client-id\r\n",
	             NULL, &r);
	ck_assert_msg(st == 200 || st == 204, "preflight: %d", st);
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
	ck_assert_str_eq(v, "http://app.example");
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Headers", v, sizeof(v)));
	const char *hs[] = {"authorization", "content-type", "if-match", "idempotency-key",
	                    "x-client-id"};
	for (size_t i = 0; i < ARRAY_LEN(hs); i++)
		ck_assert_msg(strcasestr(v, hs[i]), "Allow-Headers %s lacks %s", v, hs[i]);
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
	ck_assert_msg(strstr(v, "POST"), "Allow-Methods %s", v);
	http_resp_free(&r);
	/* a task's preflight allows what the browser client sends to it */
	char id[UUID_STR_LEN], path[128];
	uuid_new(id);
	snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
	st = api(&b, NULL, "OPTIONS", path, NULL,
	         "Origin: http://app.example\r\nAccess-Control-Request-Method: PATCH\r\n"
	         "Access-Control-Request-Headers: authorization, content-type, if-match\r\n",
	         NULL, &r);
	ck_assert_msg(st == 200 || st == 204, "preflight: %d", st);
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
	ck_assert_str_eq(v, "http://app.example");
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
	ck_assert_msg(strstr(v, "PATCH") && strstr(v, "DELETE"), "Allow-Methods %s", v);
	http_resp_free(&r);
	st = api(&b, NULL, "OPTIONS", "/api/v1/tasks/order", NULL,
	         "Origin: http://app.example\r\nAccess-Control-Request-Method: PUT\r\n", NULL, &r);
	ck_assert_msg(st == 200 || st == 204, "preflight: %d", st);
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
	ck_assert_msg(strstr(v, "PUT"), "Allow-Methods %s", v);
	http_resp_free(&r);
	/* an allowed origin's request: the header and ETag exposed */
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"c\"}",
	                     "Origin: http://other.example\r\n", NULL, &r),
	                 201);
	ck_assert(http_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
	ck_assert_str_eq(v, "http://other.example");
	ck_assert(http_resp_header(&r, "Access-Control-Expose-Headers", v, sizeof(v)));
	ck_assert_msg(strcasestr(v, "etag"), "Expose-Headers %s", v);
	ck_assert_msg(strcasestr(v, "idempotent-replayed"), "Expose-Headers %s", v);
	http_resp_free(&r);
	/* another origin gets no CORS header */
	st =
	    api(&b, NULL, "OPTIONS", "/api/v1/tasks", NULL,
	        "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n", NULL, &r);
	ck_assert_msg(!http_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
	              "evil origin allowed: %s (status %d)", v, st);
	http_resp_free(&r);
	api(&b, u, "GET", "/api/v1/tasks", NULL, "Origin: http://evil.example\r\n", NULL, &r);
	ck_assert_msg(!http_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
	              "evil origin allowed: %s", v);
	http_resp_free(&r);
	be_stop(&b);
}
END_TEST

START_TEST(sigterm_exits_cleanly)
{
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	for (int i = 0; i < 20; i++)
		json_decref(create_task(&b, u, "t"));
	long ms = 0;
	int rc = proc_stop(&b.p, &ms);
	ck_assert_msg(rc == 0, "exit %d (log %s)", rc, b.p.log);
	ck_assert_msg(ms < 12000, "stop took %ld ms", ms);
	ck_assert_msg(be_log_clean(&b), "sanitizer report in %s", b.p.log);
	/* what was committed before SIGTERM is on the topic */
	size_t count;
	json_t **ev = topic_events(&b, u, 20, 30000, 0, &count);
	ck_assert_uint_ge(count, 20);
	free_events(ev, count);
	/* the log is one JSON object per line */
	char *log = read_text_file(b.p.log);
	size_t lines = 0;
	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *j = json_loads(line, 0, NULL);
		ck_assert_msg(json_is_object(j), "log line is not JSON: %s", line);
		json_decref(j);
		lines++;
	}
	ck_assert_uint_gt(lines, 0);
	free(log);
}
END_TEST

/* Sends len raw bytes on a new connection (then, when half_close, shuts the
 * write side) and returns the status of the answer, 0 when the server closed
 * without one, -1 when nothing came within 10 s. */
static int raw(int port, const char *data, size_t len, int half_close)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	size_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	char buf[4096];
	size_t got = 0;
	int64_t deadline = mono_ms() + 10000;
	int st = -1;
	while (mono_ms() < deadline && got < sizeof(buf) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0) {
			st = 0;
			break;
		}
		got += (size_t)r;
		buf[got] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	close(fd);
	if (got) {
		buf[got] = 0;
		if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1)
			st = 0;
	}
	return st;
}

START_TEST(hostile_input_does_not_crash)
{
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	char *tok = token_for(u, 600);
	char auth[2048];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tok);
	free(tok);

	/* broken HTTP */
	const char *junk[] = {
	    "GARBAGE\r\n\r\n",
	    "GET / HTTP/9.9\r\n\r\n",
	    "GET\r\n\r\n",
	    "POST /api/v1/tasks HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
	    "POST /api/v1/tasks HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "POST /api/v1/tasks HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"ti",
	    "POST /api/v1/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "GET /api/v1/tasks HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n",
	    "GET /api/v1/tasks HTTP/1.1\r\nAuthorization: Bearer a.b.c.d.e\r\n\r\n",
	    "GET /api/v1/events?since=0&since=1&limit=%00 HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(junk); i++)
		raw(b.p.port, junk[i], strlen(junk[i]), 1);
	char noise[8192];
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (char)(rand() & 0xff);
	raw(b.p.port, noise, sizeof(noise), 1);
	/* an oversized header line and an oversized token */
	size_t hl = 70000;
	char *big = xmalloc(hl + 256);
	int n = snprintf(big, 256, "GET /api/v1/tasks HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'h', hl);
	memcpy(big + n + hl, "\r\n\r\n", 5);
	raw(b.p.port, big, (size_t)n + hl + 4, 1);
	memset(big, 'A', 5000);
	memcpy(big, "Authorization: Bearer ", 22);
	memcpy(big + 5000, "\r\n", 3);
	json_t *e = NULL;
	ck_assert_int_eq(api(&b, NULL, "GET", "/api/v1/tasks", NULL, big, &e, NULL), 401);
	expect_error(e, "unauthorized", NULL);

	/* a JWT whose header is deeply nested JSON (the largest header auth reads) */
	char nested[800], *hdr, line[1400];
	memset(nested, '[', 390);
	memset(nested + 390, ']', 390);
	nested[780] = 0;
	hdr = b64url(nested);
	snprintf(line, sizeof(line), "Authorization: Bearer %s.e30.x\r\n", hdr);
	free(hdr);
	ck_assert_int_eq(api(&b, NULL, "GET", "/api/v1/tasks", NULL, line, &e, NULL), 401);
	expect_error(e, "unauthorized", NULL);

	/* hostile JSON */
	char *deep = xmalloc(60000);
	memset(deep, '[', 20000);
	memset(deep + 20000, ']', 20000);
	deep[40000] = 0;
	int st = api(&b, u, "POST", "/api/v1/tasks", deep, NULL, &e, NULL);
	ck_assert_msg(st == 400 || st == 422, "deeply nested JSON: %d", st);
	json_decref(e);
	st =
	    api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"nul\\u0000inside\"}", NULL, &e, NULL);
	ck_assert_msg(st == 400 || st == 422, "NUL in a title: %d", st);
	json_decref(e);
	st = api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"\\ud800\"}", NULL, &e, NULL);
	ck_assert_msg(st == 400 || st == 422, "lone surrogate: %d", st);
	json_decref(e);
	st = api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"x\",\"title\":\"y\"}", NULL, &e,
	         NULL);
	ck_assert_msg(st == 201 || st == 400 || st == 422, "duplicate key: %d", st);
	json_decref(e);
	free(deep);
	free(big);

	/* odd but valid text is stored verbatim */
	const char *odd[] = {"'; DROP TABLE tasks; --", "\xf0\x9f\x98\x80 emoji", "%s%n%x",
	                     "back\\slash \"quote\"", "$1 $2"};
	for (size_t i = 0; i < ARRAY_LEN(odd); i++) {
		json_t *t = create_task(&b, u, odd[i]);
		json_t *g = NULL;
		ck_assert_int_eq(api(&b, u, "GET", task_path(jstr(t, "id")), NULL, NULL, &g, NULL),
		                 200);
		ck_assert_str_eq(jstr(g, "title"), odd[i]);
		json_decref(g);
		json_decref(t);
	}
	size_t writes = ARRAY_LEN(odd) + (st == 201);
	json_t *l = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), writes);
	ck_assert_int_eq(jint(l, "seq"), (long long)writes);
	json_decref(l);
	ck_assert_int_eq(get(&b, "/healthz", NULL, NULL), 200);
	be_stop(&b);
}
END_TEST

/* Reads one answer with a Content-Length body from fd; returns its status. */
static int read_one(int fd)
{
	char buf[8192];
	size_t got = 0;
	int64_t deadline = mono_ms() + 10000;
	while (mono_ms() < deadline && got < sizeof(buf) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = 0;
		char *end = strstr(buf, "\r\n\r\n");
		char *cl = strcasestr(buf, "Content-Length:");
		if (end && cl && (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10) <= got) {
			int st = -1;
			sscanf(buf, "HTTP/1.%*d %d", &st);
			return st;
		}
	}
	return -1;
}

START_TEST(keep_alive)
{
	/* Load clients (bench/api_load.c) reuse connections: several requests on one
	 * connection are all answered. */
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	char *tok = token_for(u, 600);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b.p.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	for (int i = 0; i < 5; i++) {
		char req[2048];
		int n = snprintf(
		    req, sizeof(req),
		    "POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		    "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n"
		    "{\"title\":\"k\"}",
		    tok);
		ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
		ck_assert_int_eq(read_one(fd), 201);
		n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
		ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
		ck_assert_int_eq(read_one(fd), 200);
	}
	close(fd);
	free(tok);
	json_t *l = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 5);
	json_decref(l);
	be_stop(&b);
}
END_TEST

Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("service");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, health_and_metrics);
	tcase_add_test(tc, readyz_ignores_the_broker);
	tcase_add_test(tc, database_gone_and_back);
	tcase_add_test(tc, dev_login_and_config);
	tcase_add_test(tc, ws_ticket);
	tcase_add_test(tc, static_files);
	tcase_add_test(tc, cors);
	tcase_add_test(tc, keep_alive);
	tcase_add_test(tc, hostile_input_does_not_crash);
	tcase_add_test(tc, sigterm_exits_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
