-- The relay is woken in-process after each commit (outbox_kick), no longer by a
-- NOTIFY from a trigger: the statement trigger doubled the cost of a create in
-- PostgreSQL (0.30 -> 0.15 ms a statement), and every notifying commit queues on
-- one database-wide lock. A process that is not the publishing leader forwards its
-- wake-ups to the leader with one NOTIFY outbox per batch of commits.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
