#include "server.h"

#include "common/auth.h"
#include "common/http.h"
#include "common/log.h"
#include "lists.h"
#include "task_store.h"

#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_BYTES       (4 * 1024 * 1024)
#define KAFKA_READY_TIMEOUT_MS 250
#define READY_TIMEOUT_MS       1000

struct server {
	const api_ctx *ctx;
	struct mg_context *mg;
};

typedef int (*server_fn)(server *s, api_req *r);

/* A route: method + pattern. A pattern ending in "/{id}" takes one path segment. */
typedef struct route {
	const char *method;
	const char *pattern;
	api_fn api;   /* authenticated /api handler, or NULL */
	server_fn fn; /* public handler, or NULL */
	int dev_only; /* exists only with DEV_LOGIN */
} route;

static int h_healthz(server *s, api_req *r);
static int h_readyz(server *s, api_req *r);
static int h_metrics(server *s, api_req *r);
static int h_config(server *s, api_req *r);
static int h_dev_login(server *s, api_req *r);

static const route routes[] = {
    {"GET", "/api/v1/tasks", tasks_list, NULL, 0},
    {"POST", "/api/v1/tasks", tasks_create, NULL, 0},
    {"PUT", "/api/v1/tasks/order", tasks_reorder, NULL, 0},
    {"GET", "/api/v1/tasks/{id}", tasks_get, NULL, 0},
    {"PATCH", "/api/v1/tasks/{id}", tasks_patch, NULL, 0},
    {"DELETE", "/api/v1/tasks/{id}", tasks_delete, NULL, 0},
    {"POST", "/api/v1/tasks/{id}/move", tasks_move, NULL, 0},
    {"GET", "/api/v1/events", tasks_events, NULL, 0},
    {"GET", "/api/v1/lists", lists_index, NULL, 0},
    {"POST", "/api/v1/lists", lists_create, NULL, 0},
    /* {id}* takes the rest of the path; lists_route splits it and checks the method */
    {"GET", "/api/v1/lists/{id}*", lists_route, NULL, 0},
    {"POST", "/api/v1/lists/{id}*", lists_route, NULL, 0},
    {"PATCH", "/api/v1/lists/{id}*", lists_route, NULL, 0},
    {"DELETE", "/api/v1/lists/{id}*", lists_route, NULL, 0},
    {"POST", "/api/v1/ws-ticket", tasks_ws_ticket, NULL, 0},
    {"POST", "/api/v1/dev/login", NULL, h_dev_login, 1},
    {"GET", "/healthz", NULL, h_healthz, 0},
    {"GET", "/readyz", NULL, h_readyz, 0},
    {"GET", "/metrics", NULL, h_metrics, 0},
    {"GET", "/config.json", NULL, h_config, 0},
};

/* 1 when path matches pattern; *id points at the {id} segment (inside path). */
static int match(const char *pattern, const char *path, const char **id)
{
	*id = NULL;
	const char *brace = strstr(pattern, "{id}");
	if (!brace)
		return strcmp(pattern, path) == 0;
	size_t pre = (size_t)(brace - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return 0;
	const char *seg = path + pre;
	/* "{id}*": the rest of the path, whatever it holds. */
	if (strcmp(brace + strlen("{id}"), "*") == 0) {
		*id = seg;
		return *seg != '\0';
	}
	/* A suffix after {id} ("/move"): the segment runs to where it starts, and the
	 * handler gets "<id>/move" as its id. */
	const char *suffix = brace + strlen("{id}");
	size_t sl = strlen(suffix), pl = strlen(seg);
	if (!*seg || (sl && (pl <= sl || strcmp(seg + pl - sl, suffix) != 0)))
		return 0;
	const char *slash = strchr(seg, '/');
	if (slash && (!sl || slash != seg + pl - sl))
		return 0;
	*id = seg;
	return 1;
}

/* Finds the routes for path: exact patterns win over {id} ones. Fills allow with
 * the methods of the chosen pattern; returns the route for method or NULL. *pattern
 * is the chosen pattern (NULL when no pattern matches). */
static const route *find_route(const server *s, const char *method, const char *path,
                               const char **id, const char **pattern, char *allow, size_t alen)
{
	const route *hit = NULL;
	*pattern = NULL;
	allow[0] = '\0';
	for (int pass = 0; pass < 2 && !*pattern; pass++) {
		for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
			const route *rt = &routes[i];
			if (rt->dev_only && !s->ctx->cfg->dev_login)
				continue;
			int has_param = strstr(rt->pattern, "{id}") != NULL;
			if (has_param != pass)
				continue;
			const char *seg;
			if (!match(rt->pattern, path, &seg))
				continue;
			if (*pattern && strcmp(*pattern, rt->pattern) != 0)
				continue;
			*pattern = rt->pattern;
			size_t used = strlen(allow);
			snprintf(allow + used, alen - used, "%s%s", used ? ", " : "", rt->method);
			if (strcmp(rt->method, method) == 0) {
				hit = rt;
				*id = seg;
			}
		}
	}
	return hit;
}

/* X-Client-Id: 1..128 of [A-Za-z0-9._:-]. */
static int client_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > ORIGIN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* Liveness: fails when the relay thread stopped turning (a wedged process is
 * restarted). A fatal producer error does not fail it: the relay makes a new
 * producer. */
static int h_healthz(server *s, api_req *r)
{
	int ok = outbox_alive(s->ctx->relay);
	return api_json(r, ok ? 200 : 503,
	                json_pack("{s:s, s:s}", "status", ok ? "ok" : "unavailable", "relay",
	                          ok ? "ok" : "stalled"),
	                NULL);
}

static int h_readyz(server *s, api_req *r)
{
	int db_ok = 0;
	db_conn *dc = db_acquire(s->ctx->pool, READY_TIMEOUT_MS);
	if (dc) {
		db_ok = ts_ping(db_pg(dc)) == 0;
		db_release(s->ctx->pool, dc);
	}
	/* Readiness is "can accept writes": the database. Kafka is reported, not
	 * required: the outbox absorbs an outage, so a pod stays in the Service. */
	int kafka_ok = outbox_kafka_ready(s->ctx->relay, KAFKA_READY_TIMEOUT_MS);
	int ok = db_ok;
	return api_json(r, ok ? 200 : 503,
	                json_pack("{s:s, s:s, s:s}", "status", ok ? "ok" : "unavailable",
	                          "database", db_ok ? "ok" : "down", "kafka",
	                          kafka_ok ? "ok" : "down"),
	                ok ? NULL : "Retry-After: 1\r\n");
}

static int h_metrics(server *s, api_req *r)
{
	size_t len;
	char *text = metrics_render(s->ctx->m, &len);
	int st = http_reply(r->c, 200, "text/plain; version=0.0.4", text, len, r->cors);
	free(text);
	return st;
}

static int h_config(server *s, api_req *r)
{
	const ba_config *cfg = s->ctx->cfg;
	return api_json(r, 200,
	                json_pack("{s:s, s:b}", "gateway_url", cfg->public_gateway_url, "dev_login",
	                          cfg->dev_login),
	                NULL);
}

static int h_dev_login(server *s, api_req *r)
{
	(void)s;
	return tasks_dev_login(r);
}

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".png", "image/png"},
	    {".svg", "image/svg+xml"},
	    {".ico", "image/x-icon"},
	    {".webmanifest", "application/manifest+json"},
	    {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < ARRAY_LEN(types); i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return NULL;
}

/* GET / and GET /<file> directly in STATIC_DIR: no subdirectories, no dotfiles, no
 * listing; unknown types are not served. Returns the status sent. */
static int serve_static(server *s, api_req *r, const char *path)
{
	const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
	int ok = name[0] != '.' && strlen(name) < 256;
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
	const char *ctype = ok ? content_type(name) : NULL;
	if (!ctype)
		return api_error(r, 404, "not_found", NULL, NULL, NULL, "not found");
	char file[4400];
	snprintf(file, sizeof(file), "%s/%s", s->ctx->cfg->static_dir, name);
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) {
		if (fd >= 0)
			close(fd);
		return api_error(r, 404, "not_found", NULL, NULL, NULL, "not found");
	}
	char *buf = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	mg_printf(r->c,
	          "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	          "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
	          ctype, got, r->cors);
	if (strcmp(mg_get_request_info(r->c)->request_method, "HEAD") != 0)
		mg_write(r->c, buf, got);
	free(buf);
	return 200;
}

/* CORS headers for this request's Origin (none when it is absent or not allowed). */
static void cors_headers(const server *s, struct mg_connection *c, char *buf, size_t len)
{
	buf[0] = '\0';
	const char *origin = mg_get_header(c, "Origin");
	const char *allowed = s->ctx->cfg->allowed_origins;
	if (!origin || !*origin || !allowed[0] || !http_origin_allowed(allowed, origin))
		return;
	if (strlen(origin) > 256 || strpbrk(origin, "\r\n"))
		return;
	snprintf(buf, len,
	         "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
	         "Access-Control-Expose-Headers: ETag, Location, Retry-After, "
	         "Idempotent-Replayed\r\n",
	         origin);
}

static void count(server *s, const char *label, const char *method, int status, int64_t t0)
{
	char labels[256];
	snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", label, method,
	         status);
	metric_inc(metrics_counter(s->ctx->m, "http_requests_total", "HTTP requests.", labels));
	snprintf(labels, sizeof(labels), "route=\"%s\"", label);
	metric_observe(metrics_histogram(s->ctx->m, "http_request_duration_seconds",
	                                 "HTTP request latency.", labels, METRICS_LATENCY_BUCKETS,
	                                 METRICS_LATENCY_NBUCKETS),
	               (double)(mono_us() - t0) / 1e6);
}

/* Every request. @locality civetweb worker thread. */
static int dispatch(struct mg_connection *c)
{
	int64_t t0 = mono_us();
	server *s = mg_get_user_data(mg_get_context(c));
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *method = ri->request_method;
	const char *path = ri->local_uri ? ri->local_uri : "/";
	char cors[512];
	cors_headers(s, c, cors, sizeof(cors));
	api_req r = {.c = c, .ctx = s->ctx, .user = "", .cors = cors};
	char allow[128];
	const char *pattern, *id = NULL;
	const route *rt = find_route(s, method, path, &id, &pattern, allow, sizeof(allow));
	int is_api = strncmp(path, "/api/", 5) == 0;
	const char *label = pattern ? pattern : "unmatched";
	int status;
	char hdr[512];

	if (!pattern) {
		if (!is_api && s->ctx->cfg->static_dir[0] &&
		    (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
			label = "static";
			status = serve_static(s, &r, path);
		} else {
			status = api_error(&r, 404, "not_found", NULL, NULL, NULL, "no such route");
		}
		goto out;
	}
	if (!strcmp(method, "OPTIONS")) {
		snprintf(hdr, sizeof(hdr),
		         "Allow: %s, OPTIONS\r\nAccess-Control-Allow-Methods: %s, OPTIONS\r\n"
		         "Access-Control-Allow-Headers: Authorization, Content-Type, If-Match, "
		         "Idempotency-Key, X-Client-Id\r\nAccess-Control-Max-Age: 600\r\n",
		         allow, allow);
		status = api_json(&r, 204, NULL, hdr);
		goto out;
	}
	if (!rt) {
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		status = api_error(&r, 405, "method_not_allowed", NULL, hdr, NULL,
		                   "%s is not allowed here (allowed: %s)", method, allow);
		goto out;
	}
	r.id = id;
	const char *xcid = mg_get_header(c, "X-Client-Id");
	if (xcid && !client_id_valid(xcid)) {
		status = api_error(&r, 400, "bad_request", "X-Client-Id", NULL, NULL,
		                   "X-Client-Id must be 1..128 characters of A-Z a-z 0-9 . _ : -");
		goto out;
	}
	r.origin = xcid;
	if (rt->api) {
		char user[USER_ID_MAX + 1];
		const char *token = auth_bearer(mg_get_header(c, "Authorization"));
		int rc = token ? auth_verify_exp(s->ctx->cfg->jwt_secret, token, user, sizeof(user),
		                                 &r.token_exp)
		               : AUTH_ERR_MISSING;
		if (rc != AUTH_OK) {
			status =
			    api_error(&r, 401, "unauthorized", NULL, "WWW-Authenticate: Bearer\r\n",
			              NULL, "%s", auth_strerror(rc));
			goto out;
		}
		r.user = user;
		status = rt->api(&r);
		r.user = "";
	} else {
		status = rt->fn(s, &r);
	}
out:
	count(s, label, method, status, t0);
	return status > 0 && status < 1000 ? status : 500;
}

static int log_message(const struct mg_connection *c, const char *message)
{
	(void)c;
	log_warn("civetweb", "{s:s}", "detail", message);
	return 1;
}

server *server_start(const api_ctx *ctx, char *err, size_t errlen)
{
	server *s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	char port[32], threads[32];
	snprintf(port, sizeof(port), "%ld", ctx->cfg->port);
	snprintf(threads, sizeof(threads), "%ld", ctx->cfg->http_threads);
	const char *opts[] = {
	    "listening_ports",       port,   "num_threads", threads, "enable_keep_alive",  "yes",
	    "keep_alive_timeout_ms", "5000", "tcp_nodelay", "1",     "request_timeout_ms", "30000",
	    "listen_backlog",        "1024", NULL};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.begin_request = dispatch;
	cb.log_message = log_message;
	mg_init_library(0);
	s->mg = mg_start(&cb, s, opts);
	if (!s->mg) {
		snprintf(err, errlen, "could not start the HTTP server on port %s", port);
		mg_exit_library();
		free(s);
		return NULL;
	}
	log_info("listening", "{s:i, s:i}", "port", (int)ctx->cfg->port, "threads",
	         (int)ctx->cfg->http_threads);
	return s;
}

void server_stop(server *s)
{
	if (!s)
		return;
	mg_stop(s->mg);
	mg_exit_library();
	free(s);
}
