-- A relay now deletes an outbox row once its publish is confirmed, instead of
-- setting `published_at` and pruning the row a day later: a row has nothing
-- left to do once RabbitMQ has it, and the update wrote a second full copy of
-- every event (plus two index entries) to the WAL. The history of an event is
-- in `audit_log` (tenant events) and `events` (events the hub received).
-- `published_at` stays NULL from now on; rows earlier versions marked go here.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX IF EXISTS idx_outbox_published;
