-- The relay no longer needs a NOTIFY at every commit: a backend-api process hands
-- its committed events to its own relay in memory (outbox_handoff), and a process
-- that is not the publishing leader wakes the leader with one NOTIFY outbox per
-- batch of commits. The statement trigger doubled the cost of a create in
-- PostgreSQL (0.30 -> 0.15 ms a statement) and queued every commit on the
-- database-wide notify lock. During a rolling upgrade from a version that relied on
-- the trigger, events written by its processes are found by the leader's poll
-- (OUTBOX_POLL_MS) instead of at once.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
