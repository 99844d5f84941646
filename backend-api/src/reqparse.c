#include "reqparse.h"

#include "common/event.h"
#include "common/http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int64_t rq_count(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	return strtoll(s, NULL, 10);
}

int rq_limit(const char *query, long def, long max, long *out)
{
	char buf[32];
	*out = def;
	int n = http_query_param(query, "limit", buf, sizeof(buf));
	if (n == -1)
		return 0;
	int64_t l = n >= 0 ? rq_count(buf) : -1;
	if (l < 1 || l > max)
		return -1;
	*out = (long)l;
	return 0;
}

int rq_since(const char *query, int64_t *out)
{
	char buf[32];
	int n = http_query_param(query, "since", buf, sizeof(buf));
	*out = n >= 0 ? rq_count(buf) : -1;
	return *out < 0 ? -1 : 0;
}

int rq_cursor(const char *query, char buf[RQ_CURSOR_BUF], const char **after)
{
	*after = NULL;
	int n = http_query_param(query, "cursor", buf, RQ_CURSOR_BUF);
	if (n == -1)
		return 0;
	size_t pl = strlen(RQ_CURSOR_PREFIX);
	if (n < 0 || strncmp(buf, RQ_CURSOR_PREFIX, pl) != 0 || !poskey_valid(buf + pl))
		return -1;
	*after = buf + pl;
	return 0;
}

int64_t rq_if_match(const char *h)
{
	if (!h)
		return -1;
	while (*h == ' ')
		h++;
	if (strcmp(h, "*") == 0)
		return -1;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	int quoted = *h == '"';
	if (quoted)
		h++;
	if (!isdigit((unsigned char)*h))
		return INT64_MAX;
	char *end;
	long long v = strtoll(h, &end, 10);
	if (quoted && *end++ != '"')
		return INT64_MAX;
	while (*end == ' ')
		end++;
	return *end ? INT64_MAX : (int64_t)v;
}

int rq_idem_key_valid(const char *key)
{
	size_t n = strlen(key);
	int ok = n >= 1 && n <= RQ_IDEM_KEY_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)key[i]) || strchr("._:-", key[i]);
	return ok;
}

void rq_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

const char *rq_unknown_key(const json_t *o, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)o, key, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok)
			return key;
	}
	return NULL;
}

int rq_task_fields(const json_t *o, const char *id, int require_title, const char **field,
                   char *why, size_t whylen)
{
	json_t *copy = json_copy((json_t *)o);
	json_object_set_new(copy, "id", json_string(id));
	*field = "body";
	int bad = event_validate_task(copy, require_title, field, why, whylen);
	json_decref(copy);
	return bad ? -1 : 0;
}

int rq_base_version(const json_t *o, int64_t *base)
{
	*base = -1;
	json_t *bv = json_object_get(o, "base_version");
	if (!bv)
		return 0;
	if (!json_is_integer(bv) || json_integer_value(bv) < 1)
		return -1;
	*base = (int64_t)json_integer_value(bv);
	return 0;
}

int rq_move_id(const char *rest, char id[UUID_STR_LEN])
{
	const char *slash = rest ? strchr(rest, '/') : NULL;
	size_t idlen = slash ? (size_t)(slash - rest) : 0;
	if (idlen != UUID_STR_LEN - 1)
		return -1;
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	if (!uuid_valid(id))
		return -1;
	rq_lower(id);
	return 0;
}

int rq_move_body(const json_t *b, const char **field, int *after, int *has_anchor,
                 char anchor[UUID_STR_LEN])
{
	json_t *bef = json_object_get(b, "before"), *aft = json_object_get(b, "after");
	*field = bef ? "before" : "after";
	*after = aft != NULL;
	*has_anchor = 0;
	json_t *v = bef ? bef : aft;
	if (json_object_size(b) != 1 || !v)
		return RQ_MOVE_SHAPE;
	if (json_is_null(v))
		return 0;
	if (!json_is_string(v) || !uuid_valid(json_string_value(v)))
		return RQ_MOVE_ANCHOR;
	memcpy(anchor, json_string_value(v), UUID_STR_LEN);
	rq_lower(anchor);
	*has_anchor = 1;
	return 0;
}

int rq_order_body(const json_t *b, const char ***ids, size_t *n, size_t *bad)
{
	*ids = NULL;
	*n = 0;
	*bad = 0;
	json_t *order = json_object_get(b, "order");
	if (!json_is_array(order))
		return RQ_ORDER_NOT_ARRAY;
	size_t count = json_array_size(order);
	if (count > TASK_ORDER_MAX)
		return RQ_ORDER_TOO_LONG;
	for (size_t i = 0; i < count; i++) {
		const char *s = json_string_value(json_array_get(order, i));
		if (!s || !uuid_valid(s)) {
			*bad = i;
			return RQ_ORDER_BAD_ID;
		}
	}
	/* the pointers, then the strings they point at */
	const char **v = xmalloc((count + 1) * sizeof(char *) + count * UUID_STR_LEN);
	char *str = (char *)(v + count + 1);
	for (size_t i = 0; i < count; i++) {
		char *d = str + i * UUID_STR_LEN;
		memcpy(d, json_string_value(json_array_get(order, i)), UUID_STR_LEN);
		rq_lower(d);
		v[i] = d;
	}
	v[count] = NULL;
	*ids = v;
	*n = count;
	return 0;
}

int rq_list_id(const char *query, char buf[UUID_STR_LEN])
{
	buf[0] = '\0';
	int n = http_query_param(query, "list_id", buf, UUID_STR_LEN);
	if (n == -1)
		return 0;
	if (n < 0 || !uuid_valid(buf)) {
		buf[0] = '\0';
		return -1;
	}
	rq_lower(buf);
	return 0;
}

int rq_list_name_valid(const json_t *v)
{
	if (!json_is_string(v))
		return 0;
	size_t chars = 0, blank = 1;
	for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++) {
		chars += (*p & 0xC0) != 0x80;
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			blank = 0;
	}
	return !blank && chars >= 1 && chars <= RQ_LIST_NAME_MAX;
}

int rq_member_role_valid(const char *role)
{
	return role && (strcmp(role, "editor") == 0 || strcmp(role, "viewer") == 0);
}

int rq_list_path(const char *rest, char id[UUID_STR_LEN], int *sub, char user[USER_ID_MAX + 1])
{
	id[0] = user[0] = '\0';
	const char *slash = strchr(rest, '/');
	size_t il = slash ? (size_t)(slash - rest) : strlen(rest);
	if (il != UUID_STR_LEN - 1)
		return -1;
	memcpy(id, rest, il);
	id[il] = '\0';
	if (!uuid_valid(id))
		return -1;
	rq_lower(id);
	if (!slash) {
		*sub = RQ_LIST_SELF;
		return 0;
	}
	const char *s = slash + 1;
	if (strcmp(s, "members") == 0) {
		*sub = RQ_LIST_MEMBERS;
		return 0;
	}
	if (strcmp(s, "owner") == 0) {
		*sub = RQ_LIST_OWNER;
		return 0;
	}
	if (strcmp(s, "presence-ticket") == 0) {
		*sub = RQ_LIST_PRESENCE;
		return 0;
	}
	if (strncmp(s, "members/", 8) == 0 && user_id_valid(s + 8)) {
		snprintf(user, USER_ID_MAX + 1, "%s", s + 8);
		*sub = RQ_LIST_MEMBER;
		return 0;
	}
	return -1;
}
