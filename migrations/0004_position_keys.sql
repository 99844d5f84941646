-- Positions become fractional-index keys (common/poskey.h): text over the base-62
-- alphabet 0-9A-Za-z compared bytewise (COLLATE "C"), so a move rewrites one row and
-- publishes one small task.moved event. Existing bigint positions become the integer
-- keys of their rank in the user's list (order preserved; ties, which no writer
-- produced, broken by created_at and id as the old ORDER BY did). next_pos stays the
-- per-user counter of integer keys: task_pos_key(next_pos) sorts after every key of
-- the user (creates and moves to the end take it and add one).
--
-- Task ids become per user (PRIMARY KEY (user_id, id)): a create with an id another
-- user has is a fresh create for this user and reveals nothing.
--
-- user_seq.task_count counts the user's tasks for MAX_TASKS_PER_USER (kept by create
-- and delete under the user's lock).

-- The integer key of n >= 0: a head letter giving the digit count ('a': 1 digit,
-- 'b': 2, ...) and n in base 62. Equals poskey_from_index() in common/src/poskey.c.
CREATE FUNCTION task_pos_key(n bigint) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
	s text := '';
	v bigint := n;
BEGIN
	IF v < 0 THEN
		RAISE EXCEPTION 'task_pos_key: negative argument %', n;
	END IF;
	LOOP
		s := substr(digits, (v % 62)::int + 1, 1) || s;
		v := v / 62;
		EXIT WHEN v = 0;
	END LOOP;
	RETURN chr(ascii('a') + length(s) - 1) || s;
END
$$;

ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
ALTER TABLE tasks ADD PRIMARY KEY (user_id, id);

ALTER TABLE tasks ADD COLUMN position_key text COLLATE "C";
UPDATE tasks t SET position_key = task_pos_key(r.n)
	FROM (SELECT user_id, id, row_number() OVER (PARTITION BY user_id
	      ORDER BY position, created_at, id) - 1 AS n FROM tasks) r
	WHERE t.user_id = r.user_id AND t.id = r.id;
DROP INDEX tasks_user_position;
ALTER TABLE tasks DROP COLUMN position;
ALTER TABLE tasks RENAME COLUMN position_key TO position;
ALTER TABLE tasks ALTER COLUMN position SET NOT NULL;
ALTER TABLE tasks ADD CONSTRAINT tasks_position_is_key
	CHECK (octet_length(position) BETWEEN 2 AND 255 AND position ~ '^[0-9A-Za-z]+$');
-- Unique per user; checked at the end of each statement (a renumbering UPDATE
-- passes through duplicates row by row). Its index serves the list's ORDER BY.
ALTER TABLE tasks ADD CONSTRAINT tasks_user_position UNIQUE (user_id, position)
	DEFERRABLE INITIALLY IMMEDIATE;

ALTER TABLE user_seq ADD COLUMN task_count bigint NOT NULL DEFAULT 0;
UPDATE user_seq u SET next_pos = c.n, task_count = c.n
	FROM (SELECT user_id, count(*) AS n FROM tasks GROUP BY user_id) c
	WHERE u.user_id = c.user_id;
