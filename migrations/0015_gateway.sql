-- The API gateway (issue 27): rate limits exact across replicas and the
-- per-integration circuit breaker.

-- Rate limits count requests per fixed window (aligned to the epoch) in
-- rate_limit_buckets: one row per (integration, 'window:<seconds>', window start), the
-- count granted to every replica together (a limit with another window length
-- counts in other rows). A statement that grants tokens
-- records how many it granted in last_grant (UPDATE … SET sees the old count,
-- RETURNING the new one), so one round trip both takes and tells.
ALTER TABLE rate_limit_buckets ADD COLUMN last_grant INTEGER NOT NULL DEFAULT 0;

-- An integration's own limit, instead of its provider's documented one
-- (NULL: the provider's, then DEFAULT_RATE_LIMIT per RATE_LIMIT_WINDOW_SECONDS).
ALTER TABLE integrations
    ADD COLUMN rate_limit_requests INTEGER CHECK (rate_limit_requests > 0),
    ADD COLUMN rate_limit_window_seconds INTEGER CHECK (rate_limit_window_seconds > 0);

-- A provider's own "slow down" (429 with Retry-After, Salesforce's
-- REQUEST_LIMIT_EXCEEDED, …) holds every replica's calls to the integration
-- until blocked_until.
CREATE TABLE rate_limit_blocks (
    integration_id UUID PRIMARY KEY REFERENCES integrations(id),
    blocked_until  TIMESTAMPTZ NOT NULL,
    reason         TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Old windows are pruned by window_end.
CREATE INDEX rate_limit_buckets_window_end ON rate_limit_buckets (window_end)
    WHERE bucket_key LIKE 'window:%';
