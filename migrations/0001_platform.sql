-- Platform tables the hub schema refers to (tenants, users) and the ones every
-- service relies on: API keys, the transactional outbox, consumer idempotency,
-- the audit trail and the store of domain events received.

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    slug        VARCHAR(63)  NOT NULL UNIQUE,
    status      VARCHAR(20)  NOT NULL DEFAULT 'ACTIVE',   -- ACTIVE, SUSPENDED
    created_at  TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMPTZ  NOT NULL DEFAULT NOW()
);

CREATE TABLE users (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    email       VARCHAR(320) NOT NULL,
    name        VARCHAR(200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (tenant_id, email)
);

-- An API key is shown once; only its SHA-256 is kept. `prefix` (the first
-- characters of the key) lets an operator recognise a key without the secret.
CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id),
    name          VARCHAR(200) NOT NULL,
    prefix        VARCHAR(16)  NOT NULL,
    key_hash      BYTEA        NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX idx_api_keys_tenant ON api_keys(tenant_id);

-- Transactional outbox: a state change and its event commit together; the
-- relay in every service publishes unpublished rows with publisher confirms.
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,                 -- = CloudEvents id
    tenant_id     UUID,
    event_type    VARCHAR(200) NOT NULL,            -- = routing key
    envelope      JSONB        NOT NULL,            -- the whole CloudEvents envelope
    created_at    TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    published_at  TIMESTAMPTZ,
    attempts      INTEGER      NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX idx_outbox_unpublished ON outbox(created_at) WHERE published_at IS NULL;
CREATE INDEX idx_outbox_published ON outbox(published_at) WHERE published_at IS NOT NULL;

-- Wake relays as soon as something is written (one notification per statement).
CREATE FUNCTION hub_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hub_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION hub_outbox_notify();

-- Consumer idempotency: a handler's work and this row commit together.
CREATE TABLE processed_events (
    consumer      VARCHAR(100) NOT NULL,
    event_id      UUID         NOT NULL,
    processed_at  TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX idx_processed_events_at ON processed_events(processed_at);

-- Domain events received by the hub, each once (webhook-dispatcher intake).
CREATE TABLE events (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    event_type      VARCHAR(200) NOT NULL,
    source          VARCHAR(200) NOT NULL,
    correlation_id  VARCHAR(100),
    occurred_at     TIMESTAMPTZ  NOT NULL,
    data            JSONB        NOT NULL,
    received_at     TIMESTAMPTZ  NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_events_tenant ON events(tenant_id, received_at DESC);

-- Audit trail: every tenant event seen on the bus (the manager consumes `#`).
CREATE TABLE audit_log (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    event_id        UUID NOT NULL,
    event_type      VARCHAR(200) NOT NULL,
    source          VARCHAR(200) NOT NULL,
    correlation_id  VARCHAR(100),
    occurred_at     TIMESTAMPTZ  NOT NULL,
    data            JSONB        NOT NULL,
    recorded_at     TIMESTAMPTZ  NOT NULL DEFAULT NOW(),
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX idx_audit_log_tenant ON audit_log(tenant_id, id DESC);
CREATE INDEX idx_audit_log_type ON audit_log(tenant_id, event_type, id DESC);
