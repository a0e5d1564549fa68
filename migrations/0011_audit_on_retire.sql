-- Less work in the statement that stores received webhooks, the hottest
-- write path (its time in Postgres is what a webhook's answer waits for):
--
-- 1. The audit trail records the hub's own events when their outbox rows
--    are retired (deleted once RabbitMQ confirmed them, by the relay that
--    published them, in the statement that deletes them) instead of in the
--    producer's transaction: `audit_id` is the audit row's id, chosen by
--    the producer (so the trail keeps the order the events were made in),
--    NULL for events the trail does not keep. A row is deleted once, so it
--    is audited once.
-- 2. The envelope is kept as the text the relay publishes, no longer parsed
--    into JSONB on the way in (only the retiring statement reads its fields,
--    for the audit row, and the claim its trace context).
ALTER TABLE outbox ALTER COLUMN envelope TYPE TEXT USING envelope::text;
ALTER TABLE outbox ADD COLUMN audit_id UUID;

-- 3. One foreign-key check per received request instead of two (Postgres
--    checks each key with a query per inserted row): a request's tenant is
--    its endpoint's, so a composite key to the endpoint checks both, and
--    that they agree.
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_tenant_id_id_key UNIQUE (tenant_id, id);
DROP INDEX IF EXISTS idx_webhook_endpoints_tenant_id;
ALTER TABLE inbound_events
    ADD CONSTRAINT inbound_events_endpoint_fkey FOREIGN KEY (tenant_id, endpoint_id)
        REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE NOT VALID;
ALTER TABLE inbound_events VALIDATE CONSTRAINT inbound_events_endpoint_fkey;
ALTER TABLE inbound_events DROP CONSTRAINT inbound_events_tenant_id_fkey;
ALTER TABLE inbound_events DROP CONSTRAINT inbound_events_endpoint_id_fkey;
