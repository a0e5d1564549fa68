-- EXPORT (issue 29): local changes pushed back to providers.
--
-- An integration opts in to the platform events whose changes it exports
-- (`export_events`, checked against its provider's manifest: the events the
-- manifest's `sync.entities.*.export.events` name). A consumed event becomes a local
-- change of a `sync_records` row (`local_data`, `local_changed_at`), found by the
-- provider's id when the event carries it, else by the platform's own id of the record
-- (`local_key`). A record the provider does not have yet is held under the placeholder
-- key `local:<local_key>` until the export creates it and re-keys the row to the
-- provider's id, so the next pull finds it instead of creating a second copy.
ALTER TABLE integrations ADD COLUMN export_events TEXT[] NOT NULL DEFAULT '{}';

ALTER TABLE sync_records ADD COLUMN local_key TEXT;
CREATE UNIQUE INDEX sync_records_local_key
    ON sync_records (integration_id, entity_type, local_key) WHERE local_key IS NOT NULL;
