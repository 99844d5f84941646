-- Lists and sharing (issue 13). Additive only: two new tables and an index on one
-- of them. No existing table is rewritten, locked or backfilled, so it runs under a
-- live service and loses no event:
--
-- * A user's own tasks (tasks.user_id = the user, as every task is today) ARE the
--   user's default list. Its id is derived from the user id (a name-based UUID,
--   list_store.c ls_default_id), and its row below is written the first time the
--   user's lists are read (INSERT ... ON CONFLICT DO NOTHING). Nothing moves.
-- * The tasks of every other list live under the namespace '#<list id>' in
--   tasks.user_id ('#' is outside the user id alphabet, so no user can be one). Task
--   ids, position keys, tombstones and the namespace's counter row in user_seq
--   (next_pos, task_count) stay per namespace exactly as before; the events of a
--   change in such a list go to each member (one outbox row per member, on the
--   member's own gapless seq), never to the namespace.
CREATE TABLE lists (
	id         uuid PRIMARY KEY,
	owner_id   text NOT NULL,
	name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
	is_default boolean NOT NULL DEFAULT false,
	version    integer NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who may see (viewer) and change (editor, owner) a list's tasks. The owner is a
-- member too (role owner), so recipients are one query. Every write to a list takes
-- the list row FOR SHARE and then reads this table in a new statement; every change
-- of membership takes the list row FOR UPDATE: a write is wholly before or wholly
-- after a revocation, so a revoked member gets no event written after it commits.
CREATE TABLE list_members (
	list_id  uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
	user_id  text NOT NULL,
	role     text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
	added_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (list_id, user_id)
);
CREATE INDEX list_members_user ON list_members (user_id);
