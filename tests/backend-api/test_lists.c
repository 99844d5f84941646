/* Shared lists (issue 13) against the real backend-api, PostgreSQL and Apache Kafka:
 * sharing, roles (a viewer's write is 403 and writes nothing), one event per member
 * on each member's own gapless seq, revocation under concurrent writes (nothing
 * committed after it reaches the removed member), catch-up, ownership, 50 members. */
#include "../support/runner.h"
#include "harness.h"

#include "../support/fixtures.h"
#include "common/auth.h"
#include "common/util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *lists_suite(void);

static backend B;

static void setup(void)
{
	shared_start(&B, NULL);
}
static void teardown(void)
{
	shared_stop(&B);
}

/* The user's seq (GET /api/v1/tasks answers it). */
static long long seq_of(const char *u)
{
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks?limit=1", NULL, NULL, &l, NULL), 200);
	long long s = jint(l, "seq");
	json_decref(l);
	return s;
}

/* The user's events after since, asserted gapless from since + 1 (new reference). */
static json_t *events_since(const char *u, long long since)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/events?since=%lld&limit=1000", since);
	json_t *r = NULL;
	ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &r, NULL), 200);
	json_t *ev = json_incref(json_object_get(r, "events"));
	ck_assert(json_is_array(ev));
	ck_assert(!json_is_true(json_object_get(r, "has_more")));
	for (size_t i = 0; i < json_array_size(ev); i++) {
		json_t *e = json_array_get(ev, i);
		ck_assert_int_eq(jint(e, "seq"), since + 1 + (long long)i);
		ck_assert_str_eq(jstr(e, "user_id"), u);
	}
	json_decref(r);
	return ev;
}

/* A new list of owner's named name: its id into id. */
static void make_list(const char *owner, const char *name, char id[UUID_STR_LEN])
{
	json_t *l = NULL;
	ck_assert_int_eq(apif(&B, owner, "POST", "/api/v1/lists", &l, "{\"name\":\"%s\"}", name),
	                 201);
	snprintf(id, UUID_STR_LEN, "%s", jstr(l, "id"));
	ck_assert_str_eq(jstr(l, "role"), "owner");
	json_decref(l);
}

static void share(const char *owner, const char *list, const char *member, const char *role)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/lists/%s/members", list);
	json_t *r = NULL;
	ck_assert_int_eq(
	    apif(&B, owner, "POST", path, &r, "{\"user_id\":\"%s\",\"role\":\"%s\"}", member, role),
	    200);
	ck_assert(json_is_true(json_object_get(r, "changed")));
	json_decref(r);
}

/* A task of list created by user: its id into id. */
static void create_in(const char *user, const char *list, const char *title, char id[UUID_STR_LEN])
{
	json_t *t = NULL;
	ck_assert_int_eq(apif(&B, user, "POST", "/api/v1/tasks", &t,
	                      "{\"title\":\"%s\",\"list_id\":\"%s\"}", title, list),
	                 201);
	ck_assert_str_eq(jstr(t, "list_id"), list);
	if (id)
		snprintf(id, UUID_STR_LEN, "%s", jstr(t, "id"));
	json_decref(t);
}

static const char *in_list(const char *task, const char *list)
{
	static __thread char p[160];
	snprintf(p, sizeof(p), "/api/v1/tasks/%s?list_id=%s", task, list);
	return p;
}

/* A shares "Groceries" with B (editor) and V (viewer): both get list.shared with a
 * reload hint and read the list; B's change reaches A, B and V with B as actor; the
 * viewer's writes are 403 and write nothing; a non-member gets 404 everywhere. */
START_TEST(share_edit_and_viewer)
{
	char a[64], b[64], v[64], n[64], L[UUID_STR_LEN], milk[UUID_STR_LEN];
	new_user(a, sizeof(a));
	new_user(b, sizeof(b));
	new_user(v, sizeof(v));
	new_user(n, sizeof(n));
	make_list(a, "Groceries", L);
	create_in(a, L, "milk", milk);
	long long a0 = seq_of(a), b0 = seq_of(b), v0 = seq_of(v);
	share(a, L, b, "editor");
	share(a, L, v, "viewer");
	/* each share: list.shared to the new member, list.updated to the others */
	ck_assert_int_eq(seq_of(a), a0 + 2);

	/* B: the list shows in GET /lists, its tasks in GET /tasks?list_id= */
	json_t *lists = NULL;
	ck_assert_int_eq(api(&B, b, "GET", "/api/v1/lists", NULL, NULL, &lists, NULL), 200);
	json_t *arr = json_object_get(lists, "lists");
	ck_assert_int_eq(json_array_size(arr), 2);
	ck_assert(json_is_true(json_object_get(json_array_get(arr, 0), "default")));
	ck_assert_str_eq(jstr(json_array_get(arr, 1), "id"), L);
	ck_assert_str_eq(jstr(json_array_get(arr, 1), "role"), "editor");
	ck_assert_str_eq(jstr(json_array_get(arr, 1), "owner_id"), a);
	ck_assert_int_eq(jint(json_array_get(arr, 1), "members"), 3);
	json_decref(lists);
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/tasks?list_id=%s", L);
	json_t *page = NULL;
	ck_assert_int_eq(api(&B, b, "GET", path, NULL, NULL, &page, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(page, "tasks")), 1);
	ck_assert_int_eq(jint(page, "seq"), b0 + 2); /* the reader's own seq */
	json_decref(page);

	json_t *ev = events_since(b, b0);
	ck_assert_int_eq(json_array_size(ev), 2);
	json_t *e = json_array_get(ev, 0);
	ck_assert_str_eq(jstr(e, "event_type"), "list.shared");
	ck_assert(json_is_true(json_object_get(e, "reload")));
	ck_assert_str_eq(jstr(json_object_get(e, "list"), "id"), L);
	ck_assert_str_eq(jstr(json_object_get(e, "list"), "role"), "editor");
	e = json_array_get(ev, 1); /* V joined */
	ck_assert_str_eq(jstr(e, "event_type"), "list.updated");
	ck_assert_str_eq(jstr(json_object_get(e, "list"), "id"), L);
	ck_assert_str_eq(jstr(json_object_get(e, "list"), "owner_id"), a);
	json_decref(ev);
	ev = events_since(a, a0);
	ck_assert_int_eq(json_array_size(ev), 2);
	for (size_t i = 0; i < 2; i++)
		ck_assert_str_eq(jstr(json_array_get(ev, i), "event_type"), "list.updated");
	json_decref(ev);

	/* B checks "milk": one task.completed to each of A, B and V */
	ck_assert_int_eq(
	    api(&B, b, "PATCH", in_list(milk, L), "{\"completed\":true}", NULL, NULL, NULL), 200);
	const char *who[] = {a, b, v};
	long long from[] = {a0 + 2, b0 + 2, v0 + 1};
	for (int i = 0; i < 3; i++) {
		ev = events_since(who[i], from[i]);
		ck_assert_int_eq(json_array_size(ev), 1);
		e = json_array_get(ev, 0);
		ck_assert_str_eq(jstr(e, "event_type"), "task.completed");
		ck_assert_str_eq(jstr(e, "list_id"), L);
		ck_assert_str_eq(jstr(e, "actor"), b);
		ck_assert_str_eq(jstr(json_object_get(e, "task"), "title"), "milk");
		json_decref(ev);
	}

	/* the viewer: every write 403 forbidden, nothing written anywhere */
	long long sa = seq_of(a), sb = seq_of(b), sv = seq_of(v);
	json_t *err = NULL;
	ck_assert_int_eq(
	    api(&B, v, "PATCH", in_list(milk, L), "{\"title\":\"beer\"}", NULL, &err, NULL), 403);
	expect_error(err, "forbidden", NULL);
	ck_assert_int_eq(apif(&B, v, "POST", "/api/v1/tasks", &err,
	                      "{\"title\":\"beer\",\"list_id\":\"%s\"}", L),
	                 403);
	expect_error(err, "forbidden", NULL);
	ck_assert_int_eq(api(&B, v, "DELETE", in_list(milk, L), NULL, NULL, &err, NULL), 403);
	expect_error(err, "forbidden", NULL);
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move?list_id=%s", milk, L);
	ck_assert_int_eq(api(&B, v, "POST", path, "{\"before\":null}", NULL, &err, NULL), 403);
	expect_error(err, "forbidden", NULL);
	ck_assert_int_eq(seq_of(a), sa);
	ck_assert_int_eq(seq_of(b), sb);
	ck_assert_int_eq(seq_of(v), sv);
	json_t *t = NULL;
	ck_assert_int_eq(api(&B, v, "GET", in_list(milk, L), NULL, NULL, &t, NULL), 200);
	ck_assert_str_eq(jstr(t, "title"), "milk");
	ck_assert(json_is_true(json_object_get(t, "completed")));
	json_decref(t);

	/* a non-member: 404 on the list, its tasks and writes; learns nothing */
	snprintf(path, sizeof(path), "/api/v1/tasks?list_id=%s", L);
	ck_assert_int_eq(api(&B, n, "GET", path, NULL, NULL, &err, NULL), 404);
	expect_error(err, "not_found", "list_id");
	ck_assert_int_eq(api(&B, n, "GET", in_list(milk, L), NULL, NULL, NULL, NULL), 404);
	ck_assert_int_eq(
	    api(&B, n, "PATCH", in_list(milk, L), "{\"title\":\"x\"}", NULL, NULL, NULL), 404);
	snprintf(path, sizeof(path), "/api/v1/lists/%s", L);
	ck_assert_int_eq(api(&B, n, "GET", path, NULL, NULL, NULL, NULL), 404);
	ck_assert_int_eq(seq_of(n), 0);

	/* what was published: B's events on the topic, keyed by B, in seq order */
	size_t cnt;
	json_t **tev = topic_events(&B, b, 3, 20000, 500, &cnt);
	ck_assert_int_eq(cnt, 3);
	ck_assert_str_eq(jstr(tev[0], "event_type"), "list.shared");
	ck_assert_str_eq(jstr(tev[1], "event_type"), "list.updated");
	ck_assert_str_eq(jstr(tev[2], "event_type"), "task.completed");
	ck_assert_int_eq(jint(tev[1], "seq"), jint(tev[0], "seq") + 1);
	ck_assert_int_eq(jint(tev[2], "seq"), jint(tev[1], "seq") + 1);
	assert_schema("task-event.schema.json", tev, cnt);
	free_events(tev, cnt);
}
END_TEST

typedef struct writer {
	const char *user, *list;
	int n;
	atomic_int done;
	int failures;
} writer;

static void *write_many(void *arg)
{
	writer *w = arg;
	for (int i = 0; i < w->n; i++) {
		char body[160];
		snprintf(body, sizeof(body), "{\"title\":\"c%d\",\"list_id\":\"%s\"}", i, w->list);
		if (api(&B, w->user, "POST", "/api/v1/tasks", body, NULL, NULL, NULL) != 201)
			w->failures++;
		atomic_fetch_add(&w->done, 1);
	}
	return NULL;
}

/* A removes B while C writes 100 changes: B's events (feed and topic) hold a prefix
 * of C's changes, then list.unshared, and nothing of the list after it; C gets all. */
START_TEST(revocation_under_concurrent_writes)
{
	char a[64], b[64], c[64], L[UUID_STR_LEN];
	new_user(a, sizeof(a));
	new_user(b, sizeof(b));
	new_user(c, sizeof(c));
	make_list(a, "Team", L);
	share(a, L, b, "editor");
	share(a, L, c, "editor");
	long long b0 = seq_of(b), c0 = seq_of(c);
	writer w = {.user = c, .list = L, .n = 100};
	pthread_t th;
	pthread_create(&th, NULL, write_many, &w);
	while (atomic_load(&w.done) < 30)
		usleep(1000);
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/lists/%s/members/%s", L, b);
	ck_assert_int_eq(api(&B, a, "DELETE", path, NULL, NULL, NULL, NULL), 204);
	int done_at_removal = atomic_load(&w.done);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.failures, 0);

	/* C: all 100, in order, and one list.updated (B left) among them */
	json_t *ce = events_since(c, c0);
	ck_assert_int_eq(json_array_size(ce), 101);
	size_t k = 0, updates = 0;
	for (size_t i = 0; i < 101; i++) {
		json_t *e = json_array_get(ce, i);
		if (!strcmp(jstr(e, "event_type"), "list.updated")) {
			updates++;
			continue;
		}
		char want[32];
		snprintf(want, sizeof(want), "c%zu", k++);
		ck_assert_str_eq(jstr(json_object_get(e, "task"), "title"), want);
	}
	ck_assert_uint_eq(updates, 1);
	json_decref(ce);

	/* B: c0..ck, then list.unshared, then nothing */
	json_t *be = events_since(b, b0);
	size_t n = json_array_size(be);
	ck_assert_uint_ge(n, 31);
	json_t *last = json_array_get(be, n - 1);
	ck_assert_str_eq(jstr(last, "event_type"), "list.unshared");
	ck_assert_str_eq(jstr(json_object_get(last, "list"), "id"), L);
	for (size_t i = 0; i + 1 < n; i++) {
		json_t *e = json_array_get(be, i);
		char want[32];
		snprintf(want, sizeof(want), "c%zu", i);
		ck_assert_str_eq(jstr(e, "event_type"), "task.created");
		ck_assert_str_eq(jstr(e, "list_id"), L);
		ck_assert_str_eq(jstr(json_object_get(e, "task"), "title"), want);
	}
	/* the removal landed among C's writes: B missed the rest */
	ck_assert_uint_ge(n - 1, 30);
	ck_assert_uint_le(n - 1, (size_t)done_at_removal + 1);
	ck_assert_uint_lt(n - 1, 100);
	/* the topic says the same */
	size_t cnt;
	json_t **tev = topic_events(&B, b, n + 2, 30000, 1000, &cnt);
	/* list.shared and list.updated (C joined) before b0, then the same n */
	ck_assert_int_eq(cnt, n + 2);
	ck_assert_str_eq(jstr(tev[0], "event_type"), "list.shared");
	ck_assert_str_eq(jstr(tev[1], "event_type"), "list.updated");
	for (size_t i = 2; i < cnt; i++)
		ck_assert_int_eq(jint(tev[i], "seq"), b0 + (long long)i - 1);
	ck_assert_str_eq(jstr(tev[cnt - 1], "event_type"), "list.unshared");
	free_events(tev, cnt);
	json_decref(be);

	/* B is out: 404 on the list and its tasks */
	snprintf(path, sizeof(path), "/api/v1/tasks?list_id=%s", L);
	ck_assert_int_eq(api(&B, b, "GET", path, NULL, NULL, NULL, NULL), 404);
	ck_assert_int_eq(apif(&B, b, "POST", "/api/v1/tasks", NULL,
	                      "{\"title\":\"late\",\"list_id\":\"%s\"}", L),
	                 404);
}
END_TEST

/* B offline for 50 changes: /events?since= catches up completely, in order. */
START_TEST(offline_member_catches_up)
{
	char a[64], b[64], c[64], L[UUID_STR_LEN];
	new_user(a, sizeof(a));
	new_user(b, sizeof(b));
	new_user(c, sizeof(c));
	make_list(a, "Home", L);
	share(a, L, b, "viewer");
	share(a, L, c, "editor");
	long long b0 = seq_of(b);
	writer w = {.user = c, .list = L, .n = 50};
	write_many(&w);
	ck_assert_int_eq(w.failures, 0);
	json_t *be = events_since(b, b0);
	ck_assert_int_eq(json_array_size(be), 50);
	for (size_t i = 0; i < 50; i++) {
		json_t *e = json_array_get(be, i);
		char want[32];
		snprintf(want, sizeof(want), "c%zu", i);
		ck_assert_str_eq(jstr(e, "list_id"), L);
		ck_assert_str_eq(jstr(e, "actor"), c);
		ck_assert_str_eq(jstr(json_object_get(e, "task"), "title"), want);
	}
	json_decref(be);
	/* and a page of the list agrees */
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/tasks?list_id=%s", L);
	json_t *page = NULL;
	ck_assert_int_eq(api(&B, b, "GET", path, NULL, NULL, &page, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(page, "tasks")), 50);
	ck_assert_int_eq(jint(page, "seq"), b0 + 50);
	json_decref(page);
}
END_TEST

/* A list shared with 50 members: one change is 50 events, one per member, each the
 * next of that member's seq. */
START_TEST(fifty_members_one_change)
{
	enum { N = 50 };
	char u[N][64], L[UUID_STR_LEN];
	for (int i = 0; i < N; i++)
		new_user(u[i], sizeof(u[i]));
	make_list(u[0], "Club", L);
	for (int i = 1; i < N; i++)
		share(u[0], L, u[i], i % 2 ? "editor" : "viewer");
	long long s0[N];
	for (int i = 0; i < N; i++)
		s0[i] = seq_of(u[i]);
	create_in(u[1], L, "meeting", NULL);
	for (int i = 0; i < N; i++) {
		json_t *ev = events_since(u[i], s0[i]);
		ck_assert_int_eq(json_array_size(ev), 1);
		json_t *e = json_array_get(ev, 0);
		ck_assert_str_eq(jstr(e, "event_type"), "task.created");
		ck_assert_str_eq(jstr(e, "actor"), u[1]);
		json_decref(ev);
	}
	/* on the topic too, keyed by each member */
	for (int i = 0; i < N; i += 7) {
		size_t cnt;
		json_t **tev = topic_events(&B, u[i], (size_t)s0[i] + 1, 20000, 0, &cnt);
		ck_assert_int_ge((long long)cnt, s0[i] + 1);
		ck_assert_str_eq(jstr(tev[cnt - 1], "event_type"), "task.created");
		ck_assert_int_eq(jint(tev[cnt - 1], "seq"), s0[i] + 1);
		free_events(tev, cnt);
	}
}
END_TEST

/* Ownership: transfer, leave, the rules of the default list, rename, delete. */
START_TEST(ownership_leave_delete)
{
	char a[64], b[64], L[UUID_STR_LEN], path[200];
	new_user(a, sizeof(a));
	new_user(b, sizeof(b));
	make_list(a, "Trip", L);
	share(a, L, b, "viewer");
	json_t *err = NULL;
	/* the owner cannot leave; B (viewer) cannot rename, share or transfer */
	snprintf(path, sizeof(path), "/api/v1/lists/%s/members/%s", L, a);
	ck_assert_int_eq(api(&B, a, "DELETE", path, NULL, NULL, &err, NULL), 409);
	expect_error(err, "owner_stays", "user_id");
	snprintf(path, sizeof(path), "/api/v1/lists/%s", L);
	ck_assert_int_eq(api(&B, b, "PATCH", path, "{\"name\":\"Mine\"}", NULL, &err, NULL), 403);
	expect_error(err, "forbidden", NULL);
	/* transfer to B: A becomes an editor, every member hears list.updated */
	long long a0 = seq_of(a), b0 = seq_of(b);
	snprintf(path, sizeof(path), "/api/v1/lists/%s/owner", L);
	ck_assert_int_eq(apif(&B, a, "POST", path, NULL, "{\"user_id\":\"%s\"}", b), 200);
	json_t *ev = events_since(a, a0);
	ck_assert_int_eq(json_array_size(ev), 1);
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "event_type"), "list.updated");
	ck_assert_str_eq(jstr(json_object_get(json_array_get(ev, 0), "list"), "owner_id"), b);
	json_decref(ev);
	snprintf(path, sizeof(path), "/api/v1/lists/%s", L);
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, a, "GET", path, NULL, NULL, &l, NULL), 200);
	ck_assert_str_eq(jstr(l, "role"), "editor");
	ck_assert_int_eq(json_array_size(json_object_get(l, "members")), 2);
	json_decref(l);
	/* A leaves: list.unshared to A, and A is out */
	a0 = seq_of(a);
	snprintf(path, sizeof(path), "/api/v1/lists/%s/members/%s", L, a);
	ck_assert_int_eq(api(&B, a, "DELETE", path, NULL, NULL, NULL, NULL), 204);
	ev = events_since(a, a0);
	ck_assert_int_eq(json_array_size(ev), 1);
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "event_type"), "list.unshared");
	json_decref(ev);
	snprintf(path, sizeof(path), "/api/v1/lists/%s", L);
	ck_assert_int_eq(api(&B, a, "GET", path, NULL, NULL, NULL, NULL), 404);
	/* B renames, then deletes: list.updated, list.deleted; its tasks are gone */
	create_in(b, L, "passport", NULL);
	ck_assert_int_eq(api(&B, b, "PATCH", path, "{\"name\":\"Trip 2\"}", NULL, NULL, NULL), 200);
	ck_assert_int_eq(api(&B, b, "DELETE", path, NULL, NULL, NULL, NULL), 204);
	ev = events_since(b, b0);
	size_t n = json_array_size(ev);
	ck_assert_str_eq(jstr(json_array_get(ev, n - 1), "event_type"), "list.deleted");
	ck_assert_str_eq(jstr(json_array_get(ev, n - 2), "event_type"), "list.updated");
	json_decref(ev);
	ck_assert_int_eq(api(&B, b, "GET", path, NULL, NULL, NULL, NULL), 404);

	/* the default list: its id is the tasks' list_id; never shared or deleted */
	json_t *t = create_task(&B, a, "own");
	char def[UUID_STR_LEN];
	snprintf(def, sizeof(def), "%s", jstr(t, "list_id"));
	json_decref(t);
	snprintf(path, sizeof(path), "/api/v1/lists/%s/members", def);
	ck_assert_int_eq(
	    apif(&B, a, "POST", path, &err, "{\"user_id\":\"%s\",\"role\":\"editor\"}", b), 422);
	expect_error(err, "default_list", NULL);
	snprintf(path, sizeof(path), "/api/v1/lists/%s", def);
	ck_assert_int_eq(api(&B, a, "DELETE", path, NULL, NULL, &err, NULL), 422);
	expect_error(err, "default_list", NULL);
	ck_assert_int_eq(api(&B, a, "PATCH", path, "{\"name\":\"Inbox\"}", NULL, NULL, NULL), 200);
	ck_assert_int_eq(api(&B, a, "GET", path, NULL, NULL, &l, NULL), 200);
	ck_assert_str_eq(jstr(l, "name"), "Inbox");
	ck_assert(json_is_true(json_object_get(l, "default")));
	json_decref(l);
	/* B cannot see A's default list */
	ck_assert_int_eq(api(&B, b, "GET", path, NULL, NULL, NULL, NULL), 404);
	/* a list id of the default lists' kind cannot be taken */
	ck_assert_int_eq(
	    apif(&B, b, "POST", "/api/v1/lists", &err, "{\"id\":\"%s\",\"name\":\"x\"}", def), 409);
	expect_error(err, "conflict", "id");
}
END_TEST

/* Tasks move between lists: one transaction, task.deleted to the source list's
 * members, then task.created to the target's; a viewer cannot move a task out. */
START_TEST(move_between_lists)
{
	char a[64], b[64], v[64], L[UUID_STR_LEN], path[200];
	new_user(a, sizeof(a));
	new_user(b, sizeof(b));
	new_user(v, sizeof(v));
	make_list(a, "Shop", L);
	share(a, L, b, "editor");
	share(a, L, v, "viewer");
	json_t *t = create_task(&B, a, "eggs");
	char id[UUID_STR_LEN], adef[UUID_STR_LEN];
	snprintf(id, sizeof(id), "%s", jstr(t, "id"));
	snprintf(adef, sizeof(adef), "%s", jstr(t, "list_id"));
	json_decref(t);
	long long a0 = seq_of(a), b0 = seq_of(b);
	/* A's own list -> the shared list, at its end */
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id);
	json_t *r = NULL;
	ck_assert_int_eq(apif(&B, a, "POST", path, &r, "{\"list_id\":\"%s\",\"before\":null}", L),
	                 200);
	ck_assert_str_eq(jstr(json_object_get(r, "task"), "list_id"), L);
	ck_assert_int_eq(jint(r, "seq"), a0 + 2);
	json_decref(r);
	json_t *ev = events_since(a, a0);
	ck_assert_int_eq(json_array_size(ev), 2);
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "event_type"), "task.deleted");
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "list_id"), adef);
	ck_assert_str_eq(jstr(json_array_get(ev, 1), "event_type"), "task.created");
	ck_assert_str_eq(jstr(json_array_get(ev, 1), "list_id"), L);
	json_decref(ev);
	ev = events_since(b, b0);
	ck_assert_int_eq(json_array_size(ev), 1);
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "event_type"), "task.created");
	json_decref(ev);
	ck_assert_int_eq(api(&B, a, "GET", task_path(id), NULL, NULL, NULL, NULL), 404);
	ck_assert_int_eq(api(&B, b, "GET", in_list(id, L), NULL, NULL, NULL, NULL), 200);
	/* the viewer cannot take it out; nothing written */
	long long v0 = seq_of(v);
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move?list_id=%s", id, L);
	json_t *err = NULL;
	ck_assert_int_eq(apif(&B, v, "POST", path, &err, "{\"list_id\":null,\"before\":null}"),
	                 403);
	expect_error(err, "forbidden", NULL);
	ck_assert_int_eq(apif(&B, v, "POST", path, &err, "{\"after\":null}"), 403);
	expect_error(err, "forbidden", NULL);
	char vdef[UUID_STR_LEN];
	t = create_task(&B, v, "mine");
	snprintf(vdef, sizeof(vdef), "%s", jstr(t, "list_id"));
	json_decref(t);
	long long v1 = seq_of(v);
	ck_assert_int_eq(
	    apif(&B, v, "POST", path, &err, "{\"list_id\":\"%s\",\"before\":null}", vdef), 403);
	expect_error(err, "forbidden", NULL);
	ck_assert_int_eq(seq_of(v), v1);
	(void)v0;
	/* B takes it into B's own list: A and B hear task.deleted, B task.created */
	a0 = seq_of(a);
	b0 = seq_of(b);
	char bdef[UUID_STR_LEN];
	t = create_task(&B, b, "b's");
	snprintf(bdef, sizeof(bdef), "%s", jstr(t, "list_id"));
	json_decref(t);
	b0++;
	ck_assert_int_eq(
	    apif(&B, b, "POST", path, NULL, "{\"list_id\":\"%s\",\"after\":null}", bdef), 200);
	ev = events_since(a, a0);
	ck_assert_int_eq(json_array_size(ev), 1);
	ck_assert_str_eq(jstr(json_array_get(ev, 0), "event_type"), "task.deleted");
	json_decref(ev);
	ev = events_since(b, b0);
	ck_assert_int_eq(json_array_size(ev), 2);
	ck_assert_str_eq(jstr(json_array_get(ev, 1), "event_type"), "task.created");
	ck_assert_str_eq(jstr(json_array_get(ev, 1), "list_id"), bdef);
	json_decref(ev);
	json_t *page = NULL;
	ck_assert_int_eq(api(&B, b, "GET", "/api/v1/tasks", NULL, NULL, &page, NULL), 200);
	json_t *tasks = json_object_get(page, "tasks");
	ck_assert_int_eq(json_array_size(tasks), 2);
	ck_assert_str_eq(jstr(json_array_get(tasks, 0), "id"), id); /* after nothing: the top */
	json_decref(page);
}
END_TEST

typedef struct mixer {
	const char *user;
	const char *lists[2]; /* written in turn, with the user's default list */
	int n;
	int failures;
} mixer;

static void *write_mixed(void *arg)
{
	mixer *m = arg;
	for (int i = 0; i < m->n; i++) {
		char body[200];
		const char *l = i % 3 == 2 ? NULL : m->lists[i % 3];
		if (l)
			snprintf(body, sizeof(body), "{\"title\":\"m%d\",\"list_id\":\"%s\"}", i,
			         l);
		else
			snprintf(body, sizeof(body), "{\"title\":\"m%d\"}", i);
		if (api(&B, m->user, "POST", "/api/v1/tasks", body, NULL, NULL, NULL) != 201)
			m->failures++;
	}
	return NULL;
}

/* Writers of two lists with common members, and of their own lists, at once: no
 * deadlock (every write answers 201), and every member's feed stays gapless and
 * holds every change of the lists it is in. */
START_TEST(overlapping_lists_concurrent_writers)
{
	enum { W = 4, N = 40 };
	char u[W][64], L1[UUID_STR_LEN], L2[UUID_STR_LEN];
	for (int i = 0; i < W; i++)
		new_user(u[i], sizeof(u[i]));
	make_list(u[0], "one", L1);
	make_list(u[3], "two", L2);
	for (int i = 1; i < W; i++)
		share(u[0], L1, u[i], "editor");
	for (int i = 0; i < W - 1; i++)
		share(u[3], L2, u[i], "editor");
	long long s0[W];
	for (int i = 0; i < W; i++)
		s0[i] = seq_of(u[i]);
	mixer m[W];
	pthread_t th[W];
	for (int i = 0; i < W; i++) {
		/* half start with L1, half with L2: opposite orders of the same members */
		m[i] = (mixer){u[i], {i % 2 ? L2 : L1, i % 2 ? L1 : L2}, N, 0};
		pthread_create(&th[i], NULL, write_mixed, &m[i]);
	}
	for (int i = 0; i < W; i++)
		pthread_join(th[i], NULL);
	/* each writer: N writes, of which 2/3 into the shared lists (every member gets
	 * those) and 1/3 into its own list (only the writer) */
	int shared_writes = 0;
	for (int i = 0; i < N; i++)
		shared_writes += i % 3 != 2;
	for (int i = 0; i < W; i++) {
		ck_assert_int_eq(m[i].failures, 0);
		json_t *ev = events_since(u[i], s0[i]); /* asserts the seqs gapless */
		ck_assert_int_eq(json_array_size(ev),
		                 (size_t)(W * shared_writes + (N - shared_writes)));
		json_decref(ev);
	}
}
END_TEST

/* A presence proof for the gateway: a member (any role) gets one naming the list;
 * a non-member gets 404; the proof is no API token. */
START_TEST(presence_ticket_for_members_only)
{
	char a[64], v[64], n[64], L[UUID_STR_LEN], path[160];
	new_user(a, sizeof(a));
	new_user(v, sizeof(v));
	new_user(n, sizeof(n));
	make_list(a, "Desk", L);
	share(a, L, v, "viewer");
	snprintf(path, sizeof(path), "/api/v1/lists/%s/presence-ticket", L);
	json_t *r = NULL;
	ck_assert_int_eq(api(&B, v, "POST", path, NULL, NULL, &r, NULL), 200);
	ck_assert_str_eq(jstr(r, "role"), "viewer");
	auth_presence pr;
	ck_assert_int_eq(auth_verify_presence(TEST_SECRET, jstr(r, "ticket"), &pr), AUTH_OK);
	ck_assert_str_eq(pr.user, v);
	ck_assert_str_eq(pr.list_id, L);
	/* not a session token */
	char hdr[2048];
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", jstr(r, "ticket"));
	json_decref(r);
	ck_assert_int_eq(api(&B, NULL, "GET", "/api/v1/lists", NULL, hdr, NULL, NULL), 401);
	json_t *err = NULL;
	ck_assert_int_eq(api(&B, n, "POST", path, NULL, NULL, &err, NULL), 404);
	expect_error(err, "not_found", "list_id");
}
END_TEST

/* A user's tasks from before lists are the default list: nothing moves, the list
 * exists without a write, its id is the tasks' list_id, and both reads agree. */
START_TEST(existing_tasks_are_the_default_list)
{
	char u[64], path[160];
	new_user(u, sizeof(u));
	char ids[3][UUID_STR_LEN];
	for (int i = 0; i < 3; i++) {
		json_t *t = create_task(&B, u, i == 0 ? "a" : i == 1 ? "b" : "c");
		snprintf(ids[i], sizeof(ids[i]), "%s", jstr(t, "id"));
		json_decref(t);
	}
	long long s = seq_of(u);
	json_t *lists = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/lists", NULL, NULL, &lists, NULL), 200);
	json_t *def = json_array_get(json_object_get(lists, "lists"), 0);
	ck_assert(json_is_true(json_object_get(def, "default")));
	ck_assert_str_eq(jstr(def, "role"), "owner");
	ck_assert_int_eq(json_array_size(json_object_get(lists, "lists")), 1);
	json_t *plain = NULL, *by_id = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &plain, NULL), 200);
	snprintf(path, sizeof(path), "/api/v1/tasks?list_id=%s", jstr(def, "id"));
	ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &by_id, NULL), 200);
	ck_assert_str_eq(jstr(plain, "list_id"), jstr(def, "id"));
	json_t *a = json_object_get(plain, "tasks"), *b = json_object_get(by_id, "tasks");
	ck_assert_int_eq(json_array_size(a), 3);
	ck_assert(json_equal(a, b));
	for (int i = 0; i < 3; i++) {
		ck_assert_str_eq(jstr(json_array_get(a, (size_t)i), "id"), ids[i]);
		ck_assert_str_eq(jstr(json_array_get(a, (size_t)i), "list_id"), jstr(def, "id"));
	}
	json_decref(plain);
	json_decref(by_id);
	json_decref(lists);
	ck_assert_int_eq(seq_of(u), s); /* reading the lists wrote no event */
}
END_TEST

Suite *lists_suite(void)
{
	Suite *s = suite_create("lists");
	TCase *tc = tcase_create("lists");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, share_edit_and_viewer);
	tcase_add_test(tc, revocation_under_concurrent_writes);
	tcase_add_test(tc, offline_member_catches_up);
	tcase_add_test(tc, fifty_members_one_change);
	tcase_add_test(tc, ownership_leave_delete);
	tcase_add_test(tc, move_between_lists);
	tcase_add_test(tc, overlapping_lists_concurrent_writers);
	tcase_add_test(tc, presence_ticket_for_members_only);
	tcase_add_test(tc, existing_tasks_are_the_default_list);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {lists_suite(), verdict_suite()};
	return run_suites("test-lists", s, sizeof(s) / sizeof(s[0]));
}
