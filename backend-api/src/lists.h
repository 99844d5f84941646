/* lists: the /api/v1/lists handlers (issue 13). Each validates its input, calls
 * list_store and replies; it returns the HTTP status it sent.
 *
 *   GET    /api/v1/lists                       the user's lists (default first)
 *   POST   /api/v1/lists                       {"id"?, "name"}: a new list (owner)
 *   GET    /api/v1/lists/{id}                  one list with its members
 *   PATCH  /api/v1/lists/{id}                  {"name"} (owner)
 *   DELETE /api/v1/lists/{id}                  the list and its tasks (owner)
 *   POST   /api/v1/lists/{id}/members          {"user_id", "role": editor|viewer} (owner)
 *   DELETE /api/v1/lists/{id}/members/{user}   remove (owner) or leave (oneself)
 *   POST   /api/v1/lists/{id}/owner            {"user_id"}: transfer (owner)
 *   POST   /api/v1/lists/{id}/presence-ticket  a member's presence proof (common/auth.h)
 *
 * A list's tasks are the task routes with list_id (tasks.c). */
#ifndef BA_LISTS_H
#define BA_LISTS_H

#include "tasks.h"

int lists_index(api_req *r);
int lists_create(api_req *r);
/* Every /api/v1/lists/{id}... route; r->id is the path after "/api/v1/lists/". */
int lists_route(api_req *r);

#endif
