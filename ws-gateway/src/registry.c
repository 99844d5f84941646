#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 16384

typedef struct user_ent {
	struct user_ent *next;
	conn **conns;
	size_t n, cap;
	size_t len; /* strlen(user) */
	char user[];
} user_ent;

struct registry {
	pthread_rwlock_t lock;
	user_ent *buckets[NBUCKETS];
	size_t users;
	conn **all; /* every attached connection (unordered) */
	size_t nall, capall;
	size_t max_per_user;
};

static size_t hash_len(const void *s, size_t len)
{
	const unsigned char *p = s;
	size_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h % NBUCKETS;
}

static size_t hash(const char *s)
{
	return hash_len(s, strlen(s));
}

registry *registry_new(size_t max_per_user)
{
	registry *r = xcalloc(1, sizeof(*r));
	pthread_rwlock_init(&r->lock, NULL);
	r->max_per_user = max_per_user;
	return r;
}

void registry_free(registry *r)
{
	if (!r)
		return;
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (user_ent *u = r->buckets[b], *nx; u; u = nx) {
			nx = u->next;
			free(u->conns);
			free(u);
		}
	}
	for (size_t i = 0; i < r->nall; i++)
		conn_unref(r->all[i]);
	free(r->all);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static user_ent *find(registry *r, const char *user, user_ent ***link)
{
	user_ent **pp = &r->buckets[hash(user)];
	for (; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->user, user))
			break;
	}
	if (link)
		*link = pp;
	return *pp;
}

int registry_attach(registry *r, conn *c, frame *first)
{
	int rc = REG_OK;
	pthread_rwlock_wrlock(&r->lock);
	if (r->nall == r->capall) {
		r->capall = r->capall ? r->capall * 2 : 256;
		r->all = xrealloc(r->all, r->capall * sizeof(*r->all));
	}
	*conn_registry_slot(c) = r->nall;
	r->all[r->nall++] = conn_ref(c);
	user_ent **link;
	user_ent *u = find(r, conn_user(c), &link);
	if (!u) {
		size_t l = strlen(conn_user(c));
		u = xcalloc(1, sizeof(*u) + l + 1);
		memcpy(u->user, conn_user(c), l + 1);
		u->len = l;
		*link = u;
		r->users++;
	}
	if (u->n >= r->max_per_user) {
		rc = REG_USER_FULL;
	} else {
		if (u->n == u->cap) {
			u->cap = u->cap ? u->cap * 2 : 4;
			u->conns = xrealloc(u->conns, u->cap * sizeof(*u->conns));
		}
		if (first)
			(void)conn_enqueue(c, first);
		u->conns[u->n++] = c;
	}
	if (u->n == 0) { /* refused and alone: do not keep an empty user */
		*link = u->next;
		free(u->conns);
		free(u);
		r->users--;
	}
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

void registry_detach(registry *r, conn *c)
{
	int found = 0;
	pthread_rwlock_wrlock(&r->lock);
	/* The connection knows its slot: no scan of every connection. */
	size_t i = *conn_registry_slot(c);
	if (i < r->nall && r->all[i] == c) {
		r->all[i] = r->all[--r->nall];
		*conn_registry_slot(r->all[i]) = i;
		found = 1;
	}
	user_ent **link;
	user_ent *u = find(r, conn_user(c), &link);
	if (u) {
		/* at most MAX_CONNECTIONS_PER_USER entries */
		for (i = 0; i < u->n; i++) {
			if (u->conns[i] == c) {
				/* keep the order of the rest (not required, but cheap) */
				memmove(&u->conns[i], &u->conns[i + 1],
				        (u->n - i - 1) * sizeof(conn *));
				u->n--;
				break;
			}
		}
		if (u->n == 0) {
			*link = u->next;
			free(u->conns);
			free(u);
			r->users--;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (found)
		conn_unref(c);
}

int registry_has(registry *r, const void *user, size_t len)
{
	int found = 0;
	pthread_rwlock_rdlock(&r->lock);
	for (user_ent *u = r->buckets[hash_len(user, len)]; u; u = u->next) {
		if (u->len == len && !memcmp(u->user, user, len)) {
			found = u->n > 0;
			break;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return found;
}

size_t registry_deliver(registry *r, const char *user, frame *f)
{
	return registry_deliver_batch(r, user, f, NULL);
}

size_t registry_deliver_batch(registry *r, const char *user, frame *f, conn_batch *b)
{
	size_t n = 0;
	pthread_rwlock_rdlock(&r->lock);
	user_ent *u = find(r, user, NULL);
	if (u) {
		/* conn_enqueue takes only the connection's own mutex and never does I/O */
		for (size_t i = 0; i < u->n; i++) {
			if (conn_enqueue_batch(u->conns[i], f, b) == CONN_QUEUED)
				n++;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return n;
}

conn **registry_snapshot(registry *r, size_t *n)
{
	pthread_rwlock_rdlock(&r->lock);
	conn **v = xmalloc((r->nall ? r->nall : 1) * sizeof(*v));
	for (size_t i = 0; i < r->nall; i++)
		v[i] = conn_ref(r->all[i]);
	*n = r->nall;
	pthread_rwlock_unlock(&r->lock);
	return v;
}

void registry_snapshot_free(conn **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		conn_unref(v[i]);
	free(v);
}

size_t registry_connections(registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->nall;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

size_t registry_users(registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->users;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

json_t *registry_status(registry *r, size_t max_users)
{
	json_t *per = json_object();
	size_t listed = 0, unlisted = 0;
	pthread_rwlock_rdlock(&r->lock);
	size_t nall = r->nall, users = r->users;
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (user_ent *u = r->buckets[b]; u; u = u->next) {
			if (listed < max_users) {
				json_object_set_new(per, u->user, json_integer((json_int_t)u->n));
				listed++;
			} else {
				unlisted++;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return json_pack("{s:I, s:I, s:o, s:I}", "connections", (json_int_t)nall, "active_users",
	                 (json_int_t)users, "connections_per_user", per, "users_not_listed",
	                 (json_int_t)unlisted);
}
