-- Integration management additions (issue 5).

-- The provider's whole manifest (auth placement, test call, capabilities);
-- the spec's columns stay filled from it for queries.
ALTER TABLE integration_providers
    ADD COLUMN manifest JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN manifest_hash VARCHAR(64);

-- Per-tenant catalog visibility: a row hides a provider from a tenant.
CREATE TABLE provider_visibility (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    provider_id  UUID NOT NULL REFERENCES integration_providers(id),
    hidden       BOOLEAN NOT NULL DEFAULT true,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (tenant_id, provider_id)
);

-- Credentials: API keys in api_key_encrypted and OAuth tokens in oauth_tokens
-- (as the spec has them), basic credentials here; all sealed (AES-256-GCM with
-- a key id). credentials_hint says which are set and their last four characters.
ALTER TABLE integrations
    ADD COLUMN basic_auth_encrypted TEXT,
    ADD COLUMN credentials_hint JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN created_by_key UUID,
    ADD COLUMN updated_by_key UUID,
    ADD COLUMN deleted_at TIMESTAMPTZ;

-- Deleted integrations keep their rows (logs and jobs reference them); the
-- one-per-environment rule applies to live ones.
ALTER TABLE integrations DROP CONSTRAINT integrations_tenant_id_provider_id_environment_key;
CREATE UNIQUE INDEX integrations_live_environment
    ON integrations(tenant_id, provider_id, environment) WHERE deleted_at IS NULL;
CREATE INDEX idx_integrations_tenant_id ON integrations(tenant_id, id) WHERE deleted_at IS NULL;
