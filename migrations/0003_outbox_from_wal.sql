-- The relay streams the outbox's inserts from the WAL (logical decoding through
-- the publication below and a replication slot, see backend-api/src/outbox.h):
-- nothing marks a row published any more, so the outbox is insert-only until
-- pruned, and its rows are pruned by age alone (EVENT_RETENTION after commit,
-- each user's latest kept). Rows a relay of the previous version had not
-- published when this migration ran reach clients through /api/v1/events.
DROP INDEX outbox_unpublished;
DROP INDEX outbox_created;
ALTER TABLE outbox DROP COLUMN published_at;
CREATE INDEX outbox_created ON outbox (created_at);

CREATE PUBLICATION tasksync_outbox FOR TABLE outbox WITH (publish = 'insert');

-- Events Kafka refused for themselves (too large, invalid): kept for an operator;
-- the event itself stays in the outbox, so /api/v1/events still serves it.
CREATE TABLE outbox_dead_letter (
	outbox_id bigint PRIMARY KEY,
	user_id   text NOT NULL,
	seq       bigint NOT NULL,
	event_id  uuid NOT NULL,
	error     text NOT NULL,
	at        timestamptz NOT NULL DEFAULT now()
);
