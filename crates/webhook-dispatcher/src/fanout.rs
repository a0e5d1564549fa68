//! Fan-out: an event becomes one delivery per matching live subscription of
//! its tenant, in the transaction that stores the event.
//!
//! Deliveries this dispatcher can send at once (an ACTIVE subscription with a
//! closed breaker, and a free send slot) are created already leased to it and
//! come back as a [`Handoff`]: started right after the commit, they skip the
//! claim query and the wake-up round trip. The rest wait for a claimer, which
//! the insert notifies.

use crate::worker::{Dispatcher, Reservation};
use chrono::Utc;
use hub_domain::status::SubscriptionStatus;
use hub_domain::webhook::{BreakerState, matches_any, parse_patterns};
use hub_domain::{Envelope, TenantId};
use hub_storage::deliveries::{self, Claimed, NewDelivery};
use hub_storage::{Result, Tx};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

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

/// Deliveries created leased to this dispatcher, to start after the commit.
pub struct Handoff {
    claimed: Vec<Claimed>,
    slots: Reservation,
}

impl Handoff {
    /// Starts the sends (call only after the transaction committed).
    pub fn start(self, dispatcher: &Arc<Dispatcher>) {
        dispatcher.start(self.claimed, self.slots);
    }
}

/// What a fan-out did.
#[derive(Default)]
pub struct FanOut {
    /// Ids of the events stored for the first time.
    pub fresh: HashSet<Uuid>,
    /// Deliveries created per event id.
    pub deliveries: HashMap<Uuid, u64>,
    /// Deliveries to start after the commit.
    pub handoff: Option<Handoff>,
}

/// One new delivery per fresh event (each id once) and enabled subscription
/// of its tenant whose `event_types` match it, with the subscription when it
/// may be sent at once (active, breaker closed).
fn matching<'a>(
    owned: &[Envelope],
    fresh: &HashSet<Uuid>,
    targets: &'a [Arc<hub_storage::subscriptions::Subscription>],
) -> Vec<(
    NewDelivery,
    Option<&'a Arc<hub_storage::subscriptions::Subscription>>,
)> {
    let patterns: Vec<_> = targets
        .iter()
        .map(|t| parse_patterns(&t.event_types).unwrap_or_default())
        .collect();
    // (delivery, whether it may be handed to this dispatcher)
    let mut new = Vec::new();
    let mut seen = HashSet::new();
    for e in owned.iter().filter(|e| fresh.contains(&e.id.0)) {
        if !seen.insert(e.id.0) {
            continue; // the same id twice in one batch
        }
        let tenant = e.tenantid.map(|t| t.0);
        let payload = serde_json::to_value(e).expect("an envelope always serializes");
        for (t, p) in targets.iter().zip(&patterns) {
            if Some(t.tenant_id) == tenant && matches_any(p, e.event_type.as_str()) {
                let sendable = t.status == SubscriptionStatus::Active
                    && t.circuit_state == BreakerState::Closed.as_str();
                new.push((
                    NewDelivery {
                        id: Uuid::now_v7(),
                        subscription_id: t.id,
                        tenant_id: t.tenant_id,
                        event_type: e.event_type.as_str().to_owned(),
                        event_id: e.id.0,
                        payload: payload.clone(),
                        request_url: t.url.clone(),
                    },
                    sendable.then_some(t),
                ));
            }
        }
    }
    new
}

/// Stores `events` (each id once) and creates their deliveries. Events seen
/// before, without a tenant, or of the dispatcher's own types create
/// nothing. Deliveries `dispatcher` can send now are leased to it.
pub async fn fan_out(
    tx: &mut Tx<'_>,
    events: &[Envelope],
    dispatcher: &Dispatcher,
) -> Result<FanOut> {
    let owned: Vec<Envelope> = events
        .iter()
        .filter(|e| e.tenantid.is_some() && deliverable(e.event_type.as_str()))
        .cloned()
        .collect();
    if owned.is_empty() {
        return Ok(FanOut::default());
    }
    let fresh: HashSet<Uuid> = deliveries::insert_events(tx, &owned)
        .await?
        .into_iter()
        .collect();
    if fresh.is_empty() {
        return Ok(FanOut::default());
    }
    let mut tenants: Vec<TenantId> = owned.iter().filter_map(|e| e.tenantid).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let targets: Vec<Arc<hub_storage::subscriptions::Subscription>> =
        hub_storage::subscriptions::targets(tx, &tenants)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
    let new = matching(&owned, &fresh, &targets);
    let wanted = new.iter().filter(|(_, s)| s.is_some()).count();
    let slots = dispatcher.reserve(wanted);
    let mut granted = slots.as_ref().map_or(0, Reservation::len);
    let mut leased = Vec::new();
    let mut waiting = Vec::new();
    let mut subs: HashMap<Uuid, &Arc<_>> = HashMap::new();
    for (d, sendable) in new {
        match sendable {
            Some(s) if granted > 0 => {
                granted -= 1;
                subs.insert(d.id, s);
                leased.push(d);
            }
            _ => waiting.push(d),
        }
    }
    let mut out = FanOut {
        fresh,
        ..FanOut::default()
    };
    let created_waiting: HashSet<Uuid> = deliveries::insert(tx, &waiting, None)
        .await?
        .into_iter()
        .collect();
    let created_leased: HashSet<Uuid> = if leased.is_empty() {
        HashSet::new()
    } else {
        deliveries::insert(tx, &leased, Some(dispatcher.lease_secs()))
            .await?
            .into_iter()
            .collect()
    };
    for d in waiting.iter().filter(|d| created_waiting.contains(&d.id)) {
        *out.deliveries.entry(d.event_id).or_default() += 1;
    }
    let now = Utc::now();
    let mut claimed = Vec::with_capacity(created_leased.len());
    for d in leased
        .into_iter()
        .filter(|d| created_leased.contains(&d.id))
    {
        *out.deliveries.entry(d.event_id).or_default() += 1;
        claimed.push(Claimed {
            id: d.id,
            subscription_id: d.subscription_id,
            tenant_id: d.tenant_id,
            subscription: subs[&d.id].clone(),
            event_type: d.event_type,
            event_id: d.event_id,
            payload: d.payload,
            attempt_number: 0,
            attempt_base: 0,
            created_at: now,
            probe: false,
        });
    }
    if let Some(slots) = slots
        && !claimed.is_empty()
    {
        out.handoff = Some(Handoff { claimed, slots });
    }
    Ok(out)
}
