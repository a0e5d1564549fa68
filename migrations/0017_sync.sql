-- The sync engine (issue 29).
--
-- sync_jobs (from the hub schema) gains what a job needs to run on any replica and
-- survive a crash: a lease (owner and expiry; an expired lease is claimed again and the
-- job resumes from its checkpoint, the provider's paging state after the last committed
-- page), progress counters per outcome, a cancel request honoured between pages, the
-- watermark an INCREMENTAL run starts from and the newest source timestamp it saw, and
-- the deletion guard of a FULL_SYNC.
ALTER TABLE sync_jobs
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN created_by_key UUID,
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_until TIMESTAMPTZ,
    ADD COLUMN runs INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN checkpoint JSONB,
    ADD COLUMN current_page INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN created_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN updated_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN unchanged_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN conflict_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN deleted_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN cancel_requested_at TIMESTAMPTZ,
    ADD COLUMN watermark TIMESTAMPTZ,
    ADD COLUMN high_watermark TIMESTAMPTZ,
    ADD COLUMN confirm_deletions BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN max_delete_share DOUBLE PRECISION NOT NULL DEFAULT 0.2,
    ADD COLUMN error_message TEXT,
    ADD COLUMN rolled_back_at TIMESTAMPTZ;

-- One job at a time per integration and entity: a second while one is pending or
-- running is refused (409).
CREATE UNIQUE INDEX sync_jobs_one_active
    ON sync_jobs (integration_id, entity_type) WHERE status IN ('PENDING', 'RUNNING');
-- The claimer's two queues: due pending jobs, and running jobs whose lease lapsed.
CREATE INDEX sync_jobs_due ON sync_jobs (scheduled_at) WHERE status = 'PENDING';
CREATE INDEX sync_jobs_leased ON sync_jobs (lease_until) WHERE status = 'RUNNING';
-- Lists, keyset-paged on id (UUIDv7: newest first is id order).
CREATE INDEX sync_jobs_list ON sync_jobs (tenant_id, id DESC);
-- Retention: finished jobs older than 30 days.
CREATE INDEX sync_jobs_finished ON sync_jobs (completed_at) WHERE completed_at IS NOT NULL;

-- The hub's copy of each synced record: the mapped entity, its content hash (an
-- unchanged record is not rewritten and raises no event), the provider's timestamp of
-- the version held, and a local change not yet exported (`local_changed_at`), which a
-- newer provider version beats and an older one loses to (sync_conflicts keeps the
-- loser). Deleted records are kept, marked.
CREATE TABLE sync_records (
    integration_id UUID NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    external_id TEXT NOT NULL,
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    id UUID NOT NULL,
    data JSONB NOT NULL,
    content_hash BYTEA NOT NULL,
    source_updated_at TIMESTAMPTZ,
    local_changed_at TIMESTAMPTZ,
    local_data JSONB,
    deleted_at TIMESTAMPTZ,
    created_by_job UUID,
    updated_by_job UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, entity_type, external_id)
);
CREATE UNIQUE INDEX sync_records_id ON sync_records (id);
CREATE INDEX sync_records_list ON sync_records (tenant_id, entity_type, id);
-- EXPORT: the local changes waiting to be pushed.
CREATE INDEX sync_records_pending ON sync_records (integration_id, entity_type, local_changed_at)
    WHERE local_changed_at IS NOT NULL;

-- Conflicts: both versions, who won and by which rule; an operator may re-resolve one.
CREATE TABLE sync_conflicts (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    integration_id UUID NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    job_id UUID,
    entity_type TEXT NOT NULL,
    external_id TEXT NOT NULL,
    local_version JSONB NOT NULL,
    remote_version JSONB NOT NULL,
    local_at TIMESTAMPTZ,
    remote_at TIMESTAMPTZ,
    winner TEXT NOT NULL,
    rule TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    resolved_by_key UUID,
    resolution TEXT
);
CREATE INDEX sync_conflicts_list ON sync_conflicts (tenant_id, id DESC);
CREATE INDEX sync_conflicts_job ON sync_conflicts (job_id, id);

-- Per-record outcomes a job must remember: errors (invalid records, mapping
-- failures) and the before-image of every record it changed, for rollback. Created
-- records need no image (rollback deletes what `created_by_job` names); unchanged
-- records write nothing.
CREATE TABLE sync_job_items (
    job_id UUID NOT NULL REFERENCES sync_jobs(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    page INTEGER NOT NULL,
    before_data JSONB,
    before_hash BYTEA,
    before_source_at TIMESTAMPTZ,
    before_deleted_at TIMESTAMPTZ,
    error JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, external_id)
);
CREATE INDEX sync_job_items_errors ON sync_job_items (job_id, created_at) WHERE outcome = 'ERROR';

-- The records a FULL_SYNC has seen so far (kept across a crash, so a resumed run still
-- knows what the provider no longer has); emptied when the job ends.
CREATE TABLE sync_seen (
    job_id UUID NOT NULL REFERENCES sync_jobs(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    PRIMARY KEY (job_id, external_id)
);

-- The last successful run's watermark per integration and entity: INCREMENTAL asks the
-- provider for what changed after it.
CREATE TABLE sync_watermarks (
    integration_id UUID NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    watermark TIMESTAMPTZ NOT NULL,
    job_id UUID NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, entity_type)
);
