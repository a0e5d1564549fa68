-- Web console sessions (issue 30). The cookie holds a random id; only its
-- SHA-256 is stored. The credential the session calls the public API with
-- (a tenant's API key, or the operator's admin token) is sealed with the
-- credentials keyring (context console_session:<id_hash>). A session ends at
-- expires_at or at sign-out; expired rows are deleted at each sign-in.
CREATE TABLE console_sessions (
    id_hash           VARCHAR(64) PRIMARY KEY,
    kind              VARCHAR(10) NOT NULL CHECK (kind IN ('TENANT', 'OPERATOR')),
    tenant_id         UUID REFERENCES tenants(id) ON DELETE CASCADE,
    credential_sealed TEXT NOT NULL,
    csrf_token        VARCHAR(64) NOT NULL,
    label             VARCHAR(200) NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at        TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'TENANT') = (tenant_id IS NOT NULL))
);

CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
