-- Outbound webhooks: what the hub schema's webhook_subscriptions,
-- webhook_deliveries and circuit_breaker_state need to run a delivery queue
-- shared by replicas.

-- Subscriptions. `secret_key` holds the sealed signing secret (keyring
-- ciphertext, never plaintext); during rotation the previous one keeps
-- signing until `previous_secret_expires_at`. `auth_secret_encrypted` holds
-- the sealed secret part of BASIC / API_KEY / OAUTH2 auth; `auth_config`
-- keeps only the non-secret parts.
ALTER TABLE webhook_subscriptions
    ADD COLUMN previous_secret_key TEXT,
    ADD COLUMN previous_secret_expires_at TIMESTAMPTZ,
    ADD COLUMN secret_hint TEXT,
    ADD COLUMN auth_secret_encrypted TEXT,
    ADD COLUMN auth_secret_hint TEXT,
    ADD COLUMN disabled_reason TEXT,
    ADD COLUMN created_by_key UUID,
    ADD COLUMN updated_by_key UUID;
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id, id);

-- Deliveries: one row per (subscription, event); attempts are kept apart.
ALTER TABLE webhook_deliveries
    ADD COLUMN tenant_id UUID NOT NULL REFERENCES tenants(id),
    ADD COLUMN lease_until TIMESTAMPTZ,
    ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0,   -- attempts before the last replay
    ADD COLUMN delivered_at TIMESTAMPTZ,
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    ALTER COLUMN attempt_number SET DEFAULT 0,
    DROP CONSTRAINT webhook_deliveries_subscription_id_fkey,
    ADD CONSTRAINT webhook_deliveries_subscription_id_fkey
        FOREIGN KEY (subscription_id) REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    ADD CONSTRAINT webhook_deliveries_subscription_event UNIQUE (subscription_id, event_id);
-- The claim scans only what is due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_retry_at)
    WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX webhook_deliveries_history ON webhook_deliveries (subscription_id, id DESC);

CREATE TABLE webhook_delivery_attempts (
    id UUID PRIMARY KEY,
    delivery_id UUID NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt_number INTEGER NOT NULL,
    request_url VARCHAR(500) NOT NULL,
    request_headers JSONB NOT NULL,      -- without secrets
    response_status INTEGER,
    response_headers JSONB,
    response_body TEXT,                   -- at most 64 KiB
    response_time_ms INTEGER NOT NULL,
    error_message TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts (delivery_id, attempt_number);

-- Counter deltas: workers append one row per batch and subscription instead
-- of updating the subscription row for every delivery; reads add the
-- pending deltas, and a background fold moves them into the row.
CREATE TABLE webhook_subscription_counters (
    id BIGSERIAL PRIMARY KEY,
    subscription_id UUID NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    sent INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_triggered_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ
);
CREATE INDEX webhook_subscription_counters_subscription ON webhook_subscription_counters (subscription_id);

-- Circuit breakers belong to an integration or to a subscription.
ALTER TABLE circuit_breaker_state
    ALTER COLUMN integration_id DROP NOT NULL,
    ADD COLUMN subscription_id UUID UNIQUE REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    ADD COLUMN probe_until TIMESTAMPTZ,
    ADD CONSTRAINT circuit_breaker_state_one_owner
        CHECK ((integration_id IS NULL) <> (subscription_id IS NULL));

-- New due deliveries wake the dispatcher's workers.
CREATE FUNCTION hub_deliveries_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hub_deliveries', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION hub_deliveries_notify();
