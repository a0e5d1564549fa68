//! Fan-out: an event becomes one delivery per matching live subscription of
//! its tenant, in the transaction that stores the event.

use hub_domain::Envelope;
use hub_domain::webhook::{matches_any, parse_patterns};
use hub_storage::deliveries::{self, NewDelivery};
use hub_storage::{Result, Tx};

/// Event types the dispatcher itself produces: never delivered or taken in
/// again, so a delivery outcome cannot trigger deliveries.
pub const OWN_TYPES: &[&str] = &["webhook.delivered", "webhook.failed"];

/// Hub bookkeeping about webhooks themselves (subscription changes, test
/// sends): audited, never delivered to receivers.
pub const INTERNAL_PREFIXES: &[&str] =
    &["webhook.subscription.", "webhook.endpoint.", "webhook.test"];

/// Whether `event_type` may fan out.
pub fn deliverable(event_type: &str) -> bool {
    !OWN_TYPES.contains(&event_type) && !INTERNAL_PREFIXES.iter().any(|p| event_type.starts_with(p))
}

/// Stores `events` (each id once) and creates their deliveries. Events seen
/// before, without a tenant, or of the dispatcher's own types create
/// nothing. Returns `(new events, deliveries created)`.
pub async fn fan_out(tx: &mut Tx<'_>, events: &[Envelope]) -> Result<(usize, u64)> {
    let events: Vec<&Envelope> = events
        .iter()
        .filter(|e| e.tenantid.is_some() && deliverable(e.event_type.as_str()))
        .collect();
    if events.is_empty() {
        return Ok((0, 0));
    }
    let owned: Vec<Envelope> = events.iter().map(|e| (*e).clone()).collect();
    let fresh = deliveries::insert_events(tx, &owned).await?;
    if fresh.is_empty() {
        return Ok((0, 0));
    }
    let mut tenants: Vec<uuid::Uuid> = owned
        .iter()
        .filter_map(|e| e.tenantid.map(|t| t.0))
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    let targets = hub_storage::subscriptions::targets(tx, &tenants).await?;
    let patterns: Vec<_> = targets
        .iter()
        .map(|t| parse_patterns(&t.event_types).unwrap_or_default())
        .collect();
    let mut new = Vec::new();
    for e in owned.iter().filter(|e| fresh.contains(&e.id.0)) {
        let tenant = e.tenantid.map(|t| t.0);
        let payload = serde_json::to_value(e).expect("an envelope always serializes");
        for (t, p) in targets.iter().zip(&patterns) {
            if Some(t.tenant_id) == tenant && matches_any(p, e.event_type.as_str()) {
                new.push(NewDelivery {
                    id: uuid::Uuid::now_v7(),
                    subscription_id: t.id,
                    tenant_id: t.tenant_id,
                    event_type: e.event_type.as_str().to_owned(),
                    event_id: e.id.0,
                    payload: payload.clone(),
                    request_url: t.url.clone(),
                });
            }
        }
    }
    let created = deliveries::insert(tx, &new).await?;
    Ok((fresh.len(), created))
}
