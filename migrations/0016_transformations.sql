-- Transformation templates API (issue 28): format options, soft delete, who changed
-- what, one row per version (a deleted template's rows are kept, out of the unique keys). System templates have tenant_id NULL; versions of one
-- template share (tenant_id, code), and at most one of them is active.
ALTER TABLE transformation_templates
    ADD COLUMN source_options JSONB,
    ADD COLUMN target_options JSONB,
    ADD COLUMN deleted_at TIMESTAMPTZ,
    ADD COLUMN created_by_key UUID,
    ADD COLUMN updated_by_key UUID;

CREATE UNIQUE INDEX transformation_templates_version_key
    ON transformation_templates (tenant_id, code, version) NULLS NOT DISTINCT
    WHERE deleted_at IS NULL;

CREATE UNIQUE INDEX transformation_templates_active_key
    ON transformation_templates (tenant_id, code) NULLS NOT DISTINCT
    WHERE is_active AND deleted_at IS NULL;

-- Lists: the tenant's templates and the system ones, keyset-paged on id.
CREATE INDEX transformation_templates_list_idx
    ON transformation_templates (tenant_id, id) WHERE deleted_at IS NULL;
