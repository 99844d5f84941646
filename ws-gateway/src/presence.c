#include "presence.h"

#include "common/json.h"

#include <jansson.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

/* The largest value a record may have ({"expires_at_ms":N} and a little room). */
#define VALUE_MAX 256

typedef struct psub {
	char user[USER_ID_MAX + 1];
	char conn[PRESENCE_CONN_MAX + 1];
	int64_t exp_ms;
} psub;

/* One list's subscriptions (unordered). */
typedef struct plist {
	char id[UUID_STR_LEN];
	psub *e;
	size_t n, cap;
} plist;

struct presence {
	pthread_mutex_t mu;
	void *root; /* tsearch tree of plist, by id */
	size_t count, max;
};

static int plist_cmp(const void *a, const void *b)
{
	return strcmp(((const plist *)a)->id, ((const plist *)b)->id);
}

presence *presence_new(size_t max_entries)
{
	presence *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	p->max = max_entries;
	return p;
}

static void plist_free(void *v)
{
	plist *l = v;
	free(l->e);
	free(l);
}

void presence_free(presence *p)
{
	if (!p)
		return;
	tdestroy(p->root, plist_free);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int conn_valid(const char *s, size_t n)
{
	if (n < 1 || n > PRESENCE_CONN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

int presence_key(const char *list, const char *user, const char *conn, char out[PRESENCE_KEY_MAX])
{
	if (!uuid_valid(list) || strlen(list) != UUID_STR_LEN - 1 || !user_id_valid(user) ||
	    !conn_valid(conn, strlen(conn)))
		return -1;
	snprintf(out, PRESENCE_KEY_MAX, "%s|%s|%s", list, user, conn);
	return 0;
}

/* Splits key into its parts; 0, or -1 when it is not a presence key. */
static int parse_key(const char *key, size_t klen, char list[UUID_STR_LEN],
                     char user[USER_ID_MAX + 1], char conn[PRESENCE_CONN_MAX + 1])
{
	if (klen >= PRESENCE_KEY_MAX || klen < UUID_STR_LEN + 3 || key[UUID_STR_LEN - 1] != '|')
		return -1;
	memcpy(list, key, UUID_STR_LEN - 1);
	list[UUID_STR_LEN - 1] = '\0';
	if (!uuid_valid(list))
		return -1;
	const char *u = key + UUID_STR_LEN, *end = key + klen;
	const char *bar = memchr(u, '|', (size_t)(end - u));
	if (!bar || bar == u || (size_t)(bar - u) > USER_ID_MAX)
		return -1;
	memcpy(user, u, (size_t)(bar - u));
	user[bar - u] = '\0';
	if (strlen(user) != (size_t)(bar - u) || !user_id_valid(user))
		return -1;
	size_t cl = (size_t)(end - bar - 1);
	if (!conn_valid(bar + 1, cl))
		return -1;
	memcpy(conn, bar + 1, cl);
	conn[cl] = '\0';
	return 0;
}

/* The expiry of a value ({"expires_at_ms":N}); -1 when it is not one. */
static int64_t parse_value(const char *value, size_t vlen)
{
	if (vlen > VALUE_MAX)
		return -1;
	json_error_t jerr;
	json_t *j = json_load_untrusted(value, vlen, JSON_REJECT_DUPLICATES, &jerr);
	json_t *e = json_object_get(j, "expires_at_ms");
	int64_t exp = json_is_integer(e) && json_integer_value(e) > 0 ? json_integer_value(e) : -1;
	json_decref(j);
	return exp;
}

static size_t devices(const plist *l, const char *user)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += strcmp(l->e[i].user, user) == 0;
	return n;
}

int presence_apply(presence *p, const char *key, size_t klen, const char *value, size_t vlen,
                   int64_t now_ms, char list[UUID_STR_LEN])
{
	char user[USER_ID_MAX + 1], conn[PRESENCE_CONN_MAX + 1];
	list[0] = '\0';
	if (!key || parse_key(key, klen, list, user, conn))
		return PRESENCE_BAD;
	int64_t exp = 0;
	if (value && vlen) {
		exp = parse_value(value, vlen);
		if (exp < 0)
			return PRESENCE_BAD;
	}
	int on = exp > now_ms; /* an expired record is as good as a tombstone */
	plist probe;
	memcpy(probe.id, list, UUID_STR_LEN);
	int rc = PRESENCE_UNCHANGED;
	pthread_mutex_lock(&p->mu);
	void *node = tfind(&probe, &p->root, plist_cmp);
	plist *l = node ? *(plist **)node : NULL;
	if (!l && !on)
		goto out;
	if (!l) {
		if (p->count >= p->max) {
			rc = PRESENCE_FULL;
			goto out;
		}
		l = xcalloc(1, sizeof(*l));
		memcpy(l->id, list, UUID_STR_LEN);
		if (!tsearch(l, &p->root, plist_cmp))
			abort();
	}
	size_t before = devices(l, user), at = l->n;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].user, user) == 0 && strcmp(l->e[i].conn, conn) == 0)
			at = i;
	if (on) {
		if (at == l->n) {
			if (p->count >= p->max) {
				rc = PRESENCE_FULL;
				goto out;
			}
			l->e = xgrow(l->e, &l->cap, l->n + 1, sizeof(psub));
			memset(&l->e[at], 0, sizeof(psub));
			memcpy(l->e[at].user, user, strlen(user) + 1);
			memcpy(l->e[at].conn, conn, strlen(conn) + 1);
			l->n++;
			p->count++;
		}
		l->e[at].exp_ms = exp;
	} else if (at < l->n) {
		l->e[at] = l->e[--l->n];
		p->count--;
	}
	rc = devices(l, user) != before ? PRESENCE_CHANGED : PRESENCE_UNCHANGED;
	if (l->n == 0) {
		tdelete(l, &p->root, plist_cmp);
		plist_free(l);
	}
out:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* twalk_r's collection of every list. */
typedef struct walk {
	plist **all;
	size_t n, cap;
} walk;

static void collect(const void *node, VISIT which, void *arg)
{
	if (which != postorder && which != leaf)
		return;
	walk *w = arg;
	w->all = xgrow(w->all, &w->cap, w->n + 1, sizeof(plist *));
	w->all[w->n++] = *(plist *const *)node;
}

size_t presence_expire(presence *p, int64_t now_ms, void (*changed)(const char *list, void *arg),
                       void *arg)
{
	walk w = {0};
	size_t dropped = 0, nchanged = 0;
	char(*ids)[UUID_STR_LEN] = NULL;
	pthread_mutex_lock(&p->mu);
	twalk_r(p->root, collect, &w);
	ids = xcalloc(w.n + 1, sizeof(*ids));
	for (size_t k = 0; k < w.n; k++) {
		plist *l = w.all[k];
		size_t before = l->n;
		for (size_t i = 0; i < l->n;) {
			if (l->e[i].exp_ms <= now_ms)
				l->e[i] = l->e[--l->n];
			else
				i++;
		}
		if (l->n == before)
			continue;
		dropped += before - l->n;
		memcpy(ids[nchanged++], l->id, UUID_STR_LEN);
		if (l->n == 0) {
			tdelete(l, &p->root, plist_cmp);
			plist_free(l);
		}
	}
	p->count -= dropped;
	pthread_mutex_unlock(&p->mu);
	for (size_t k = 0; changed && k < nchanged; k++)
		changed(ids[k], arg);
	free(ids);
	free(w.all);
	return dropped;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const psub *)a)->user, ((const psub *)b)->user);
}

char *presence_message(presence *p, const char *list, size_t *len)
{
	plist probe;
	snprintf(probe.id, sizeof(probe.id), "%s", list);
	psub *copy = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->mu);
	void *node = tfind(&probe, &p->root, plist_cmp);
	if (node) {
		plist *l = *(plist **)node;
		n = l->n;
		copy = xcalloc(n + 1, sizeof(psub));
		memcpy(copy, l->e, n * sizeof(psub));
	}
	pthread_mutex_unlock(&p->mu);
	if (n)
		qsort(copy, n, sizeof(psub), entry_cmp);
	json_t *online = json_array();
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(copy[j].user, copy[i].user) == 0)
			j++;
		json_array_append_new(online, json_pack("{s:s, s:I}", "user_id", copy[i].user,
		                                        "devices", (json_int_t)(j - i)));
		i = j;
	}
	free(copy);
	json_t *m =
	    json_pack("{s:s, s:s, s:o}", "type", "presence", "list_id", list, "online", online);
	char *s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(m);
	if (!s)
		abort();
	*len = strlen(s);
	return s;
}

size_t presence_count(presence *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->count;
	pthread_mutex_unlock(&p->mu);
	return n;
}
