//! Platform events that become local changes to export (issue 29):
//! `invoice.generated`, `order.status_changed`, `carrier.approved`,
//! `shard.updated`. For each of the event's tenant's integrations that
//! opted in to it (`integrations.export_events`), every entity of its
//! provider's manifest whose `export.events` names it gets the change
//! (`sync_records.local_data`, `local_changed_at`; a record the provider does
//! not have yet is held under a placeholder key) and an EXPORT job, unless
//! one is already pending or running: a burst of events is one job.
//!
//! [`on_event`] runs inside the consumer's transaction, with the
//! idempotency marker: a redelivered event changes nothing twice.

use hub_bus::consumer::HandlerError;
use hub_connectors::manifest::ProviderManifest;
use hub_domain::Envelope;
use hub_domain::sync::{content_hash, placeholder};
use hub_storage::Tx;
use hub_storage::export::{self as store, LocalChange};
use std::collections::HashMap;
use uuid::Uuid;

/// The event types that may be exported (the queue's bindings).
pub const BINDINGS: &[&str] = &[
    "invoice.generated",
    "order.status_changed",
    "carrier.approved",
    "shard.updated",
];

/// Turns `event` into local changes and EXPORT jobs, in `tx`. An event
/// without a tenant, or whose data the manifest cannot read (no record id),
/// changes nothing and is logged: retrying it would not help.
pub async fn on_event(
    tx: &mut Tx<'_>,
    catalog: &HashMap<String, ProviderManifest>,
    event: &Envelope,
) -> Result<(), HandlerError> {
    let Some(tenant) = event.tenantid else {
        return Ok(());
    };
    let kind = event.event_type.as_str();
    for it in store::exporting(tx, tenant, kind).await? {
        let Some(manifest) = catalog.get(&it.provider_code) else {
            continue;
        };
        let entities = manifest.sync.iter().flat_map(|s| &s.entities);
        for (entity, spec) in entities {
            let Some(how) = spec.export.as_ref().and_then(|x| x.events.get(kind)) else {
                continue;
            };
            let change = match how.read(&event.data) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(event = %event.id_text(), integration = %it.integration_id,
                        entity, error = %e, "the event names no record to export; skipped");
                    continue;
                }
            };
            let record = serde_json::Value::Object(change.record);
            let (external_id, known) = match change.external_id {
                Some(id) => (id, true),
                None => (placeholder(&change.key), false),
            };
            let local = LocalChange {
                key: change.key,
                external_id,
                known,
                hash: content_hash(&record).to_vec(),
                record,
                at: event.time,
                id: Uuid::now_v7(),
            };
            store::record_changes(tx, tenant, it.integration_id, entity, &[local]).await?;
            if let Some(job) = store::trigger(tx, tenant, it.integration_id, entity).await? {
                tracing::debug!(%job, integration = %it.integration_id, entity, "EXPORT job triggered");
            }
        }
    }
    Ok(())
}

/// The exportable events' handler, over the provider catalog
/// ([`crate::consume`] routes [`BINDINGS`] here).
pub struct Triggers {
    catalog: &'static HashMap<String, ProviderManifest>,
}

impl Triggers {
    /// The handler over the provider catalog.
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            catalog: hub_gateway::assemble::catalog()?,
        })
    }

    /// Handles one exportable `event` in `tx` (see [`on_event`]).
    pub async fn handle(&self, tx: &mut Tx<'_>, event: &Envelope) -> Result<(), HandlerError> {
        on_event(tx, self.catalog, event).await
    }
}
