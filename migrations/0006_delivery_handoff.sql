-- Faster delivery queue (issue 6 benchmark).
--
-- 1. The dispatcher now hands deliveries it has just created straight to its
--    own workers, inserting them already leased; only deliveries nobody holds
--    need to wake a claimer. The per-statement NOTIFY trigger woke every
--    claimer for every insert, so storage now sends the notification itself
--    when it inserts (or releases, or replays) unleased work.
DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries;
DROP FUNCTION IF EXISTS hub_deliveries_notify();

-- 2. Indexes of the hub schema that other indexes cover: every insert and
--    every status change of a delivery had to maintain them.
--    (subscription_id)         -> webhook_deliveries_subscription_event (subscription_id, event_id)
--                                 and webhook_deliveries_history (subscription_id, id DESC)
--    (status, next_retry_at)   -> webhook_deliveries_due (next_retry_at) WHERE status IN (...)
--    (created_at)              -> pruning and history page by the time-ordered id
DROP INDEX IF EXISTS idx_webhook_del_subscription;
DROP INDEX IF EXISTS idx_webhook_del_status;
DROP INDEX IF EXISTS idx_webhook_del_created;

-- 3. No foreign keys from the per-delivery tables to webhook_subscriptions.
--    Every delivery and every counter delta of a subscription referenced the
--    same row, so each insert took a KEY SHARE lock on it (a multixact and a
--    WAL record under concurrency): it cost as much as the insert itself.
--    Deleting a subscription now deletes its deliveries, counters and breaker
--    explicitly (hub_storage::subscriptions::delete); a delivery created by a
--    fan-out that raced the delete is never claimed and is pruned with the
--    old deliveries.
ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_subscription_id_fkey;
ALTER TABLE webhook_subscription_counters
    DROP CONSTRAINT IF EXISTS webhook_subscription_counters_subscription_id_fkey;
