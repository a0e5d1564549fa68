-- OAuth2 connections (issue 27, item 1).

-- The integration's OAuth app (sealed {"client_id", "client_secret"}, context
-- integration:<id>:oauth_client), the refresh token's expiry, when the tokens
-- were last refreshed (idle connections are refreshed once 80% of the refresh
-- token's lifetime has passed), the earliest next refresh attempt after a
-- failure (so callers on every replica do not each call the token endpoint),
-- consecutive refresh failures, and the tenants a token may act for (Xero's
-- /connections).
ALTER TABLE integrations
    ADD COLUMN oauth_client_encrypted TEXT,
    ADD COLUMN oauth_refresh_expires_at TIMESTAMPTZ,
    ADD COLUMN oauth_refreshed_at TIMESTAMPTZ,
    ADD COLUMN oauth_retry_at TIMESTAMPTZ,
    ADD COLUMN oauth_failures INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN oauth_tenants JSONB;

-- The periodic refresh finds connected integrations by expiry.
CREATE INDEX integrations_oauth_expiry ON integrations(oauth_expires_at)
    WHERE deleted_at IS NULL AND oauth_tokens IS NOT NULL;

-- Pending authorizations: the state is stored as its SHA-256 only, bound to
-- the tenant and integration, single use (used_at), 10 minutes (expires_at).
CREATE TABLE oauth_states (
    state_hash       VARCHAR(64) PRIMARY KEY,
    tenant_id        UUID NOT NULL,
    integration_id   UUID NOT NULL,
    api_key_id       UUID NOT NULL,  -- the key that asked (the callback acts for it)
    code_verifier    TEXT,          -- sealed PKCE verifier (context oauth_state:<hash>)
    redirect_uri     TEXT NOT NULL,
    redirect_after   TEXT,
    scopes           JSONB NOT NULL DEFAULT '[]',
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

-- Token answers journaled (sealed, in their own autocommit statement) before
-- they are applied to the integration row, so a crash between the provider's
-- answer and the save cannot lose a rotated refresh token: a refresh that
-- finds an entry applies it instead of using the old refresh token. Applying
-- deletes the entry in the same transaction as the row's update.
CREATE TABLE oauth_token_journal (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL,
    integration_id   UUID NOT NULL,
    answer           TEXT NOT NULL,  -- sealed TokenAnswer (context integration:<id>:oauth_journal)
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX oauth_token_journal_integration ON oauth_token_journal(tenant_id, integration_id, id);
