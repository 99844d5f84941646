/* list_store: the SQL of lists and their members (issue 13). Task changes inside a
 * list are task_store's (ts_scope); this module creates, renames, deletes and
 * shares lists, and writes the list.* events.
 *
 * Every change of a list or of its members is one transaction that takes the list
 * row FOR UPDATE first (task writes take it FOR SHARE), so a task write is wholly
 * before or wholly after a membership change: a member removed receives nothing
 * written after the removal commits. Events go to members through ts_fan_out: one
 * outbox row per recipient on the recipient's own seq.
 *
 * Every user's default list exists without a row (its id is ts_default_list_id of
 * the user, its tasks the user's own namespace); its row and the owner's member row
 * are written the first time the user's lists are read or the list is renamed. The
 * default list is never shared, left or deleted.
 *
 * Each function takes a connection the caller holds exclusively and leaves it idle;
 * results are TS_* codes (task_store.h) or the LS_* below. */
#ifndef BA_LIST_STORE_H
#define BA_LIST_STORE_H

#include "task_store.h"

#include <jansson.h>
#include <libpq-fe.h>

enum {
	LS_DEFAULT = -40,     /* the default list cannot be shared, left or deleted */
	LS_OWNER_STAYS = -41, /* the owner cannot leave or be removed: transfer first */
	LS_NOT_MEMBER = -42,  /* transfer / remove: the user is not a member */
	LS_TOO_MANY = -43,    /* the list has TS_LIST_MEMBERS_MAX members */
	LS_EXISTS = -44,      /* create: the id is another user's list */
};

/* The user's lists ([{id, name, owner_id, default, role, members}], default list
 * first, then by name): a new reference in *out. */
MUST_CHECK int ls_all(PGconn *pg, const char *user, json_t **out);
/* One list with its members ({..., "members":[{user_id, role}]}) when user is a
 * member; TS_NO_LIST otherwise. */
MUST_CHECK int ls_get(PGconn *pg, const char *user, const char *id, json_t **out);
/* Creates list id named name owned by user and publishes list.created to the
 * owner. A repeat of the user's own create answers the list (*created 0). */
MUST_CHECK int ls_create(PGconn *pg, const char *user, const char *id, const char *name,
                         const char *origin, json_t **out, int *created);
/* Renames (owner only, else TS_FORBIDDEN) and publishes list.updated to every member. */
MUST_CHECK int ls_rename(PGconn *pg, const char *user, const char *id, const char *name,
                         const char *origin, json_t **out);
/* Deletes the list and its tasks (owner only) and publishes list.deleted to every
 * member. */
MUST_CHECK int ls_delete(PGconn *pg, const char *user, const char *id, const char *origin);
/* Adds member with role (editor or viewer), or changes the role (owner only), and
 * publishes list.shared (the list, the role, "reload": true) to the member.
 * *changed is 0 when the member had that role already (nothing published). */
MUST_CHECK int ls_member_put(PGconn *pg, const char *user, const char *id, const char *member,
                             const char *role, const char *origin, json_t **out, int *changed);
/* Removes member (the owner removes anyone else; a member removes itself: leaving)
 * and publishes list.unshared to it. */
MUST_CHECK int ls_member_delete(PGconn *pg, const char *user, const char *id, const char *member,
                                const char *origin);
/* Makes member (already a member) the owner; the old owner becomes an editor.
 * Publishes list.updated to every member. */
MUST_CHECK int ls_transfer(PGconn *pg, const char *user, const char *id, const char *member,
                           const char *origin, json_t **out);

/* The user's role in the list into role ("owner", "editor", "viewer"); TS_NO_LIST
 * when not a member. */
MUST_CHECK int ls_role(PGconn *pg, const char *user, const char *id, char role[8]);

#endif
