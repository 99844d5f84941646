-- tasksync schema: tasks, the per-user event counter and the transactional outbox.

-- One row per task. id is the task's UUID (client-generated ids make creates
-- idempotent); position orders a user's list ascending; version grows by one on
-- every change of the task's content (the ETag / If-Match value).
CREATE TABLE tasks (
	id          uuid PRIMARY KEY,
	user_id     text NOT NULL,
	title       text NOT NULL,
	description text,
	priority    text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
	due_at      timestamptz,
	completed   boolean NOT NULL DEFAULT false,
	position    bigint NOT NULL,
	version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX tasks_user_position ON tasks (user_id, position);

-- The per-user counter row. Every mutation takes the next seq with
-- INSERT ... ON CONFLICT DO UPDATE ... RETURNING, which also locks the row and so
-- serialises that user's writes: seq is gapless and commit order equals seq order.
-- next_pos is the position a new task gets (max(position) + 1, kept by every write).
CREATE TABLE user_seq (
	user_id  text PRIMARY KEY,
	seq      bigint NOT NULL,
	next_pos bigint NOT NULL DEFAULT 0
);

-- The outbox: one row per event, written in the same transaction as the change.
-- payload is the exact JSON published to Kafka and served by /api/v1/events.
-- Rows stay after publication for EVENT_RETENTION seconds (the catch-up feed).
CREATE TABLE outbox (
	id           bigserial PRIMARY KEY,
	user_id      text NOT NULL,
	seq          bigint NOT NULL,
	event_id     uuid NOT NULL,
	event_type   text NOT NULL,
	payload      text NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz,
	UNIQUE (user_id, seq)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at) WHERE published_at IS NOT NULL;

-- Wakes the relay at commit (NOTIFY is delivered when the transaction commits and
-- folds duplicates within one transaction).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('outbox', '');
	RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
	FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
