#include "common/event.h"
#include "common/json.h"
#include "common/poskey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[EV__COUNT] = {
    "task.created",   "task.updated", "task.completed", "task.deleted",
    "task.reordered", "task.moved",   "list.created",   "list.updated",
    "list.deleted",   "list.shared",  "list.unshared",
};

int event_type_is_list(event_type t)
{
	return t >= EV_LIST_CREATED && t < EV__COUNT;
}

/* The longest list name, in characters (migration 0006 checks it too). */
#define LIST_NAME_MAX 200

const char *event_type_name(event_type t)
{
	return (unsigned)t < EV__COUNT ? type_names[t] : NULL;
}

int event_type_parse(const char *name)
{
	for (int i = 0; name && i < EV__COUNT; i++)
		if (strcmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

#define FAIL(fld, ...)                                                                             \
	do {                                                                                       \
		if (field)                                                                         \
			*field = fld;                                                              \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		return -1;                                                                         \
	} while (0)

static int optional_string(const json_t *o, const char *key, int nullable, size_t maxchars,
                           const char **field, char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);
	if (!v || (nullable && json_is_null(v)))
		return 0;
	if (!json_is_string(v))
		FAIL(key, "%s must be a string%s", key, nullable ? " or null" : "");
	/* Characters, not bytes: count UTF-8 lead bytes (jansson has validated UTF-8). */
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++)
		chars += (*p & 0xC0) != 0x80;
	if (chars > maxchars)
		FAIL(key, "%s must be at most %zu characters", key, maxchars);
	return 0;
}

int event_validate_task(const json_t *task, int require_title, const char **field, char *err,
                        size_t errlen)
{
	if (!json_is_object(task))
		FAIL("task", "task must be an object");
	const json_t *id = json_object_get(task, "id");
	if (!json_is_string(id) || json_string_length(id) == 0 ||
	    json_string_length(id) > TASK_ID_MAX)
		FAIL("id", "task.id must be a non-empty string of at most %d bytes", TASK_ID_MAX);
	const json_t *title = json_object_get(task, "title");
	if (title || require_title) {
		if (!json_is_string(title))
			FAIL("title", "title must be a string");
		const char *t = json_string_value(title);
		while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
			t++;
		if (*t == '\0')
			FAIL("title", "title must not be empty");
		if (optional_string(task, "title", 0, TASK_TITLE_MAX, field, err, errlen))
			return -1;
	}
	if (optional_string(task, "description", 1, TASK_DESCRIPTION_MAX, field, err, errlen))
		return -1;
	const json_t *prio = json_object_get(task, "priority");
	if (prio) {
		const char *p = json_string_value(prio);
		if (!p || (strcmp(p, "low") && strcmp(p, "medium") && strcmp(p, "high")))
			FAIL("priority", "priority must be one of low, medium, high");
	}
	const json_t *due = json_object_get(task, "due_at");
	if (due && !json_is_null(due)) {
		int64_t us;
		if (!json_is_string(due) || time_parse_iso8601(json_string_value(due), &us))
			FAIL("due_at", "due_at must be an RFC 3339 date-time or null");
	}
	const json_t *done = json_object_get(task, "completed");
	if (done && !json_is_boolean(done))
		FAIL("completed", "completed must be a boolean");
	const json_t *pos = json_object_get(task, "position");
	if (pos && !json_is_integer(pos) && !poskey_valid(json_string_value(pos)))
		FAIL("position", "position must be a position key (1..%d of 0-9 A-Z a-z)",
		     POSKEY_MAX);
	const json_t *ver = json_object_get(task, "version");
	if (ver && !json_is_integer(ver))
		FAIL("version", "version must be an integer");
	return 0;
}

#undef FAIL
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		goto fail;                                                                         \
	} while (0)

int event_parse(const char *buf, size_t len, event *ev, char *err, size_t errlen)
{
	memset(ev, 0, sizeof(*ev));
	ev->seq = -1;
	json_error_t jerr;
	json_t *root = json_load_untrusted(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "not valid JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(root))
		FAIL("event must be a JSON object");

	int type = event_type_parse(json_string_value(json_object_get(root, "event_type")));
	if (type < 0)
		FAIL("event_type missing or unknown");
	ev->type = (event_type)type;

	const char *user = json_string_value(json_object_get(root, "user_id"));
	if (!user_id_valid(user))
		FAIL("user_id missing or invalid");
	memcpy(ev->user_id, user, strlen(user) + 1);

	json_t *seq = json_object_get(root, "seq");
	if (seq && !json_is_null(seq)) {
		if (!json_is_integer(seq) || json_integer_value(seq) < 1)
			FAIL("seq must be a positive integer");
		ev->seq = json_integer_value(seq);
	}
	json_t *eid = json_object_get(root, "event_id");
	if (eid && !json_is_null(eid)) {
		if (!uuid_valid(json_string_value(eid)))
			FAIL("event_id must be a UUID");
		ev->event_id = json_string_value(eid);
	}
	json_t *origin = json_object_get(root, "origin");
	if (origin && !json_is_null(origin)) {
		if (!json_is_string(origin) || json_string_length(origin) > ORIGIN_MAX)
			FAIL("origin must be a string of at most %d bytes or null", ORIGIN_MAX);
		ev->origin = json_string_value(origin);
	}
	json_t *ts = json_object_get(root, "timestamp");
	if (ts && !json_is_null(ts)) {
		if (!json_is_string(ts) ||
		    time_parse_iso8601(json_string_value(ts), &ev->timestamp_us))
			FAIL("timestamp must be an RFC 3339 date-time");
		ev->timestamp = json_string_value(ts);
	}

	json_t *lid = json_object_get(root, "list_id");
	if (lid && !json_is_null(lid)) {
		if (!uuid_valid(json_string_value(lid)))
			FAIL("list_id must be a UUID");
		ev->list_id = json_string_value(lid);
	}
	json_t *actor = json_object_get(root, "actor");
	if (actor && !json_is_null(actor)) {
		if (!user_id_valid(json_string_value(actor)))
			FAIL("actor must be a user id");
		ev->actor = json_string_value(actor);
	}
	json_t *reload = json_object_get(root, "reload");
	if (reload && !json_is_boolean(reload))
		FAIL("reload must be a boolean");
	ev->reload = json_is_true(reload);

	if (event_type_is_list(ev->type)) {
		json_t *list = json_object_get(root, "list");
		if (!json_is_object(list))
			FAIL("%s needs a list object", type_names[type]);
		if (!uuid_valid(json_string_value(json_object_get(list, "id"))))
			FAIL("list.id must be a UUID");
		json_t *name = json_object_get(list, "name");
		if (name) {
			const char *field = NULL;
			char why[160];
			if (!json_is_string(name) || json_string_length(name) == 0 ||
			    optional_string(list, "name", 0, LIST_NAME_MAX, &field, why,
			                    sizeof(why)))
				FAIL("list.name must be 1..%d characters", LIST_NAME_MAX);
		}
		json_t *owner = json_object_get(list, "owner_id");
		if (owner && !user_id_valid(json_string_value(owner)))
			FAIL("list.owner_id must be a user id");
		json_t *role = json_object_get(list, "role");
		if (role) {
			const char *r = json_string_value(role);
			if (!r ||
			    (strcmp(r, "owner") && strcmp(r, "editor") && strcmp(r, "viewer")))
				FAIL("list.role must be one of owner, editor, viewer");
		}
		ev->list = list;
	} else if (ev->type == EV_TASK_REORDERED && json_object_get(root, "positions")) {
		json_t *positions = json_object_get(root, "positions");
		if (!json_is_object(positions))
			FAIL("positions must be an object of task id to position key");
		const char *id;
		json_t *key;
		json_object_foreach(positions, id, key)
		{
			if (strlen(id) == 0 || strlen(id) > TASK_ID_MAX)
				FAIL("positions: a key is not a task id");
			if (!poskey_valid(json_string_value(key)))
				FAIL("positions[\"%.40s\"] must be a position key", id);
		}
		ev->positions = positions;
	} else if (ev->type == EV_TASK_REORDERED) {
		json_t *order = json_object_get(root, "order");
		if (!json_is_array(order))
			FAIL("task.reordered needs a positions object");
		size_t i;
		json_t *id;
		json_array_foreach(order, i, id)
		{
			if (!json_is_string(id) || json_string_length(id) == 0 ||
			    json_string_length(id) > TASK_ID_MAX)
				FAIL("order[%zu] must be a task id", i);
		}
		ev->order = order;
	} else {
		json_t *task = json_object_get(root, "task");
		const char *field = NULL;
		char why[160];
		if (!task)
			FAIL("%s needs a task object", type_names[type]);
		if (event_validate_task(task, 0, &field, why, sizeof(why)))
			FAIL("task: %s", why);
		if (ev->type == EV_TASK_MOVED && !json_is_string(json_object_get(task, "position")))
			FAIL("task.moved needs the task's position key");
		ev->task = task;
	}
	ev->root = root;
	return 0;
fail:
	json_decref(root);
	memset(ev, 0, sizeof(*ev));
	ev->seq = -1;
	return -1;
}

void event_clear(event *ev)
{
	if (!ev)
		return;
	json_decref(ev->root);
	memset(ev, 0, sizeof(*ev));
	ev->seq = -1;
}

char *event_ws_message(const event *ev, size_t *len)
{
	json_t *m = json_pack("{s:s, s:s}", "type", "task_update", "event", type_names[ev->type]);
	json_object_set_new(m, "event_id", ev->event_id ? json_string(ev->event_id) : json_null());
	json_object_set_new(m, "user_id", json_string(ev->user_id));
	json_object_set_new(m, "seq", ev->seq > 0 ? json_integer(ev->seq) : json_null());
	if (ev->task)
		json_object_set(m, "task", ev->task);
	if (ev->positions)
		json_object_set(m, "positions", ev->positions);
	if (ev->order)
		json_object_set(m, "order", ev->order);
	if (ev->list)
		json_object_set(m, "list", ev->list);
	json_object_set_new(m, "origin", ev->origin ? json_string(ev->origin) : json_null());
	json_object_set_new(m, "timestamp",
	                    ev->timestamp ? json_string(ev->timestamp) : json_null());
	if (ev->list_id)
		json_object_set_new(m, "list_id", json_string(ev->list_id));
	if (ev->actor)
		json_object_set_new(m, "actor", json_string(ev->actor));
	if (ev->reload)
		json_object_set_new(m, "reload", json_true());
	char *s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(m);
	if (!s)
		abort();
	*len = strlen(s);
	return s;
}
