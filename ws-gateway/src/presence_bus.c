#include "presence_bus.h"

#include "common/auth.h"
#include "common/log.h"
#include "kafka_dl.h"
#include "presence.h"

#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS        20   /* the thread's tick: dirty lists wait at most this long */
#define EXPIRE_MS      1000 /* presence_expire runs this often */
#define REFRESH_MS     5000 /* new partitions of the topic are looked for this often */
#define READ_BATCH     1024 /* records taken per tick at most */
#define MAX_PARTITIONS 1024
#define FLUSH_MS       2000 /* bound of the flush at stop */

/* A local socket with at least one subscription (node of by_conn, keyed by c). */
typedef struct lconn {
	conn *c;                        /* holds a reference */
	char id[PRESENCE_CONN_MAX + 1]; /* "<gateway_id>:<serial>": the key's conn part */
	char (*lists)[UUID_STR_LEN];    /* the lists it is subscribed to */
	size_t n, cap;
} lconn;

/* A list with at least one local subscriber (node of by_list, keyed by id). */
typedef struct llist {
	char id[UUID_STR_LEN];
	lconn **v; /* its local subscribers */
	size_t n, cap;
	int dirty;            /* its presence changed since the last message */
	int64_t last_sent_ms; /* mono ms of the last broadcast */
} llist;

struct presence_bus {
	presence *view;
	rd_kafka_t *prod, *cons;
	rd_kafka_topic_t *ptopic; /* the producer's handle of the topic */
	char *topic;
	char *gateway_id;
	char *secret;
	int64_t ttl_ms, heartbeat_ms;
	size_t max_lists;
	pthread_t thread;
	int have_thread;
	atomic_int stop;
	atomic_ullong serial; /* the last socket serial given out */
	atomic_long nsubs;    /* local subscriptions (gauge) */
	pthread_mutex_t mu;   /* guards by_conn, by_list and dirty */
	void *by_conn, *by_list;
	char (*dirty)[UUID_STR_LEN]; /* lists marked dirty, in order */
	size_t ndirty, dirty_cap;
	/* the thread's own */
	int npart;          /* partitions assigned */
	atomic_int npart_g; /* npart, for the gauge */
	/* metrics */
	metric *rec[4]; /* presence_records_total by result: changed unchanged bad full */
	metric *produced_ok, *produced_failed;
	metric *messages, *expired, *revoked;
	metric *refused[3]; /* forbidden, too_many_subscriptions, bad_request */
};

static int lconn_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const lconn *)a)->c, y = (uintptr_t)((const lconn *)b)->c;
	return x < y ? -1 : x > y;
}

static int llist_cmp(const void *a, const void *b)
{
	return strcmp(((const llist *)a)->id, ((const llist *)b)->id);
}

static int64_t wall_ms(void)
{
	return wall_us() / 1000;
}

const char *presence_bus_strerror(int code)
{
	switch (code) {
	case PB_OK:
		return "ok";
	case PB_FORBIDDEN:
		return "not a valid presence ticket for this user and list";
	case PB_TOO_MANY:
		return "too many presence subscriptions on this socket";
	case PB_BAD_ID:
		return "user id cannot be used for presence";
	}
	return "unknown error";
}

/* ---- marking and sending ---- */

/* Marks list dirty when it has local subscribers. @locks b->mu held. */
static void mark_dirty_locked(presence_bus *b, const char *list)
{
	llist probe;
	memcpy(probe.id, list, UUID_STR_LEN);
	void *node = tfind(&probe, &b->by_list, llist_cmp);
	if (!node)
		return;
	llist *l = *(llist **)node;
	if (l->dirty)
		return;
	l->dirty = 1;
	b->dirty = xgrow(b->dirty, &b->dirty_cap, b->ndirty + 1, UUID_STR_LEN);
	memcpy(b->dirty[b->ndirty++], list, UUID_STR_LEN);
}

static void mark_dirty(const char *list, void *arg)
{
	presence_bus *b = arg;
	pthread_mutex_lock(&b->mu);
	mark_dirty_locked(b, list);
	pthread_mutex_unlock(&b->mu);
}

/* Queues list's presence message to the n sockets of v (and drops their refs). */
static void send_to(presence_bus *b, const char *list, conn **v, size_t n)
{
	if (n == 0)
		return;
	size_t len;
	char *msg = presence_message(b->view, list, &len);
	frame *f = frame_new(WS_OP_TEXT, msg, len, 0);
	free(msg);
	for (size_t i = 0; i < n; i++) {
		if (conn_enqueue(v[i], f) == CONN_QUEUED)
			metric_inc(b->messages);
		conn_unref(v[i]);
	}
	frame_unref(f);
}

/* Sends the dirty lists whose last message is at least PRESENCE_COALESCE_MS old.
 * @locality the presence thread. */
static void flush_dirty(presence_bus *b, int64_t now)
{
	conn **v = NULL;
	size_t vcap = 0;
	for (;;) {
		char id[UUID_STR_LEN] = "";
		size_t n = 0;
		pthread_mutex_lock(&b->mu);
		for (size_t i = 0; i < b->ndirty && !id[0];) {
			llist probe;
			memcpy(probe.id, b->dirty[i], UUID_STR_LEN);
			void *node = tfind(&probe, &b->by_list, llist_cmp);
			llist *l = node ? *(llist **)node : NULL;
			if (l && now - l->last_sent_ms < PRESENCE_COALESCE_MS) {
				i++; /* later: at most one message per list per period */
				continue;
			}
			if (l) {
				memcpy(id, l->id, UUID_STR_LEN);
				l->dirty = 0;
				l->last_sent_ms = now;
				v = xgrow(v, &vcap, l->n, sizeof(*v));
				for (size_t k = 0; k < l->n; k++)
					v[n++] = conn_ref(l->v[k]->c);
			}
			memmove(b->dirty[i], b->dirty[--b->ndirty], UUID_STR_LEN);
		}
		pthread_mutex_unlock(&b->mu);
		if (!id[0])
			break;
		send_to(b, id, v, n);
	}
	free(v);
}

/* ---- producing ---- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	presence_bus *b = opaque;
	metric_inc(m->err ? b->produced_failed : b->produced_ok);
	if (m->err)
		log_debug("presence record not delivered", "{s:s}", "err",
		          rd_kafka_err2str(m->err));
}

/* Produces the record of key (on: expiring at exp_ms; else a tombstone) and applies
 * it to the local view at once. Any thread; no lock held. */
static void put_record(presence_bus *b, const char *key, int on, int64_t exp_ms)
{
	char val[64];
	size_t vl =
	    on ? (size_t)snprintf(val, sizeof(val), "{\"expires_at_ms\":%lld}", (long long)exp_ms)
	       : 0;
	size_t kl = strlen(key);
	if (rd_kafka_produce(b->ptopic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, on ? val : NULL,
	                     vl, key, kl, NULL) == -1) {
		metric_inc(b->produced_failed);
		log_debug("presence record not queued", "{s:s}", "err",
		          rd_kafka_err2str(rd_kafka_last_error()));
	}
	char list[UUID_STR_LEN];
	if (presence_apply(b->view, key, kl, on ? val : NULL, vl, wall_ms(), list) ==
	    PRESENCE_CHANGED)
		mark_dirty(list, b);
}

/* ---- subscriptions ---- */

static lconn *find_conn_locked(presence_bus *b, conn *c)
{
	lconn probe = {.c = c};
	void *node = tfind(&probe, &b->by_conn, lconn_cmp);
	return node ? *(lconn **)node : NULL;
}

/* Removes lc from list's subscribers (and the list when it has none left).
 * @locks b->mu held. */
static void list_drop_locked(presence_bus *b, const char *list, lconn *lc)
{
	llist probe;
	memcpy(probe.id, list, UUID_STR_LEN);
	void *node = tfind(&probe, &b->by_list, llist_cmp);
	if (!node)
		return;
	llist *l = *(llist **)node;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == lc) {
			l->v[i] = l->v[--l->n];
			break;
		}
	if (l->n == 0) {
		tdelete(l, &b->by_list, llist_cmp);
		free(l->v);
		free(l);
	}
}

int presence_bus_subscribe(presence_bus *b, conn *c, const char *list, const char *ticket)
{
	auth_presence ap;
	if (auth_verify_presence(b->secret, ticket, &ap) != AUTH_OK ||
	    strcmp(ap.user, conn_user(c)) != 0 || strcmp(ap.list_id, list) != 0) {
		metric_inc(b->refused[0]);
		return PB_FORBIDDEN;
	}
	char key[PRESENCE_KEY_MAX];
	pthread_mutex_lock(&b->mu);
	lconn *lc = find_conn_locked(b, c);
	int fresh = !lc;
	if (fresh) {
		lc = xcalloc(1, sizeof(*lc));
		lc->c = c;
		snprintf(lc->id, sizeof(lc->id), "%s:%llu", b->gateway_id,
		         (unsigned long long)atomic_fetch_add(&b->serial, 1) + 1);
	}
	if (presence_key(list, conn_user(c), lc->id, key)) {
		pthread_mutex_unlock(&b->mu);
		if (fresh)
			free(lc);
		metric_inc(b->refused[2]);
		return PB_BAD_ID;
	}
	size_t at = lc->n;
	for (size_t i = 0; i < lc->n; i++)
		if (strcmp(lc->lists[i], list) == 0)
			at = i;
	if (at == lc->n) {
		if (lc->n >= b->max_lists) {
			pthread_mutex_unlock(&b->mu);
			metric_inc(b->refused[1]);
			return PB_TOO_MANY; /* lc has n >= 1 lists here: it is in by_conn */
		}
		if (fresh) {
			conn_ref(c);
			if (!tsearch(lc, &b->by_conn, lconn_cmp))
				abort();
		}
		lc->lists = xgrow(lc->lists, &lc->cap, lc->n + 1, UUID_STR_LEN);
		memcpy(lc->lists[lc->n++], list, UUID_STR_LEN);
		llist probe;
		memcpy(probe.id, list, UUID_STR_LEN);
		void *node = tfind(&probe, &b->by_list, llist_cmp);
		llist *l = node ? *(llist **)node : NULL;
		if (!l) {
			l = xcalloc(1, sizeof(*l));
			memcpy(l->id, list, UUID_STR_LEN);
			if (!tsearch(l, &b->by_list, llist_cmp))
				abort();
		}
		l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
		l->v[l->n++] = lc;
		atomic_fetch_add(&b->nsubs, 1);
	}
	pthread_mutex_unlock(&b->mu);
	put_record(b, key, 1, wall_ms() + b->ttl_ms);
	conn *one = conn_ref(c);
	send_to(b, list, &one, 1);
	return PB_OK;
}

/* Ends lc's subscription number i: its key into key ("" when it has none), lc
 * freed when it was its last, and then *unref is its conn (release its reference
 * outside the lock). @locks b->mu held. */
static void drop_sub_locked(presence_bus *b, lconn *lc, size_t i, char key[PRESENCE_KEY_MAX],
                            conn **unref)
{
	*unref = NULL;
	if (presence_key(lc->lists[i], conn_user(lc->c), lc->id, key))
		key[0] = '\0';
	list_drop_locked(b, lc->lists[i], lc);
	memcpy(lc->lists[i], lc->lists[--lc->n], UUID_STR_LEN);
	atomic_fetch_sub(&b->nsubs, 1);
	if (lc->n == 0) {
		tdelete(lc, &b->by_conn, lconn_cmp);
		*unref = lc->c;
		free(lc->lists);
		free(lc);
	}
}

/* Where list is among lc's subscriptions, or lc->n. */
static size_t sub_index(const lconn *lc, const char *list)
{
	size_t i = 0;
	while (i < lc->n && strcmp(lc->lists[i], list) != 0)
		i++;
	return i;
}

void presence_bus_unsubscribe(presence_bus *b, conn *c, const char *list)
{
	char key[PRESENCE_KEY_MAX] = "";
	conn *unref = NULL;
	pthread_mutex_lock(&b->mu);
	lconn *lc = find_conn_locked(b, c);
	size_t i = lc ? sub_index(lc, list) : 0;
	if (lc && i < lc->n)
		drop_sub_locked(b, lc, i, key, &unref);
	pthread_mutex_unlock(&b->mu);
	if (key[0])
		put_record(b, key, 0, 0);
	conn_unref(unref);
}

void presence_bus_revoke(presence_bus *b, const char *user, const char *list)
{
	if (!b || !uuid_valid(list))
		return;
	char(*keys)[PRESENCE_KEY_MAX] = NULL;
	conn **unref = NULL;
	size_t n = 0, kcap = 0, ucap = 0;
	pthread_mutex_lock(&b->mu);
	llist probe;
	memcpy(probe.id, list, UUID_STR_LEN);
	void *node = tfind(&probe, &b->by_list, llist_cmp);
	/* each drop changes the list's subscribers (and may free it): look it up again */
	while (node) {
		llist *l = *(llist **)node;
		lconn *lc = NULL;
		for (size_t k = 0; k < l->n && !lc; k++)
			if (strcmp(conn_user(l->v[k]->c), user) == 0)
				lc = l->v[k];
		if (!lc)
			break;
		keys = xgrow(keys, &kcap, n + 1, PRESENCE_KEY_MAX);
		unref = xgrow(unref, &ucap, n + 1, sizeof(*unref));
		drop_sub_locked(b, lc, sub_index(lc, list), keys[n], &unref[n]);
		n++;
		node = tfind(&probe, &b->by_list, llist_cmp);
	}
	pthread_mutex_unlock(&b->mu);
	for (size_t i = 0; i < n; i++) {
		if (keys[i][0])
			put_record(b, keys[i], 0, 0);
		conn_unref(unref[i]);
	}
	if (n)
		metric_add(b->revoked, (double)n);
	free(keys);
	free(unref);
}

/* Every key of lc into keys (n of them). @locks b->mu held. */
static char (*keys_of(const lconn *lc, const char *user, size_t *n))[PRESENCE_KEY_MAX]
{
	char(*keys)[PRESENCE_KEY_MAX] = xcalloc(lc->n + 1, PRESENCE_KEY_MAX);
	size_t k = 0;
	for (size_t i = 0; i < lc->n; i++)
		if (!presence_key(lc->lists[i], user, lc->id, keys[k]))
			k++;
	*n = k;
	return keys;
}

void presence_bus_conn_closed(presence_bus *b, conn *c)
{
	if (!b)
		return;
	size_t n = 0;
	char(*keys)[PRESENCE_KEY_MAX] = NULL;
	pthread_mutex_lock(&b->mu);
	lconn *lc = find_conn_locked(b, c);
	if (lc) {
		keys = keys_of(lc, conn_user(c), &n);
		for (size_t i = 0; i < lc->n; i++)
			list_drop_locked(b, lc->lists[i], lc);
		atomic_fetch_sub(&b->nsubs, (long)lc->n);
		tdelete(lc, &b->by_conn, lconn_cmp);
	}
	pthread_mutex_unlock(&b->mu);
	if (!lc)
		return;
	for (size_t i = 0; i < n; i++)
		put_record(b, keys[i], 0, 0);
	free(keys);
	free(lc->lists);
	free(lc);
	conn_unref(c);
}

/* ---- the heartbeat ---- */

typedef struct hb_walk {
	char (*keys)[PRESENCE_KEY_MAX];
	size_t n, cap;
} hb_walk;

static void hb_collect(const void *node, VISIT which, void *arg)
{
	if (which != postorder && which != leaf)
		return;
	const lconn *lc = *(lconn *const *)node;
	hb_walk *w = arg;
	w->keys = xgrow(w->keys, &w->cap, w->n + lc->n, PRESENCE_KEY_MAX);
	for (size_t i = 0; i < lc->n; i++)
		if (!presence_key(lc->lists[i], conn_user(lc->c), lc->id, w->keys[w->n]))
			w->n++;
}

/* Re-produces every local subscription with a fresh expiry. @locality the thread. */
static void heartbeat(presence_bus *b)
{
	hb_walk w = {0};
	pthread_mutex_lock(&b->mu);
	twalk_r(b->by_conn, hb_collect, &w);
	pthread_mutex_unlock(&b->mu);
	int64_t exp = wall_ms() + b->ttl_ms;
	for (size_t i = 0; i < w.n; i++)
		put_record(b, w.keys[i], 1, exp);
	free(w.keys);
}

/* ---- reading the topic ---- */

static int partition_count(presence_bus *b, int timeout_ms)
{
	rd_kafka_topic_t *t = rd_kafka_topic_new(b->cons, b->topic, NULL);
	if (!t)
		return -1;
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	rd_kafka_resp_err_t err = rd_kafka_metadata(b->cons, 0, t, &md, timeout_ms);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err)
		n = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return n > MAX_PARTITIONS ? MAX_PARTITIONS : n;
}

/* Assigns partitions [b->npart, n) from their beginning: the whole view. */
static void assign_from(presence_bus *b, int n)
{
	if (n <= b->npart)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n - b->npart);
	for (int p = b->npart; p < n; p++)
		rd_kafka_topic_partition_list_add(l, b->topic, p)->offset =
		    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_error_t *e = rd_kafka_incremental_assign(b->cons, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		log_warn("could not assign presence partitions", "{s:s}", "err",
		         rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		return;
	}
	log_info("presence partitions assigned", "{s:s, s:i, s:i}", "topic", b->topic, "from",
	         b->npart, "to", n);
	b->npart = n;
	atomic_store(&b->npart_g, n);
}

static void handle_record(presence_bus *b, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("presence consumer error", "{s:s, s:i}", "err",
			         rd_kafka_err2str(m->err), "partition", (int)m->partition);
		return;
	}
	char list[UUID_STR_LEN];
	int rc = presence_apply(b->view, m->key, m->key_len, m->payload, m->len, wall_ms(), list);
	metric_inc(b->rec[rc == PRESENCE_CHANGED     ? 0
	                  : rc == PRESENCE_UNCHANGED ? 1
	                  : rc == PRESENCE_BAD       ? 2
	                                             : 3]);
	if (rc == PRESENCE_CHANGED)
		mark_dirty(list, b);
}

/* @locality the presence thread: reads the topic, expires, heartbeats, sends. */
static void *bus_main(void *arg)
{
	presence_bus *b = arg;
	int64_t now = mono_ms();
	int64_t next_expire = now + EXPIRE_MS, next_hb = now + b->heartbeat_ms, next_refresh = 0;
	while (!atomic_load(&b->stop)) {
		if (mono_ms() >= next_refresh) {
			int n = partition_count(b, 1000);
			assign_from(b, n);
			next_refresh = mono_ms() + (b->npart ? REFRESH_MS : 200);
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, POLL_MS);
		for (int k = 0; m; k++) {
			handle_record(b, m);
			rd_kafka_message_destroy(m);
			m = k + 1 < READ_BATCH ? rd_kafka_consumer_poll(b->cons, 0) : NULL;
		}
		rd_kafka_poll(b->prod, 0); /* delivery reports */
		now = mono_ms();
		if (now >= next_expire) {
			next_expire = now + EXPIRE_MS;
			size_t d = presence_expire(b->view, wall_ms(), mark_dirty, b);
			if (d)
				metric_add(b->expired, (double)d);
		}
		if (now >= next_hb) {
			next_hb = now + b->heartbeat_ms;
			heartbeat(b);
		}
		flush_dirty(b, mono_ms());
	}
	return NULL;
}

/* ---- life cycle ---- */

static double gauge_subs(void *arg)
{
	return (double)atomic_load(&((presence_bus *)arg)->nsubs);
}

static double gauge_parts(void *arg)
{
	return (double)atomic_load(&((presence_bus *)arg)->npart_g);
}

static double gauge_view(void *arg)
{
	return (double)presence_count(((presence_bus *)arg)->view);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 4)
		log_warn("kafka (presence)", "{s:s, s:s}", "facility", fac, "detail", buf);
	else
		log_debug("kafka (presence)", "{s:s, s:s}", "facility", fac, "detail", buf);
}

/* A client of type with the settings kv; NULL with the reason in err. */
static rd_kafka_t *client_new(rd_kafka_type_t type, const char *const (*kv)[2], size_t n,
                              presence_bus *b, char *err, size_t errlen)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < n; i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "presence kafka config %s: %s", kv[i][0], e);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_opaque(conf, b);
	if (type == RD_KAFKA_PRODUCER)
		rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e)); /* owns conf on success */
	if (!rk) {
		snprintf(err, errlen, "could not create the presence Kafka client: %s", e);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

presence_bus *presence_bus_start(const presence_bus_opts *o, char *err, size_t errlen)
{
	if (kafka_dl_load(err, errlen))
		return NULL;
	presence_bus *b = xcalloc(1, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	b->view = presence_new((size_t)o->max_entries);
	b->topic = xstrdup(o->topic);
	b->gateway_id = xstrdup(o->gateway_id);
	b->secret = xstrdup(o->jwt_secret);
	b->ttl_ms = o->ttl_ms;
	b->heartbeat_ms = o->heartbeat_ms;
	b->max_lists = (size_t)o->max_lists;
	static const char *const results[] = {"changed", "unchanged", "bad", "full"};
	for (int i = 0; i < 4; i++) {
		char lab[32];
		snprintf(lab, sizeof(lab), "result=\"%s\"", results[i]);
		b->rec[i] =
		    metrics_counter(o->m, "presence_records_total",
		                    "Presence records read from the topic, by what they did "
		                    "to the view.",
		                    lab);
	}
	b->produced_ok =
	    metrics_counter(o->m, "presence_produced_total",
	                    "Presence records produced, by delivery result.", "result=\"ok\"");
	b->produced_failed =
	    metrics_counter(o->m, "presence_produced_total",
	                    "Presence records produced, by delivery result.", "result=\"failed\"");
	b->messages = metrics_counter(o->m, "presence_messages_sent_total",
	                              "Presence messages queued to sockets.", NULL);
	b->expired = metrics_counter(o->m, "presence_expired_total",
	                             "Subscriptions dropped from the view by their TTL.", NULL);
	b->revoked = metrics_counter(
	    o->m, "presence_revoked_total",
	    "Local subscriptions ended because their user left the list (list.unshared, "
	    "list.deleted).",
	    NULL);
	static const char *const reasons[] = {"forbidden", "too_many_subscriptions", "bad_request"};
	for (int i = 0; i < 3; i++) {
		char lab[48];
		snprintf(lab, sizeof(lab), "reason=\"%s\"", reasons[i]);
		b->refused[i] = metrics_counter(o->m, "presence_subscribe_refused_total",
		                                "Presence subscriptions refused, by reason.", lab);
	}
	metrics_gauge_fn(o->m, "presence_subscriptions",
	                 "Presence subscriptions of this gateway's sockets.", NULL, gauge_subs, b);
	metrics_gauge_fn(o->m, "presence_partitions_assigned",
	                 "Partitions of PRESENCE_TOPIC this gateway reads (0: not reading yet).",
	                 NULL, gauge_parts, b);
	metrics_gauge_fn(o->m, "presence_view_entries",
	                 "Subscriptions in the merged presence view (all gateways).", NULL,
	                 gauge_view, b);

	char tmo[32], gid[80], uuid[UUID_STR_LEN];
	/* a record older than the TTL is worth nothing: give up delivering it then */
	snprintf(tmo, sizeof(tmo), "%lld", (long long)o->ttl_ms);
	const char *const pkv[][2] = {
	    {"bootstrap.servers", o->brokers},
	    {"client.id", "ws-gateway-presence"},
	    /* presence is advisory and its target is seconds: batches of 20 ms spare the
	     * broker a produce request per subscribe (docs/benchmarks.md) */
	    {"linger.ms", "20"},
	    {"acks", "1"},
	    {"message.timeout.ms", tmo},
	    {"queue.buffering.max.messages", "1000000"},
	    /* Java's partitioner: the same key lands on the same partition whatever
	     * client wrote it, so compaction keeps one record per key */
	    {"partitioner", "murmur2_random"},
	    {"reconnect.backoff.ms", "50"},
	    {"reconnect.backoff.max.ms", "1000"},
	    {"socket.nagle.disable", "true"},
	};
	uuid_new(uuid);
	snprintf(gid, sizeof(gid), "ws-gateway-presence-%s", uuid);
	const char *const ckv[][2] = {
	    {"bootstrap.servers", o->brokers},
	    {"group.id", gid}, /* names the client only: no subscribe, no commits */
	    {"client.id", "ws-gateway-presence"},
	    {"enable.auto.commit", "false"},
	    {"enable.auto.offset.store", "false"},
	    {"enable.partition.eof", "false"},
	    /* a fetch answers at 16 KiB or after 100 ms: one fetch per batch of records
	     * under churn, 10 idle fetches a second, at most 100 ms added */
	    {"fetch.wait.max.ms", "100"},
	    {"fetch.min.bytes", "16384"},
	    {"auto.offset.reset", "earliest"}, /* the view is the whole topic */
	    {"reconnect.backoff.ms", "50"},
	    {"reconnect.backoff.max.ms", "1000"},
	    {"socket.nagle.disable", "true"},
	};
	b->prod = client_new(RD_KAFKA_PRODUCER, pkv, ARRAY_LEN(pkv), b, err, errlen);
	if (!b->prod)
		goto fail;
	b->ptopic = rd_kafka_topic_new(b->prod, b->topic, NULL);
	if (!b->ptopic) {
		snprintf(err, errlen, "could not create the presence topic handle");
		goto fail;
	}
	b->cons = client_new(RD_KAFKA_CONSUMER, ckv, ARRAY_LEN(ckv), b, err, errlen);
	if (!b->cons)
		goto fail;
	rd_kafka_poll_set_consumer(b->cons);
	if (pthread_create(&b->thread, NULL, bus_main, b)) {
		snprintf(err, errlen, "could not start the presence thread");
		goto fail;
	}
	b->have_thread = 1;
	(void)pthread_setname_np(b->thread, "gw-presence");
	log_info("presence on", "{s:s, s:s, s:I, s:I}", "topic", b->topic, "gateway_id",
	         b->gateway_id, "ttl_ms", (json_int_t)b->ttl_ms, "heartbeat_ms",
	         (json_int_t)b->heartbeat_ms);
	return b;
fail:
	presence_bus_stop(b);
	return NULL;
}

static void lconn_free(void *v)
{
	lconn *lc = v;
	conn_unref(lc->c);
	free(lc->lists);
	free(lc);
}

static void llist_free(void *v)
{
	llist *l = v;
	free(l->v);
	free(l);
}

void presence_bus_stop(presence_bus *b)
{
	if (!b)
		return;
	atomic_store(&b->stop, 1);
	if (b->have_thread)
		pthread_join(b->thread, NULL);
	if (b->prod) {
		if (b->ptopic) {
			/* sockets still subscribed (none after a drain): their tombstones */
			hb_walk w = {0};
			twalk_r(b->by_conn, hb_collect, &w);
			for (size_t i = 0; i < w.n; i++)
				(void)rd_kafka_produce(b->ptopic, RD_KAFKA_PARTITION_UA,
				                       RD_KAFKA_MSG_F_COPY, NULL, 0, w.keys[i],
				                       strlen(w.keys[i]), NULL);
			free(w.keys);
			if (rd_kafka_flush(b->prod, FLUSH_MS))
				log_warn("presence records not flushed at stop", "{}");
			rd_kafka_topic_destroy(b->ptopic);
		}
		rd_kafka_destroy(b->prod);
	}
	if (b->cons) {
		(void)rd_kafka_consumer_close(b->cons);
		rd_kafka_destroy(b->cons);
	}
	tdestroy(b->by_conn, lconn_free);
	tdestroy(b->by_list, llist_free);
	free(b->dirty);
	presence_free(b->view);
	free(b->topic);
	free(b->gateway_id);
	free(b->secret);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
