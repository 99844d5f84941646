/* fuzz_task_body: the bodies of the task mutations, checked as backend-api's
 * handlers check them (backend-api/src/reqparse.c): create (POST /api/v1/tasks),
 * patch (PATCH /api/v1/tasks/{id}), move (POST .../{id}/move) and order (PUT
 * /api/v1/tasks/order). The first byte picks the body, the rest is the JSON sent.
 *
 * What passes must be what the handler goes on to rely on: a due_at the shared
 * validation accepts is one rfc3339_parse reads (tasks.c treats the opposite as
 * impossible), a priority is one of three, ids are lower-case task ids. */
#include "common/event.h"
#include "common/json.h"
#include "common/rfc3339.h"
#include "reqparse.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static const char task_id[] = "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60";

static int lower_id(const char *s)
{
	if (!uuid_valid(s))
		return 0;
	for (; *s; s++)
		if (isupper((unsigned char)*s))
			return 0;
	return 1;
}

/* What a body that passed rq_task_fields may be relied on for. */
static void check_fields(const json_t *b, int require_title)
{
	const json_t *v = json_object_get(b, "title");
	CHECK(!require_title || json_is_string(v));
	if ((v = json_object_get(b, "priority"))) {
		const char *p = json_string_value(v);
		CHECK(p && (!strcmp(p, "low") || !strcmp(p, "medium") || !strcmp(p, "high")));
	}
	if ((v = json_object_get(b, "due_at")) && !json_is_null(v)) {
		int64_t us;
		CHECK(json_is_string(v) && rfc3339_parse(json_string_value(v), &us) == RFC3339_OK);
	}
	v = json_object_get(b, "description");
	CHECK(!v || json_is_null(v) || json_is_string(v));
	v = json_object_get(b, "completed");
	CHECK(!v || json_is_boolean(v));
}

static void create(json_t *b)
{
	static const char *const allowed[] = {"id",     "title",     "description", "priority",
	                                      "due_at", "completed", NULL};
	if (rq_unknown_key(b, allowed))
		return;
	char id[UUID_STR_LEN];
	json_t *jid = json_object_get(b, "id");
	if (jid) {
		if (!json_is_string(jid) || !uuid_valid(json_string_value(jid)))
			return;
		memcpy(id, json_string_value(jid), UUID_STR_LEN);
		rq_lower(id);
		CHECK(lower_id(id));
	} else {
		memcpy(id, task_id, UUID_STR_LEN);
	}
	const char *field;
	char why[256];
	if (rq_task_fields(b, id, 1, &field, why, sizeof(why))) {
		CHECK(field && why[0]);
		return;
	}
	check_fields(b, 1);
}

static void patch(json_t *b)
{
	static const char *const allowed[] = {"title",     "description",  "priority", "due_at",
	                                      "completed", "base_version", NULL};
	if (rq_unknown_key(b, allowed))
		return;
	int64_t base;
	if (rq_base_version(b, &base))
		return;
	CHECK(base == -1 || base >= 1);
	if (json_object_size(b) == (base >= 0 ? 1u : 0u))
		return;
	json_t *fields = json_copy(b);
	json_object_del(fields, "base_version");
	const char *field;
	char why[256];
	if (rq_task_fields(fields, task_id, 0, &field, why, sizeof(why)) == 0)
		check_fields(fields, 0);
	else
		CHECK(field && why[0]);
	json_decref(fields);
}

static void move(json_t *b)
{
	const char *field;
	int after, has_anchor;
	char anchor[UUID_STR_LEN];
	int rc = rq_move_body(b, &field, &after, &has_anchor, anchor);
	CHECK(rc == 0 || rc == RQ_MOVE_SHAPE || rc == RQ_MOVE_ANCHOR);
	CHECK(!strcmp(field, "before") || !strcmp(field, "after"));
	if (rc == 0) {
		CHECK(json_object_size(b) == 1);
		CHECK(after == !strcmp(field, "after"));
		CHECK(!has_anchor || lower_id(anchor));
	}
}

static void order(json_t *b)
{
	const char **ids;
	size_t n, bad;
	int rc = rq_order_body(b, &ids, &n, &bad);
	if (rc) {
		CHECK(!ids && (rc != RQ_ORDER_BAD_ID ||
		               bad < json_array_size(json_object_get(b, "order"))));
		return;
	}
	CHECK(n <= TASK_ORDER_MAX && n == json_array_size(json_object_get(b, "order")));
	for (size_t i = 0; i < n; i++)
		CHECK(lower_id(ids[i]) &&
		      !strcasecmp(ids[i], json_string_value(
		                              json_array_get(json_object_get(b, "order"), i))));
	CHECK(ids[n] == NULL);
	free((void *)ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return -1;
	json_error_t jerr;
	json_t *b =
	    json_load_untrusted((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!b)
		return 0;
	if (json_is_object(b)) {
		switch (data[0] & 3) {
		case 0:
			create(b);
			break;
		case 1:
			patch(b);
			break;
		case 2:
			move(b);
			break;
		default:
			order(b);
		}
	}
	json_decref(b);
	return 0;
}
