//! A provider's webhook updates the synced records it names at once:
//! integration-manager publishes `integration.webhook.received` for a
//! received request (its id, and the endpoint's `integration_id`; the body
//! is read from `inbound_events`);
//! the integration's manifest says how the payload names records
//! (`sync.webhooks`: the events, their type → entity, the record's id, and
//! the record if the event embeds it). A record not embedded is re-read by
//! id with the entity's `get` call through the gateway (HubSpot's webhooks
//! carry `objectId` and the changed property only). Each record then goes
//! the way a pulled one does: record schema, mapping, `decide` against the
//! held copy, upsert or conflict, and `integration.<entity>.updated` only
//! when it changed.

use crate::pull::{self, Stopped};
use crate::worker::Engine;
use hub_bus::HandlerError;
use hub_bus::relay::Staged;
use hub_connectors::sync::{PageRead, WebhookRef};
use hub_domain::{Envelope, EventType, TenantId};
use hub_storage::Tx;
use hub_storage::sync::{self as store, Page, Target};
use serde_json::{Value, json};
use uuid::Uuid;

/// The event [`on_webhook`] handles (routed by [`crate::consume`]).
pub const RECEIVED: &str = "integration.webhook.received";

impl From<Stopped> for HandlerError {
    fn from(s: Stopped) -> Self {
        match s {
            Stopped::Failed(m) => HandlerError::Failed(m),
            Stopped::Interrupted(m) => HandlerError::Transient(m),
            Stopped::LeaseLost | Stopped::Shutdown | Stopped::Cancelled => {
                HandlerError::Transient("stopping".into())
            }
        }
    }
}

/// Applies the inbound webhook `event` to the synced records it names, in
/// `tx`; the events to publish once `tx` commits (`None`: nothing to do:
/// no integration, no `sync.webhooks` in its manifest, or nothing changed).
pub async fn on_webhook(
    engine: &Engine,
    tx: &mut Tx<'_>,
    event: &Envelope,
) -> Result<Option<Staged>, HandlerError> {
    let Some(tenant) = event.tenantid else {
        return Ok(None);
    };
    let Some(integration) = event
        .data
        .get("integration_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Ok(None);
    };
    // The event names the received request; its body is the payload.
    let Some(received) = event
        .data
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Ok(None);
    };
    let Some(body) = hub_storage::sync_import::inbound_body(tx, tenant, received).await? else {
        return Ok(None);
    };
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return Ok(None);
    };
    let Some(it) = engine
        .gateway
        .load(tenant, integration)
        .await
        .map_err(|e| HandlerError::Transient(format!("loading the integration: {e}")))?
    else {
        return Ok(None);
    };
    let Some(hooks) = it.manifest.sync.as_ref().and_then(|s| s.webhooks.as_ref()) else {
        return Ok(None);
    };
    let refs = hooks.refs(&payload);
    let mut entities: Vec<&str> = refs.iter().map(|r| r.entity.as_str()).collect();
    entities.dedup();
    let mut events = Vec::new();
    for entity in entities {
        let plan = pull::plan_for(engine, tenant, it.clone(), entity, None).await?;
        let mut raws = Vec::new();
        for r in refs.iter().filter(|r| r.entity == entity) {
            if let Some(raw) = record_of(engine, &plan, r).await? {
                raws.push(raw);
            }
        }
        let read = PageRead {
            records: raws,
            next: None,
            total: None,
        };
        let (records, page) = pull::build_page(&plan, false, read, 0, &None);
        for item in &page.items {
            tracing::warn!(integration = %integration, entity, external_id = %item.external_id,
                error = ?item.error, "a webhook's record was refused");
        }
        let mut decided = Page::default();
        let changed = pull::decide_held(tx, integration, entity, records, &mut decided).await?;
        let target = Target {
            tenant: tenant.0,
            integration,
            entity,
            job: None,
        };
        store::write_records(tx, &target, &decided.upserts, &decided.conflicts).await?;
        for c in changed {
            events.push(Envelope::new(
                crate::NAME,
                EventType::parse(&plan.updated_event)
                    .map_err(|e| HandlerError::Failed(e.to_string()))?,
                Some(TenantId(tenant.0)),
                json!({"record_id": c.id, "external_id": c.external_id, "entity": plan.spec.entity,
                       "change": c.change, "record": c.data, "integration_id": integration,
                       "entity_type": entity, "source": "webhook",
                       "inbound_event_id": received}),
            ));
        }
        metrics::counter!("hub_sync_webhook_records_total")
            .increment(u64::try_from(decided.progress.success).unwrap_or(0));
    }
    if events.is_empty() {
        return Ok(None);
    }
    Ok(Some(engine.outbox.stage(tx, &events).await?))
}

/// The provider's record a webhook names: embedded, or re-read by id
/// (`None`: the provider no longer has it, or the manifest cannot read
/// one).
async fn record_of(
    engine: &Engine,
    plan: &pull::Plan,
    r: &WebhookRef,
) -> Result<Option<Value>, HandlerError> {
    if let Some(record) = &r.record {
        return Ok(Some(record.clone()));
    }
    let Some(req) = plan.spec.get_request(&r.id) else {
        tracing::warn!(entity = %r.entity, "the manifest has no get call: a webhook's record cannot be read");
        return Ok(None);
    };
    let (status, body) = pull::call(engine, &plan.it, &req).await?;
    match status {
        200..=299 => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| HandlerError::Failed(format!("the provider's record is not JSON: {e}"))),
        404 | 410 => Ok(None),
        s => Err(HandlerError::Failed(format!(
            "reading {} {} answered {s}: {}",
            r.entity,
            r.id,
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        ))),
    }
}
