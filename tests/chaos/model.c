/* The client model: a device applies events the way web/tasksync.js does. It
 * connects (and reconnects, with backoff) to its own gateway, catches up with
 * GET /api/v1/events?since=<last> after every (re)connect and whenever a push
 * skips a seq, drops a push whose seq it has applied, reloads the list on 410,
 * and applies created/updated/completed (never older versions, never a deleted
 * task), moved, deleted and reordered to its own copy of the list. What it
 * applied at each seq is kept so the verdict can compare it with the database. */
#include "chaos.h"

#include "../support/http_client.h"
#include "../ws-gateway/ws_client.h"

#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MS      3000 /* one request's bound (a frozen backend must not hold a reader long) */
#define PAGE         1000
#define BACKOFF_MAX  3000
#define WS_TIMEOUT_S 3

const char *const chaos_kind_name[K_N] = {"calm",         "gateway_kill",      "backend_kill",
                                          "relay_freeze", "kafka_leader_kill", "pg_restart",
                                          "client_stall", "garbage_records",   "hostile_input"};

void chaos_note(const char *fmt, ...)
{
	chaos *c = &g_chaos;
	pthread_mutex_lock(&c->log_mu);
	if (c->logged++ < 40) {
		va_list ap;
		va_start(ap, fmt);
		fputs("chaos: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	pthread_mutex_unlock(&c->log_mu);
}

int64_t chaos_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chaos_parse_time(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t ms = 0;
	const char *p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	return (int64_t)timegm(&tm) * 1000 + ms;
}

uint64_t chaos_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return s ? h : 0;
}

mtask *model_task(device *d, const char *id)
{
	for (size_t i = 0; i < d->ntasks; i++)
		if (!strcmp(d->tasks[i].id, id))
			return &d->tasks[i];
	return NULL;
}

static mtask *task_add(device *d, const char *id)
{
	if (d->ntasks == d->task_cap) {
		d->task_cap = d->task_cap ? d->task_cap * 2 : 64;
		d->tasks = xrealloc(d->tasks, d->task_cap * sizeof(*d->tasks));
	}
	mtask *t = &d->tasks[d->ntasks++];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	return t;
}

/* Copies what a task object carries into t. */
static void task_set(mtask *t, const json_t *o)
{
	const json_t *v;
	if ((v = json_object_get(o, "title")) && json_is_string(v))
		snprintf(t->title, sizeof(t->title), "%s", json_string_value(v));
	if ((v = json_object_get(o, "position")) && json_is_string(v))
		snprintf(t->position, sizeof(t->position), "%s", json_string_value(v));
	if ((v = json_object_get(o, "version")) && json_is_integer(v))
		t->version = (long)json_integer_value(v);
	if ((v = json_object_get(o, "completed")))
		t->completed = json_is_true(v);
	if ((v = json_object_get(o, "description")))
		t->desc_hash = json_is_string(v) ? chaos_hash(json_string_value(v)) : 0;
}

static int known_type(const char *type)
{
	static const char *const types[] = {"task.created", "task.updated", "task.completed",
	                                    "task.deleted", "task.moved",   "task.reordered"};
	for (size_t i = 0; type && i < ARRAY_LEN(types); i++)
		if (!strcmp(type, types[i]))
			return 1;
	return 0;
}

/* Room for seq in d->seqs, bounded by the writes made so far (an event's seq cannot
 * pass them): 0, or -1 when seq is beyond any write. */
static int seq_room(device *d, long long seq)
{
	long bound = atomic_load(&g_chaos.ops) + 1000;
	if (seq < 1 || seq > bound)
		return -1;
	if ((size_t)seq < d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 256;
	while (cap <= (size_t)seq)
		cap *= 2;
	d->seqs = xrealloc(d->seqs, cap * sizeof(*d->seqs));
	memset(d->seqs + d->cap, 0, (cap - d->cap) * sizeof(*d->seqs));
	d->cap = cap;
	return 0;
}

/* Applies event e (seq == last + 1, checked by the caller) to d's list. */
static void apply(device *d, const json_t *e, long long seq, const char *eid)
{
	const char *type = json_string_value(json_object_get(e, "event_type"));
	if (!type)
		type = json_string_value(json_object_get(e, "event"));
	const json_t *t = json_object_get(e, "task");
	const char *id = json_string_value(json_object_get(t, "id"));
	mtask *m = id ? model_task(d, id) : NULL;
	if (!strcmp(type, "task.created") || !strcmp(type, "task.updated") ||
	    !strcmp(type, "task.completed")) {
		if (id && !(m && m->deleted)) {
			const json_t *v = json_object_get(t, "version");
			if (!(m && json_is_integer(v) && json_integer_value(v) < m->version)) {
				if (!m)
					m = task_add(d, id);
				task_set(m, t);
			}
		}
	} else if (!strcmp(type, "task.moved")) {
		const char *pos = json_string_value(json_object_get(t, "position"));
		if (m && pos && !m->deleted)
			snprintf(m->position, sizeof(m->position), "%s", pos);
	} else if (!strcmp(type, "task.deleted")) {
		if (id) {
			if (!m)
				m = task_add(d, id);
			m->deleted = 1;
		}
	} else if (!strcmp(type, "task.reordered")) {
		const json_t *ps = json_object_get(e, "positions");
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)ps, k, v)
		{
			mtask *x = model_task(d, k);
			if (x && !x->deleted && json_is_string(v))
				snprintf(x->position, sizeof(x->position), "%s",
				         json_string_value(v));
		}
	}
	snprintf(d->seqs[seq].eid, sizeof(d->seqs[seq].eid), "%s", eid);
	d->seqs[seq].at_ms = chaos_now_ms();
	atomic_store(&d->last, seq);
}

/* Checks an event's user and reads its seq and event_id. 1: an event of d's user
 * with both; 0: not one (counted). */
static int event_fields(device *d, const json_t *e, const char *via, long long *seq,
                        const char **eid)
{
	chaos *c = &g_chaos;
	const user *u = &c->users[d->user];
	int k = atomic_load(&c->kind);
	const char *uid = json_string_value(json_object_get(e, "user_id"));
	if (!uid || strcmp(uid, u->id)) {
		atomic_fetch_add(&c->wrong[k], 1);
		chaos_note("device %d of %s got an event of %s via %s", (int)(d - c->devs), u->id,
		           uid ? uid : "(none)", via);
		return 0;
	}
	const json_t *sq = json_object_get(e, "seq");
	const char *type = json_string_value(json_object_get(e, "event_type"));
	if (!type)
		type = json_string_value(json_object_get(e, "event"));
	*eid = json_string_value(json_object_get(e, "event_id"));
	if (!json_is_integer(sq) || !*eid || strlen(*eid) != UUID_STR_LEN - 1 ||
	    !known_type(type) || seq_room(d, json_integer_value(sq))) {
		atomic_fetch_add(&c->garbage[k], 1);
		char *dump = json_dumps(e, JSON_COMPACT);
		chaos_note("device %d of %s: not an event of ours via %s: %.200s",
		           (int)(d - c->devs), u->id, via, dump ? dump : "?");
		free(dump);
		return 0;
	}
	*seq = json_integer_value(sq);
	return 1;
}

static int be_port(int *rr)
{
	chaos *c = &g_chaos;
	return atomic_load(&c->be_port[(*rr)++ % CHAOS_BACKENDS]);
}

/* GET /api/v1/tasks (every page) and takes it as the list: what a 410 asks for. */
static int reload(device *d, int *rr)
{
	const user *u = &g_chaos.users[d->user];
	char cursor[512] = "";
	long long seq = -1;
	device fresh = {0};
	for (int pages = 0; pages < 1000; pages++) {
		char path[700];
		snprintf(path, sizeof(path), "/api/v1/tasks?limit=%d%s%s", PAGE,
		         cursor[0] ? "&cursor=" : "", cursor);
		http_resp r;
		int st = http_request(be_port(rr), "GET", path, u->auth, NULL, 0, HTTP_MS, &r);
		json_t *j = st == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		http_resp_free(&r);
		const json_t *tasks = json_object_get(j, "tasks");
		if (!json_is_array(tasks)) {
			json_decref(j);
			free(fresh.tasks);
			return -1;
		}
		if (seq < 0)
			seq = json_integer_value(json_object_get(j, "seq"));
		size_t i;
		const json_t *t;
		json_array_foreach(tasks, i, t)
		{
			const char *id = json_string_value(json_object_get(t, "id"));
			if (id && strlen(id) < UUID_STR_LEN)
				task_set(task_add(&fresh, id), t);
		}
		const char *next = json_string_value(json_object_get(j, "next_cursor"));
		snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
		json_decref(j);
		if (!cursor[0])
			break;
	}
	if (seq < 0 || seq_room(d, seq)) {
		free(fresh.tasks);
		return -1;
	}
	/* tombstones stay: a late create of a deleted task must not come back */
	for (size_t i = 0; i < d->ntasks; i++)
		if (d->tasks[i].deleted && !model_task(&fresh, d->tasks[i].id))
			task_add(&fresh, d->tasks[i].id)->deleted = 1;
	free(d->tasks);
	d->tasks = fresh.tasks;
	d->ntasks = fresh.ntasks;
	d->task_cap = fresh.task_cap;
	for (long long s = atomic_load(&d->last) + 1; s <= seq; s++) {
		snprintf(d->seqs[s].eid, sizeof(d->seqs[s].eid), "reload");
		d->seqs[s].at_ms = chaos_now_ms();
	}
	if (seq > atomic_load(&d->last))
		atomic_store(&d->last, seq);
	d->reloads++;
	chaos_note("device %d of %s reloaded the list at seq %lld (410)", (int)(d - g_chaos.devs),
	           g_chaos.users[d->user].id, seq);
	return 0;
}

static int catch_up(device *d, int *rr)
{
	chaos *c = &g_chaos;
	const user *u = &c->users[d->user];
	d->catchups++;
	for (int pages = 0; pages < 1000; pages++) {
		long long since = atomic_load(&d->last);
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/events?since=%lld&limit=%d", since, PAGE);
		http_resp r;
		int st = http_request(be_port(rr), "GET", path, u->auth, NULL, 0, HTTP_MS, &r);
		if (st == 410) {
			http_resp_free(&r);
			if (reload(d, rr))
				return -1;
			continue;
		}
		json_t *j = st == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		http_resp_free(&r);
		const json_t *evs = json_object_get(j, "events");
		if (!json_is_array(evs)) {
			json_decref(j);
			return -1;
		}
		int more = json_is_true(json_object_get(j, "has_more")) && json_array_size(evs) > 0;
		size_t i;
		const json_t *e;
		json_array_foreach(evs, i, e)
		{
			long long seq;
			const char *eid;
			if (!event_fields(d, e, "catch-up", &seq, &eid))
				continue;
			long long last = atomic_load(&d->last);
			if (seq <= last)
				continue;
			if (seq != last + 1) {
				/* the API never skips: tasksync.js reloads; count it, and do */
				atomic_fetch_add(&c->api_gaps, 1);
				chaos_note("device %d of %s: /events after %lld gave seq %lld",
				           (int)(d - c->devs), u->id, last, seq);
				json_decref(j);
				return reload(d, rr) ? -1 : 0;
			}
			apply(d, e, seq, eid);
			d->caught++;
		}
		json_decref(j);
		if (!more)
			return 0;
	}
	return 0;
}

int model_catch_up(device *d)
{
	int rr = 0;
	return catch_up(d, &rr);
}

/* A catch-up now; on failure, again later (with backoff). */
static void sync_now(device *d, int *rr)
{
	if (catch_up(d, rr) == 0) {
		d->need_sync = 0;
		d->sync_backoff_ms = 0;
		return;
	}
	d->need_sync = 1;
	d->sync_backoff_ms = d->sync_backoff_ms ? d->sync_backoff_ms * 2 : 200;
	if (d->sync_backoff_ms > BACKOFF_MAX)
		d->sync_backoff_ms = BACKOFF_MAX;
	d->sync_at = mono_ms() + d->sync_backoff_ms;
}

static void on_push(device *d, const json_t *j, int *rr)
{
	chaos *c = &g_chaos;
	long long seq;
	const char *eid;
	if (!event_fields(d, j, "push", &seq, &eid))
		return;
	long long last = atomic_load(&d->last);
	if (seq <= last) {
		d->dups++;
		const char *had = d->seqs[seq].eid;
		if (strcmp(had, eid) && strcmp(had, "reload")) {
			atomic_fetch_add(&c->conflicts, 1);
			chaos_note("device %d of %s: seq %lld pushed as event %s, %s was applied",
			           (int)(d - c->devs), c->users[d->user].id, seq, eid, had);
		}
		return;
	}
	if (seq > last + 1 || d->need_sync) {
		/* a gap: the feed has what was missed (and this one, by then) */
		sync_now(d, rr);
		last = atomic_load(&d->last);
		if (seq != last + 1)
			return;
	}
	apply(d, j, seq, eid);
	d->pushed++;
}

static void disconnect(device *d, int code)
{
	ws_free(d->ws);
	d->ws = NULL;
	atomic_store(&d->last_close, code);
	atomic_fetch_add(&d->closes, 1);
	if (code == 1013)
		atomic_fetch_add(&d->slow_closes, 1);
	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 100;
	if (d->backoff_ms > BACKOFF_MAX)
		d->backoff_ms = BACKOFF_MAX;
	d->reconnect_at = mono_ms() + d->backoff_ms;
}

/* Every complete frame of d, without waiting. */
static void drain(device *d, int *rr)
{
	chaos *c = &g_chaos;
	while (d->ws) {
		char *data;
		size_t len;
		int op = ws_recv(d->ws, 0, &data, &len);
		if (op == WS_RECV_TIMEOUT)
			return;
		if (op == 0x1) {
			json_t *j = json_loadb(data, len, 0, NULL);
			const char *type = json_string_value(json_object_get(j, "type"));
			if (type && !strcmp(type, "task_update")) {
				on_push(d, j, rr);
			} else if (type && !strcmp(type, "error")) {
				atomic_fetch_add(&c->frames_error, 1);
				chaos_note("device %d: the gateway sent %.200s", (int)(d - c->devs),
				           data);
			} else if (!type) {
				atomic_fetch_add(&c->garbage[atomic_load(&c->kind)], 1);
				chaos_note("device %d: a frame that is no message: %.200s",
				           (int)(d - c->devs), data);
			}
			json_decref(j);
		} else if (op == 0x9) {
			(void)ws_send(d->ws, 0xa, data, len);
		} else if (op == 0x8 || op < 0) {
			int code = op == 0x8 ? ws_close_code(d->ws) : -1;
			free(data);
			disconnect(d, code);
			return;
		}
		free(data);
	}
}

static void connect_dev(device *d, int *rr)
{
	chaos *c = &g_chaos;
	int port = atomic_load(&c->gw_port[d->gw]);
	int st = -1;
	char target[1200];
	snprintf(target, sizeof(target), "/ws?token=%s", c->users[d->user].token);
	ws_client *ws = port > 0 ? ws_open(port, target, NULL, d->rcvbuf, &st) : NULL;
	if (!ws) {
		d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 100;
		if (d->backoff_ms > BACKOFF_MAX)
			d->backoff_ms = BACKOFF_MAX;
		d->reconnect_at = mono_ms() + d->backoff_ms;
		return;
	}
	d->ws = ws;
	d->backoff_ms = 0;
	d->connects++;
	/* tasksync.js catches up on every open: what came while it was away */
	sync_now(d, rr);
}

void *model_reader(void *arg)
{
	chaos *c = &g_chaos;
	int me = (int)(intptr_t)arg, rr = me;
	size_t n = 0;
	for (int i = me; i < c->ndevs; i += (int)c->readers_n)
		n++;
	struct pollfd *pf = xcalloc(n + 1, sizeof(*pf));
	device **which = xcalloc(n + 1, sizeof(*which));
	while (!atomic_load(&c->stop_readers)) {
		int64_t now = mono_ms();
		nfds_t np = 0;
		for (int i = me; i < c->ndevs; i += (int)c->readers_n) {
			device *d = &c->devs[i];
			if (atomic_load(&d->stalled))
				continue;
			if (!d->ws) {
				if (now >= d->reconnect_at)
					connect_dev(d, &rr);
				continue;
			}
			if (d->need_sync && now >= d->sync_at)
				sync_now(d, &rr);
			pf[np] = (struct pollfd){.fd = ws_fd(d->ws), .events = POLLIN};
			which[np++] = d;
		}
		if (np == 0) {
			usleep(50000);
			continue;
		}
		if (poll(pf, np, 50) <= 0)
			continue;
		for (nfds_t i = 0; i < np; i++)
			if (pf[i].revents && !atomic_load(&which[i]->stalled))
				drain(which[i], &rr);
	}
	free(pf);
	free(which);
	return NULL;
}

void model_free(device *d)
{
	ws_free(d->ws);
	d->ws = NULL;
	free(d->seqs);
	free(d->tasks);
}
