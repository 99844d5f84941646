-- Exactly-once mutations, delete-wins tombstones and per-field merge (issue 14).
-- Every statement here is additive (new tables, nullable columns without a default:
-- no table rewrite, no long lock), so it runs under a live service and loses no event.

-- The first result of each mutation sent with an Idempotency-Key, written in the
-- mutation's own transaction: a repeat of the same request (same md5 of method, path
-- and canonical body) answers this status and body and writes nothing; the same key
-- with another request is refused. Pruned IDEMPOTENCY_WINDOW after created_at.
CREATE TABLE idempotency_keys (
	user_id      text NOT NULL,
	key          text NOT NULL,
	request_md5  text NOT NULL,
	status       integer NOT NULL,
	body         text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- A deleted task's id, kept IDEMPOTENCY_WINDOW: a late create of that id (a retry
-- whose first reply was lost, from a device that missed the delete) answers 410
-- instead of bringing the task back, and so do edits and moves of it. Delete wins.
CREATE TABLE task_tombstones (
	user_id    text NOT NULL,
	id         uuid NOT NULL,
	deleted_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, id)
);
CREATE INDEX task_tombstones_deleted ON task_tombstones (deleted_at);

-- The task version that last changed each field (NULL: not known since this
-- migration, taken as the task's version: a merge against an older base then treats
-- that field as changed, never as untouched). A PATCH with base_version B conflicts
-- on a field whose version is above B.
ALTER TABLE tasks ADD COLUMN title_v integer, ADD COLUMN description_v integer,
	ADD COLUMN priority_v integer, ADD COLUMN due_at_v integer,
	ADD COLUMN completed_v integer;
