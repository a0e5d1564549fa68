-- Idempotency-Key on POST /api/v1/events: the first answer to a tenant's
-- key, kept 24 hours, so a retried request gets that answer again instead
-- of being processed again. The row is written in the transaction that
-- stores the request's events; the primary key is what makes two
-- concurrent requests with one key store one outcome (the second insert
-- waits for the first transaction and then conflicts).
--
-- No foreign key to tenants: Postgres would check it with a query per row,
-- and tenants are never deleted. Rows older than 24 hours are no longer
-- honoured (a new request takes the key over) and are pruned by the
-- dispatcher's upkeep through the created_at index.
CREATE TABLE event_idempotency_keys (
    tenant_id     UUID        NOT NULL,
    key           TEXT        NOT NULL,
    -- SHA-256 of the request: Content-Type, ce-* headers and body.
    request_hash  BYTEA       NOT NULL,
    status        SMALLINT    NOT NULL,
    -- The answer's body, byte for byte as first sent.
    response      TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (tenant_id, key)
);

CREATE INDEX event_idempotency_keys_created_at ON event_idempotency_keys (created_at);
