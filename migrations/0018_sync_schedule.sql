-- The sync scheduler (issue 29, item 6).
--
-- Periodic work that must happen at most once per interval across every replica (the
-- integration.sync.check-due and integration.token.check-expiring ticks, pruning old
-- sync jobs): one row per kind, whose last_at moves forward only once its interval has
-- passed, in the same transaction as the work (or the work's outbox row). A replica that
-- finds the interval not yet passed does nothing.
CREATE TABLE scheduler_ticks (
    name TEXT PRIMARY KEY,
    last_at TIMESTAMPTZ NOT NULL
);

-- The scheduler's scan: live integrations whose next scheduled sync has passed.
CREATE INDEX integrations_sync_due ON integrations (next_sync_at)
    WHERE next_sync_at IS NOT NULL AND deleted_at IS NULL;
