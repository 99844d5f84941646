/* event: the task event of proto/task-event.schema.json, the one contract between
 * backend-api (which writes events) and ws-gateway (which reads them), and the
 * WebSocket message a client receives for it.
 *
 * The full form carries event_id, seq, origin and timestamp; the minimal form typed
 * by hand into a console producer, {"event_type":"task.created","user_id":"u1",
 * "task":{"id":"t1",...}}, is valid too (no seq). */
#ifndef TASKSYNC_EVENT_H
#define TASKSYNC_EVENT_H

#include "common/util.h"

#include <jansson.h>
#include <stdint.h>

typedef enum {
	EV_TASK_CREATED = 0,
	EV_TASK_UPDATED,
	EV_TASK_COMPLETED,
	EV_TASK_DELETED,
	EV_TASK_REORDERED, /* PUT /api/v1/tasks/order: "positions" {id: key} */
	EV_TASK_MOVED,     /* POST /api/v1/tasks/{id}/move: "task" {id, position} */
	/* Lists (issue 13): "list" {id, name, ...}; each goes to one member, on that
	 * member's seq, like a task event of a shared list. */
	EV_LIST_CREATED,  /* POST /api/v1/lists: to the owner */
	EV_LIST_UPDATED,  /* renamed, or ownership transferred: to every member */
	EV_LIST_DELETED,  /* to every member; its tasks are gone */
	EV_LIST_SHARED,   /* to a member added (or whose role changed): "list" with the
	                     member's role and "reload": true (GET the list's tasks) */
	EV_LIST_UNSHARED, /* to a member removed or leaving: no later event of the list */
	EV__COUNT
} event_type;

#define TASK_TITLE_MAX       500   /* characters */
#define TASK_DESCRIPTION_MAX 10000 /* characters */
#define TASK_ID_MAX          128   /* bytes */
#define ORIGIN_MAX           128   /* bytes */
/* The largest event any API call produces, by construction: a task event carries one
 * task (title and description bounded above: at most 6 bytes of JSON per character),
 * task.moved one id and key, task.reordered at most TASK_ORDER_MAX positions. */
#define EVENT_MAX_BYTES 65536
/* The most tasks PUT /api/v1/tasks/order renumbers (its event: ~45 bytes a task). */
#define TASK_ORDER_MAX 1000

typedef struct event {
	event_type type;
	char user_id[USER_ID_MAX + 1];
	int64_t seq;           /* the user's sequence number; -1 when absent */
	int64_t timestamp_us;  /* wall clock of the change; 0 when absent */
	const char *event_id;  /* borrowed from root; NULL when absent */
	const char *origin;    /* borrowed from root; NULL when absent or null */
	const char *timestamp; /* borrowed from root; NULL when absent */
	json_t *task;          /* borrowed from root; NULL for task.reordered and list.* */
	json_t *list;          /* borrowed; list.*: the list object {id, name, ...} */
	const char *list_id;   /* borrowed; the list of the change (absent in events
	                          written before lists) */
	const char *actor;     /* borrowed; the user who made the change, or NULL */
	int reload;            /* list.shared: the client should GET the list's tasks */
	json_t *positions;     /* borrowed; task.reordered: {id: position key} */
	json_t *order;         /* borrowed; task.reordered written before migration 0004:
	                          the id array (legacy; positions is NULL then) */
	json_t *root;          /* the parsed document, owned */
} event;

/* "task.created" ... for a type; NULL for an invalid one. */
const char *event_type_name(event_type t);
/* The type for a name; -1 when unknown. */
int event_type_parse(const char *name);

/* Parses and validates one event (a JSON document of len bytes, not necessarily
 * NUL-terminated). On success returns 0 and fills ev (release with event_clear);
 * otherwise -1 with a short reason in err, and ev holds nothing to release. */
MUST_CHECK int event_parse(const char *buf, size_t len, event *ev, char *err, size_t errlen);
void event_clear(event *ev);

/* Validates a task object as events and the API carry it; require_title for
 * creation. position is a key of common/poskey.h (or, in events written before
 * migration 0004, an integer). 0 or -1 with the offending field's name in field (static string) and
 * a reason in err. */
MUST_CHECK int event_validate_task(const json_t *task, int require_title, const char **field,
                                   char *err, size_t errlen);

/* 1 for the list.* types. */
int event_type_is_list(event_type t);

/* Builds the WebSocket message for ev once:
 * {"type":"task_update","event":"task.created","event_id":..,"seq":42|null,
 *  "task":{..} | "positions":{..} | "order":[..] | "list":{..},"origin":..,
 *  "timestamp":..[,"list_id":..][,"actor":..][,"reload":true]}.
 * Returns a malloc'd compact JSON text and its length in *len. */
char *event_ws_message(const event *ev, size_t *len);

#endif
