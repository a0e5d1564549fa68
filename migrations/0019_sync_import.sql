-- IMPORT jobs (issue 29): the uploaded file is stored with its job, in the transaction
-- that creates the job, so nothing accepted is lost; integration-sync reads it from
-- here. `max_error_share` is the job's threshold of invalid records (over it the import
-- is rolled back and fails); `transform_template` optionally turns the file into records.
CREATE TABLE sync_uploads (
    job_id UUID PRIMARY KEY REFERENCES sync_jobs(id) ON DELETE CASCADE,
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    format TEXT NOT NULL,
    content TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 BYTEA NOT NULL,
    transform_template JSONB,
    max_error_share DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sync_uploads_tenant ON sync_uploads (tenant_id);

