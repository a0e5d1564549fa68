-- Inbound webhooks (issue 7): endpoint verification settings, the secret in
-- rotation, received events as a durable work queue, and counter deltas.

-- secret_key (spec column) holds the sealed current secret
-- (v1.<key id>.<base64url>, bound to "webhook_endpoint:<id>:secret"); the
-- previous one stays valid until secret_previous_expires_at after a rotation.
-- signature_algorithm is one of the scheme names (standard-webhooks, github,
-- stripe, …, hmac-sha256, hmac-sha1, none); the generic HMAC schemes also
-- read signature_encoding and signature_prefix.
ALTER TABLE webhook_endpoints
    ADD COLUMN secret_hint VARCHAR(8) NOT NULL DEFAULT '',
    ADD COLUMN secret_previous TEXT,
    ADD COLUMN secret_previous_expires_at TIMESTAMPTZ,
    ADD COLUMN signature_encoding VARCHAR(10) NOT NULL DEFAULT 'hex',
    ADD COLUMN signature_prefix VARCHAR(50),
    ADD COLUMN timestamp_tolerance_seconds INTEGER NOT NULL DEFAULT 300,
    ADD COLUMN created_by_key UUID,
    ADD COLUMN updated_by_key UUID;
CREATE INDEX idx_webhook_endpoints_tenant_id ON webhook_endpoints(tenant_id, id);

-- Every accepted request, raw (headers, body, source address). The first
-- request of a provider event (dedupe_key: the provider's event id, or the
-- body's hash) is the event and is processed; repeats are kept as rows with
-- duplicate = true pointing at it and are never processed. The partial
-- unique index is what makes concurrent repeats store one event
-- (INSERT … ON CONFLICT DO NOTHING).
--
-- Processing is a Postgres work queue: PENDING rows whose next_attempt_at has
-- come are claimed with FOR UPDATE SKIP LOCKED and a lease (lease_until); a
-- worker that dies leaves its lease to expire and the row is claimed again.
-- status: PENDING, PROCESSED, SKIPPED (filtered by event_types), FAILED
-- (attempts exhausted; replay puts it back to PENDING), DUPLICATE.
CREATE TABLE inbound_events (
    id                UUID PRIMARY KEY,
    tenant_id         UUID NOT NULL REFERENCES tenants(id),
    endpoint_id       UUID NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    dedupe_key        TEXT NOT NULL,
    provider_event_id TEXT,
    event_type        TEXT,
    duplicate         BOOLEAN NOT NULL DEFAULT false,
    duplicate_of      UUID,
    method            VARCHAR(10) NOT NULL,
    headers           JSONB NOT NULL,
    body              BYTEA NOT NULL,
    source_ip         TEXT NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    status            VARCHAR(20) NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ,
    lease_until       TIMESTAMPTZ,
    last_error        TEXT,
    processed_at      TIMESTAMPTZ,
    published_event_id UUID
);
CREATE UNIQUE INDEX inbound_events_dedupe
    ON inbound_events(endpoint_id, dedupe_key) WHERE NOT duplicate;
CREATE INDEX idx_inbound_events_endpoint ON inbound_events(endpoint_id, id);
CREATE INDEX idx_inbound_events_due
    ON inbound_events(next_attempt_at) WHERE status = 'PENDING';

-- Counter deltas: the request path and the workers append one row per
-- endpoint per batch instead of updating the endpoint row (a hot row under
-- load); a background task folds them into webhook_endpoints.total_* and
-- reads add the unfolded rest.
CREATE TABLE webhook_endpoint_counter_deltas (
    id               BIGSERIAL PRIMARY KEY,
    endpoint_id      UUID NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    received         INTEGER NOT NULL DEFAULT 0,
    processed        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    last_received_at TIMESTAMPTZ
);
CREATE INDEX idx_counter_deltas_endpoint ON webhook_endpoint_counter_deltas(endpoint_id);

-- Wakes the processing workers when events are received (replay notifies
-- explicitly).
CREATE FUNCTION hub_inbound_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hub_inbound', '');
    RETURN NULL;
END $$;
CREATE TRIGGER inbound_events_notify AFTER INSERT ON inbound_events
    FOR EACH STATEMENT EXECUTE FUNCTION hub_inbound_notify();
