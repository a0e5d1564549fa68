-- Fewer index entries per received webhook (17 -> 12), the hottest write path:
--
-- Relays claim unpublished outbox rows in primary-key order: ids are UUIDv7,
-- so that is the order they were made in, and the partial index on
-- `created_at` (which, since relays delete published rows, held every row)
-- cost an index entry per event for a claim that only runs when a producer's
-- own relay could not publish.
DROP INDEX IF EXISTS idx_outbox_unpublished;

-- The audit trail is read per tenant, newest first (`tenant_id = $1 ORDER BY
-- id DESC`): a primary key on (tenant_id, id) serves that and replaces both
-- the key on `id` alone and the index on (tenant_id, id DESC).
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (tenant_id, id);
DROP INDEX IF EXISTS idx_audit_log_tenant;
