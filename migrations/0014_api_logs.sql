-- Request logs (issue 27, item 6): one api_request_logs row per attempt,
-- written in batches by hub_gateway::logs::Recorder, searched by
-- GET /api/v1/api-logs/search, pruned after LOG_RETENTION_DAYS.
--
-- Ids are UUIDv7 chosen by the service, so `id` order is time order: a time
-- range is an id range (hub_uuid7_floor), pages are keyset-paged on `id`
-- newest first, and retention deletes walk the primary key.

-- Columns the API needs that the spec table lacks.
ALTER TABLE api_request_logs
    ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1,
    -- Bytes cut from the stored bodies (0: stored whole, or not stored).
    ADD COLUMN body_truncated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN response_truncated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN timed_out BOOLEAN NOT NULL DEFAULT false;

-- URLs and paths are redacted and kept whole; varchar(1000) would fail a
-- batch on one long URL. (varchar -> text does not rewrite the table.)
ALTER TABLE api_request_logs
    ALTER COLUMN url TYPE TEXT,
    ALTER COLUMN path TYPE TEXT,
    ALTER COLUMN response_size TYPE BIGINT,
    ALTER COLUMN body_size TYPE BIGINT,
    ALTER COLUMN tenant_id SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL;

-- Foreign keys cost the writer a lookup per row and key (tenant, integration,
-- user, and the self-reference of retry_of, which would also make retention
-- delete a row only after every retry of it). Rows are written by the
-- service from rows it just read, and tenants are never deleted;
-- integrations are soft-deleted.
ALTER TABLE api_request_logs
    DROP CONSTRAINT IF EXISTS api_request_logs_tenant_id_fkey,
    DROP CONSTRAINT IF EXISTS api_request_logs_integration_id_fkey,
    DROP CONSTRAINT IF EXISTS api_request_logs_user_id_fkey,
    DROP CONSTRAINT IF EXISTS api_request_logs_retry_of_fkey;

-- Indexes. Every index costs the writer (thousands of rows a second), so
-- there are four besides the primary key, each serving a search that would
-- otherwise scan a tenant's whole history:
--
-- * (tenant_id, id DESC): every search is tenant-scoped and newest first; a
--   time range is an id range within it. Filters that match a fair share of
--   rows (direction, method, path_prefix, a common status, q over a time
--   range) are checked on the rows this index yields, newest first, until a
--   page is full.
-- * (integration_id, id DESC): an integration's logs (GET
--   /integrations/{id}/logs, the integration_id filter) and its 24-hour
--   stats; the tenant is checked on the row.
-- * (tenant_id, correlation_id, id DESC) WHERE correlation_id IS NOT NULL:
--   the attempts of one client call, a needle in the haystack.
-- * (tenant_id, id DESC) WHERE status <> 'SUCCESS': failures are what people
--   search for and are (hopefully) rare: CLIENT_ERROR/SERVER_ERROR/TIMEOUT
--   and status codes >= 400 read this small index; successful rows add no
--   entry to it.
--
-- The hub schema's (tenant_id, created_at), (integration_id, created_at),
-- (correlation_id) and (status, created_at) are replaced by these.
DROP INDEX IF EXISTS idx_api_logs_tenant;
DROP INDEX IF EXISTS idx_api_logs_integration;
DROP INDEX IF EXISTS idx_api_logs_correlation;
DROP INDEX IF EXISTS idx_api_logs_status;

CREATE INDEX idx_api_logs_tenant_id ON api_request_logs (tenant_id, id DESC);
CREATE INDEX idx_api_logs_integration_id ON api_request_logs (integration_id, id DESC)
    WHERE integration_id IS NOT NULL;
CREATE INDEX idx_api_logs_correlation_id ON api_request_logs (tenant_id, correlation_id, id DESC)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX idx_api_logs_failures ON api_request_logs (tenant_id, id DESC)
    WHERE status <> 'SUCCESS';

-- The smallest UUIDv7 of a millisecond: `id >= hub_uuid7_floor(t)` is "made
-- at or after t", which the indexes on id serve.
CREATE FUNCTION hub_uuid7_floor(t TIMESTAMPTZ) RETURNS UUID
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM t) * 1000)::bigint), 12, '0')
            || '70000000000000000000')::uuid
$$;

-- The hourly usage rows (rate_limit_buckets, bucket_key 'usage:hour',
-- max_requests 0) are upserted by the log writer on the existing
-- UNIQUE (integration_id, bucket_key, window_start).
