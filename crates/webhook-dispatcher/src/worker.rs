//! Delivery workers.
//!
//! One claimer leases due deliveries in batches (`FOR UPDATE SKIP LOCKED`),
//! woken by LISTEN/NOTIFY, and starts one send per delivery while fewer than
//! `WEBHOOK_QUEUE_SIZE` are in flight. `WEBHOOK_WORKERS` recorders take
//! finished attempts in batches and commit, in one transaction per batch:
//! the attempts, the delivery states, counter deltas, breaker and streak
//! changes, and the outbox events. A dispatcher that dies leaves leases that
//! expire; the deliveries are claimed again.

use chrono::{DateTime, Utc};
use hub_bus::backoff::Backoff as _;
use hub_connectors::client::TargetPolicy;
use hub_connectors::webhook::{AttemptResult, Outbound, Sender, open_subscription, render_body};
use hub_domain::secret::Keyring;
use hub_domain::status::{DeliveryStatus, SubscriptionStatus};
use hub_domain::webhook::{
    AUTO_DISABLE_AFTER, Breaker, BreakerPolicy, BreakerState, RetryPolicy, Transition,
};
use hub_domain::{Envelope, EventType, TenantId};
use hub_platform::server::Context;
use hub_platform::transforms::{Reference, Templates};
use hub_storage::deliveries::{self, Attempt, BreakerRow, Claimed, CounterDelta, Streak};
use hub_storage::{Pool as PgPool, StorageError};
use hub_transform::pipeline::Input;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

/// Most deliveries claimed in one query.
const CLAIM_BATCH: u32 = 500;
/// Most attempts recorded in one transaction.
const RECORD_BATCH: usize = 500;
/// How long a recorder waits for more outcomes before committing a batch.
/// Recording is off the delivery's path (the receiver already has it), and
/// fuller batches cost far less per delivery when traffic is moderate.
const RECORD_LINGER: Duration = Duration::from_millis(20);
/// Longest sleep between claims when nothing wakes the claimer.
const POLL: Duration = Duration::from_millis(1000);
/// Wait after a failed claim, doubling up to [`CLAIM_RETRY_MAX`].
const CLAIM_RETRY_FIRST: Duration = Duration::from_millis(100);
const CLAIM_RETRY_MAX: Duration = Duration::from_secs(10);
/// Wait after a batch of outcomes failed to commit, doubling up to
/// [`RECORD_RETRY_MAX`] (the leases keep the rows ours meanwhile).
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// What the workers need, built once from the configuration.
pub struct Dispatcher {
    pool: PgPool,
    keyring: Keyring,
    sender: Sender,
    queue_size: usize,
    recorders: usize,
    lease_secs: u32,
    breaker: BreakerPolicy,
    default_max_retries: u32,
    /// Subscriptions whose breaker this process saw open: their claimed
    /// deliveries are released instead of sent.
    open: Mutex<HashMap<Uuid, Instant>>,
    /// One permit per send in flight (`WEBHOOK_QUEUE_SIZE`), shared by the
    /// claimer and fan-out hand-offs.
    slots: Arc<Semaphore>,
    /// Finished sends, to the recorders.
    done: mpsc::Sender<Done>,
    /// The process's relay, which publishes the recorded outcome events.
    outbox: hub_bus::relay::Handoff,
    /// The recorders' end, taken by [`Dispatcher::run`].
    finished: Mutex<Option<mpsc::Receiver<Done>>>,
    /// The transformation templates subscriptions reference.
    templates: Templates,
}

/// Send slots taken ahead of a fan-out: as many as it may hand off.
pub struct Reservation(tokio::sync::OwnedSemaphorePermit);

impl Reservation {
    /// How many deliveries it covers.
    pub fn len(&self) -> usize {
        self.0.num_permits()
    }

    /// Whether it covers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A finished (or skipped) send.
struct Done {
    claimed: Claimed,
    result: Option<AttemptResult>,
    finished_at: DateTime<Utc>,
    /// The request was never sent (the body could not be made, a secret
    /// could not be opened): a failed attempt that is retried as any other,
    /// but the receiver is not to blame, so its breaker and failure streak
    /// ignore it.
    unsent: bool,
}

impl Dispatcher {
    /// Builds the dispatcher from the service configuration.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, String> {
        let c = &ctx.config;
        let keyring = c.keyring().map_err(|e| e.to_string())?;
        let policy = TargetPolicy::allowing_private(c.hub_allow_private_targets);
        let queue_size = c.webhook_queue_size as usize;
        let (done, finished) = mpsc::channel::<Done>(queue_size.max(1) * 2);
        Ok(Arc::new(Self {
            pool: ctx.pool.clone(),
            keyring,
            sender: Sender::new(
                policy,
                Duration::from_secs(u64::from(c.webhook_timeout_seconds)),
                queue_size,
            ),
            queue_size,
            recorders: c.webhook_workers as usize,
            lease_secs: c.webhook_lease_seconds,
            breaker: c.breaker_policy(),
            default_max_retries: c.webhook_max_retries,
            open: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(queue_size.max(1))),
            done,
            outbox: ctx.outbox.clone(),
            finished: Mutex::new(Some(finished)),
            templates: Templates::new(ctx.pool.clone()),
        }))
    }

    /// The lease deliveries are taken for.
    pub fn lease_secs(&self) -> u32 {
        self.lease_secs
    }

    /// Takes up to `n` free send slots for deliveries about to be created;
    /// `None` when none is free (they then wait for a claimer).
    pub fn reserve(&self, n: usize) -> Option<Reservation> {
        let k = n.min(self.slots.available_permits());
        if k == 0 {
            return None;
        }
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        self.slots
            .clone()
            .try_acquire_many_owned(k)
            .ok()
            .map(Reservation)
    }

    /// Sends deliveries created leased to this process (after their
    /// transaction committed), one reserved slot each; unused slots go back.
    pub fn start(self: &Arc<Self>, claimed: Vec<Claimed>, mut slots: Reservation) {
        for c in claimed {
            let Some(permit) = slots.0.split(1) else {
                // More deliveries than slots cannot happen; if it did, the
                // lease expires and a claimer sends it.
                tracing::error!(delivery_id = %c.id, "handed-off delivery without a send slot");
                continue;
            };
            self.spawn_send(c, permit);
        }
    }

    fn spawn_send(self: &Arc<Self>, c: Claimed, permit: tokio::sync::OwnedSemaphorePermit) {
        let me = self.clone();
        tokio::spawn(async move {
            let d = me.send_one(c).await;
            let _ = me.done.send(d).await;
            drop(permit);
        });
    }

    /// Runs the claimer and the recorders until shutdown; in-flight sends
    /// finish and are recorded (or their leases expire) before it returns.
    pub async fn run(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let Some(rx) = self.finished.lock().expect("finished").take() else {
            tracing::error!("delivery workers started twice");
            return;
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        // Cancelled once every send has finished: recorders then write what
        // is left and stop.
        let drained = tokio_util::sync::CancellationToken::new();
        let mut recorders = Vec::new();
        for _ in 0..self.recorders.max(1) {
            let me = self.clone();
            let rx = rx.clone();
            let drained = drained.clone();
            recorders.push(tokio::spawn(
                async move { me.record_loop(rx, drained).await },
            ));
        }
        self.clone().claim_loop(shutdown).await;
        drained.cancel();
        for r in recorders {
            let _ = r.await;
        }
        tracing::info!("delivery workers stopped");
    }

    async fn claim_loop(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let slots = self.slots.clone();
        let mut wakeup = hub_storage::wake::Wakeup::new(self.pool.clone(), deliveries::CHANNEL);
        let mut last_probe = Instant::now() - Duration::from_secs(10);
        let mut backoff = hub_bus::backoff::doubling(CLAIM_RETRY_FIRST, CLAIM_RETRY_MAX);
        while !shutdown.is_cancelled() {
            let mut batch = Vec::new();
            if last_probe.elapsed() >= Duration::from_millis(500) {
                last_probe = Instant::now();
                match deliveries::claim_probes(&self.pool, self.lease_secs).await {
                    Ok((probes, _half_opened)) => batch.extend(probes),
                    Err(e) => tracing::warn!(error = %e, "claiming breaker probes failed"),
                }
            }
            let room = slots.available_permits().saturating_sub(batch.len());
            let want = (room as u32).min(CLAIM_BATCH);
            if want > 0 {
                match deliveries::claim(&self.pool, want, self.lease_secs).await {
                    Ok(c) => {
                        backoff.reset();
                        batch.extend(c)
                    }
                    Err(e) => {
                        let wait = backoff.next_backoff().unwrap_or(CLAIM_RETRY_MAX);
                        tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "claiming deliveries failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            }
            let full = want > 0 && batch.len() as u32 >= want;
            for c in batch {
                let permit = tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("semaphore never closes"),
                    _ = shutdown.cancelled() => {
                        let _ = deliveries::release(&self.pool, &[c.id]).await;
                        continue;
                    }
                };
                self.spawn_send(c, permit);
            }
            if full {
                // More is probably due; claim again once a slot frees.
                if slots.available_permits() == 0 {
                    tokio::select! {
                        p = slots.clone().acquire_owned() => drop(p),
                        _ = shutdown.cancelled() => {}
                    }
                }
                continue;
            }
            tokio::select! {
                _ = wakeup.wait(POLL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        // Wait for in-flight sends to finish (bounded by the send timeout).
        // Keep them: fan-out hands nothing more to this process.
        if let Ok(all) = slots.acquire_many(self.queue_size.max(1) as u32).await {
            all.forget();
        }
    }

    fn is_open_locally(&self, sub: Uuid) -> bool {
        let mut open = self.open.lock().expect("open set");
        match open.get(&sub) {
            Some(since) if since.elapsed() < self.breaker.open_for => true,
            Some(_) => {
                open.remove(&sub);
                false
            }
            None => false,
        }
    }

    async fn send_one(&self, c: Claimed) -> Done {
        if !c.probe && self.is_open_locally(c.subscription_id) {
            // The breaker opened after this was claimed: wait, spend nothing.
            return Done {
                claimed: c,
                result: None,
                finished_at: Utc::now(),
                unsent: true,
            };
        }
        let s = &c.subscription;
        let now = Utc::now();
        let sub_id = s.id.to_string();
        let ready = match open_subscription(&self.keyring, s.sealed(&sub_id), now) {
            Ok(opened) => self.body(&c).await.map(|body| (opened, body)),
            Err(e) => Err(e),
        };
        let unsent = ready.is_err();
        let result = match ready {
            Ok(((auth, secrets), (body, content_type))) => {
                let o = Outbound {
                    url: s.url.clone(),
                    content_type,
                    headers: hub_connectors::webhook::custom_headers(&s.headers),
                    auth,
                    secrets,
                    msg_id: c.event_id.to_string(),
                    timestamp: now.timestamp(),
                    body,
                    token_key: sub_id.clone(),
                };
                self.sender.send(&o).await
            }
            Err(e) => AttemptResult {
                success: false,
                status: None,
                response_headers: None,
                response_body: None,
                request_headers: serde_json::json!({}),
                latency: Duration::ZERO,
                error: Some(e),
                retry_after: None,
            },
        };
        metrics::histogram!("hub_webhook_attempt_seconds").record(result.latency.as_secs_f64());
        Done {
            claimed: c,
            result: Some(result),
            finished_at: Utc::now(),
            unsent,
        }
    }

    /// The body of a delivery and its content type: the event envelope, the
    /// fields a field map picks, or the output of the transformation
    /// template the subscription references (in its target format; the
    /// content type follows it unless the subscription sets one other than
    /// JSON's).
    async fn body(&self, c: &Claimed) -> Result<(Vec<u8>, String), String> {
        let s = &c.subscription;
        let template = s.transform_template.as_ref();
        let reference = match template.and_then(Reference::of) {
            None => {
                let body = render_body(&c.payload, template);
                let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                return Ok((bytes, s.content_type.clone()));
            }
            Some(r) => r.map_err(|e| format!("transform_template: {e}"))?,
        };
        let t = self
            .templates
            .get(TenantId(c.tenant_id), reference)
            .await
            .map_err(|e| format!("transformation template: {e}"))?;
        let out = t
            .transform(Input::Tree(&c.payload))
            .map_err(|e| format!("transformation template {e}"))?;
        let content_type = if s.content_type.eq_ignore_ascii_case("application/json") {
            t.compiled.output_media_type().to_owned()
        } else {
            s.content_type.clone()
        };
        Ok((out.text.into_bytes(), content_type))
    }

    async fn record_loop(
        &self,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Done>>>,
        drained: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let mut batch = Vec::new();
            {
                let mut rx = rx.lock().await;
                let first = tokio::select! {
                    d = rx.recv() => d,
                    _ = drained.cancelled() => rx.try_recv().ok(),
                };
                match first {
                    Some(d) => batch.push(d),
                    None => return,
                }
                let until = tokio::time::Instant::now() + RECORD_LINGER;
                while batch.len() < RECORD_BATCH {
                    match rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) if drained.is_cancelled() => break,
                        Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                            Ok(Some(d)) => batch.push(d),
                            Ok(None) | Err(_) => break,
                        },
                    }
                }
            }
            let mut backoff = hub_bus::backoff::doubling(RECORD_RETRY_FIRST, RECORD_RETRY_MAX);
            loop {
                match self.record(&batch).await {
                    Ok(()) => break,
                    Err(e) if e.is_transient() => {
                        // Leases keep the rows ours for a while; keep trying.
                        tracing::warn!(error = %e, "recording attempts failed; retrying");
                        tokio::time::sleep(backoff.next_backoff().unwrap_or(RECORD_RETRY_MAX))
                            .await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, n = batch.len(), "recording attempts failed; their leases will expire and they will be retried");
                        break;
                    }
                }
            }
        }
    }

    /// Commits one batch of outcomes.
    async fn record(&self, batch: &[Done]) -> Result<(), StorageError> {
        let skipped: Vec<Uuid> = batch
            .iter()
            .filter(|d| d.result.is_none())
            .map(|d| d.claimed.id)
            .collect();
        deliveries::release(&self.pool, &skipped).await?;
        let mut done: Vec<&Done> = batch.iter().filter(|d| d.result.is_some()).collect();
        if done.is_empty() {
            return Ok(());
        }
        done.sort_by_key(|d| d.finished_at);
        let plan = self.plan(&done);
        let subs: HashMap<Uuid, &Claimed> = done
            .iter()
            .map(|d| (d.claimed.subscription_id, &d.claimed))
            .collect();
        // Breakers: only subscriptions with a failure, or whose breaker is not
        // already closed and clean, need a write.
        let breaker_changes = |id: &Uuid, o: &[(bool, bool, DateTime<Utc>)]| {
            let s = &subs[id].subscription;
            o.iter().any(|(ok, _, _)| !ok)
                || s.circuit_state != BreakerState::Closed.as_str()
                || s.circuit_failures > 0
        };
        // Subscriptions whose breaker or failure streak this batch changes.
        let mut slow: Vec<Uuid> = plan
            .outcomes
            .iter()
            .filter(|(id, o)| {
                breaker_changes(id, o) || subs[*id].subscription.consecutive_failures > 0
            })
            .map(|(id, _)| *id)
            .collect();
        slow.sort_unstable();
        let mut tx = self.pool.begin().await?;
        deliveries::lock_subscriptions(&mut tx, &slow).await?;
        let applied: HashSet<Uuid> = deliveries::record(&mut tx, &plan.attempts)
            .await?
            .into_iter()
            .collect();
        let mut events = outcome_events(&done, &plan.attempts, &applied);
        deliveries::add_counters(&mut tx, &plan.counters).await?;
        let touch: Vec<Uuid> = plan
            .outcomes
            .iter()
            .filter(|(id, o)| breaker_changes(id, o))
            .map(|(id, _)| *id)
            .collect();
        if !touch.is_empty() {
            self.update_breakers(&mut tx, &touch, &plan.outcomes, &subs, &done, &mut events)
                .await?;
        }
        events.extend(apply_streaks(&mut tx, &plan.outcomes, &subs).await?);
        let staged = self.outbox.stage(&mut tx, &events).await?;
        tx.commit().await?;
        staged.publish();
        Ok(())
    }

    /// What a batch of finished attempts writes: each attempt's row (its
    /// delivery's new status and next retry), the subscriptions' counters,
    /// and per subscription its outcomes in finish order.
    fn plan(&self, done: &[&Done]) -> Plan {
        let mut attempts = Vec::with_capacity(done.len());
        let mut counters: HashMap<Uuid, CounterDelta> = HashMap::new();
        let mut outcomes: Outcomes = HashMap::new();
        for d in done {
            let c = &d.claimed;
            let r = d.result.as_ref().expect("filtered");
            let s = &c.subscription;
            let number = c.attempt_number + 1;
            let policy = RetryPolicy::new(
                s.retry_enabled,
                i64::from(s.max_retries),
                &s.retry_intervals,
            )
            .unwrap_or_else(|_| RetryPolicy {
                max_retries: self.default_max_retries,
                ..RetryPolicy::default()
            });
            let (status, next) = if r.success {
                (DeliveryStatus::Delivered, None)
            } else {
                let used = u32::try_from(number - c.attempt_base).unwrap_or(1).max(1);
                let j: f64 = rand::random_range(-1.0..=1.0);
                match policy.next_delay(used, r.retry_after, j) {
                    Some(delay) => (
                        DeliveryStatus::Retrying,
                        Some(d.finished_at + chrono::Duration::from_std(delay).unwrap_or_default()),
                    ),
                    None => (DeliveryStatus::Failed, None),
                }
            };
            attempts.push(Attempt {
                id: Uuid::now_v7(),
                delivery_id: c.id,
                attempt_number: number,
                status: Some(status),
                next_retry_at: next,
                request_url: s.url.chars().take(500).collect(),
                request_headers: r.request_headers.clone(),
                response_status: r.status.map(i32::from),
                response_headers: r.response_headers.clone(),
                response_body: r.response_body.clone(),
                response_time_ms: i32::try_from(r.latency.as_millis()).unwrap_or(i32::MAX),
                error_message: r.error.clone(),
                at: d.finished_at,
            });
            let k = counters.entry(s.id).or_insert_with(|| CounterDelta {
                subscription_id: s.id,
                sent: 0,
                delivered: 0,
                failed: 0,
                last_triggered_at: None,
                last_success_at: None,
                last_failure_at: None,
            });
            k.sent += 1;
            k.last_triggered_at = Some(d.finished_at);
            if r.success {
                k.delivered += 1;
                k.last_success_at = Some(d.finished_at);
            } else {
                k.last_failure_at = Some(d.finished_at);
            }
            if status == DeliveryStatus::Failed {
                k.failed += 1;
            }
            if d.unsent {
                continue;
            }
            outcomes.entry(s.id).or_default().push((
                r.success,
                status == DeliveryStatus::Failed,
                d.finished_at,
            ));
        }
        Plan {
            attempts,
            counters: counters.into_values().collect(),
            outcomes,
        }
    }

    /// Runs the outcomes of `touch`'s subscriptions through their breakers
    /// (locked), saves what changed, and adds `circuit.*` events.
    async fn update_breakers(
        &self,
        tx: &mut hub_storage::Tx<'_>,
        touch: &[Uuid],
        outcomes: &Outcomes,
        subs: &HashMap<Uuid, &Claimed>,
        done: &[&Done],
        events: &mut Vec<Envelope>,
    ) -> Result<(), StorageError> {
        let rows = deliveries::breakers_for_update(tx, touch).await?;
        let mut by_sub: HashMap<Uuid, BreakerRow> =
            rows.into_iter().map(|r| (r.subscription_id, r)).collect();
        let mut save = Vec::new();
        for id in touch {
            let row = by_sub.remove(id);
            let mut b = row.as_ref().map_or_else(Breaker::closed, |r| Breaker {
                state: BreakerState::parse(&r.state).unwrap_or(BreakerState::Closed),
                failure_count: u32::try_from(r.failure_count).unwrap_or(0),
                success_count: u32::try_from(r.success_count).unwrap_or(0),
                opened_at: r.opened_at,
            });
            let before = b.clone();
            let tenant = subs[id].tenant_id;
            for (ok, _, at) in &outcomes[id] {
                match b.record(*ok, *at, &self.breaker) {
                    Some(Transition::Opened) => {
                        self.open
                            .lock()
                            .expect("open set")
                            .insert(*id, Instant::now());
                        metrics::counter!("hub_webhook_breaker_transitions_total", "to" => "open")
                            .increment(1);
                        events.push(event(
                            "circuit.opened",
                            tenant,
                            serde_json::json!({"subscription_id": id, "failures": self.breaker.failure_threshold}),
                        ));
                    }
                    Some(Transition::Closed) => {
                        self.open.lock().expect("open set").remove(id);
                        metrics::counter!("hub_webhook_breaker_transitions_total", "to" => "closed").increment(1);
                        events.push(event(
                            "circuit.closed",
                            tenant,
                            serde_json::json!({"subscription_id": id}),
                        ));
                    }
                    _ => {}
                }
            }
            // A probe's outcome always clears the in-flight probe marker.
            let probe = done
                .iter()
                .any(|d| d.claimed.probe && d.claimed.subscription_id == *id);
            if b != before || row.is_none() || probe {
                save.push(BreakerRow {
                    subscription_id: *id,
                    state: b.state.as_str().to_owned(),
                    failure_count: i32::try_from(b.failure_count).unwrap_or(i32::MAX),
                    success_count: i32::try_from(b.success_count).unwrap_or(i32::MAX),
                    opened_at: b.opened_at,
                });
            }
        }
        deliveries::save_breakers(
            tx,
            &save,
            i32::try_from(self.breaker.failure_threshold).unwrap_or(5),
            i32::try_from(self.breaker.open_for.as_secs()).unwrap_or(60),
        )
        .await?;
        Ok(())
    }
}

/// Per subscription, in finish order: (success, final failure, when).
type Outcomes = HashMap<Uuid, Vec<(bool, bool, DateTime<Utc>)>>;

/// What [`Dispatcher::record`] writes for a batch (see `Dispatcher::plan`).
struct Plan {
    attempts: Vec<Attempt>,
    counters: Vec<CounterDelta>,
    outcomes: Outcomes,
}

/// `webhook.delivered` / `webhook.failed` for the attempts that were
/// applied (a delivery whose lease was lost is not).
fn outcome_events(done: &[&Done], attempts: &[Attempt], applied: &HashSet<Uuid>) -> Vec<Envelope> {
    let mut events = Vec::new();
    for (d, a) in done.iter().zip(attempts) {
        if !applied.contains(&a.delivery_id) {
            continue;
        }
        let c = &d.claimed;
        let r = d.result.as_ref().expect("filtered");
        let data = serde_json::json!({
            "subscription_id": c.subscription_id,
            "delivery_id": c.id,
            "event_id": c.event_id,
            "event_type": c.event_type,
            "attempt": a.attempt_number,
            "status": r.status,
            "latency_ms": a.response_time_ms,
            "error": r.error,
        });
        let outcome = match a.status {
            Some(DeliveryStatus::Delivered) => Some("webhook.delivered"),
            Some(DeliveryStatus::Failed) => Some("webhook.failed"),
            _ => None,
        };
        let label = a.status.map_or("", DeliveryStatus::as_str);
        metrics::counter!("hub_webhook_attempts_total", "outcome" => label).increment(1);
        if let Some(kind) = outcome {
            events.push(event(kind, c.tenant_id, data));
        }
    }
    events
}

/// Failed-delivery streaks: counts them, resets them on a success, and
/// disables a subscription after [`AUTO_DISABLE_AFTER`]; the events of the
/// subscriptions it disabled.
async fn apply_streaks(
    tx: &mut hub_storage::Tx<'_>,
    outcomes: &Outcomes,
    subs: &HashMap<Uuid, &Claimed>,
) -> Result<Vec<Envelope>, StorageError> {
    let streaks: Vec<Streak> = outcomes
        .iter()
        .filter_map(|(id, o)| {
            let last_ok = o.iter().rposition(|(ok, _, _)| *ok);
            let failed = o[last_ok.map_or(0, |i| i + 1)..]
                .iter()
                .filter(|(_, fin, _)| *fin)
                .count() as i32;
            let reset = last_ok.is_some();
            let known = subs[id].subscription.consecutive_failures;
            (failed > 0 || (reset && known > 0)).then_some(Streak {
                subscription_id: *id,
                reset,
                failed,
            })
        })
        .collect();
    let mut disabled = Vec::new();
    let reason = format!(
        "disabled after {AUTO_DISABLE_AFTER} consecutive failed deliveries; fix the receiver, then set is_enabled to true"
    );
    for (id, tenant) in deliveries::apply_streaks(
        tx,
        &streaks,
        i32::try_from(AUTO_DISABLE_AFTER).unwrap_or(10),
        &reason,
    )
    .await?
    {
        tracing::warn!(subscription_id = %id, "subscription disabled after repeated failed deliveries");
        disabled.push(event(
            "webhook.subscription.disabled",
            tenant,
            serde_json::json!({"subscription_id": id, "status": SubscriptionStatus::Failed, "reason": reason}),
        ));
    }
    Ok(disabled)
}

fn event(kind: &str, tenant: Uuid, data: serde_json::Value) -> Envelope {
    Envelope::new(
        crate::NAME,
        EventType::parse(kind).expect("static event type"),
        Some(TenantId(tenant)),
        data,
    )
}

/// Background upkeep: folds counter deltas every second, prunes old
/// deliveries and `Idempotency-Key`s past their 24 hours (at start and
/// every minute), and refreshes the backlog and breaker gauges.
pub async fn upkeep(
    pool: PgPool,
    retention_days: u32,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        n += 1;
        if let Err(e) = hub_storage::subscriptions::fold_counters(&pool, 10_000).await {
            tracing::warn!(error = %e, "folding subscription counters failed");
        }
        if n.is_multiple_of(5) {
            if let Ok((due, age)) = deliveries::backlog(&pool).await {
                metrics::gauge!("hub_webhook_due_backlog").set(due as f64);
                metrics::gauge!("hub_webhook_oldest_due_seconds").set(age);
            }
            if let Ok(states) = deliveries::breaker_states(&pool).await {
                for state in [
                    BreakerState::Closed,
                    BreakerState::Open,
                    BreakerState::HalfOpen,
                ] {
                    let s = state.as_str();
                    let v = states.iter().find(|(k, _)| k == s).map_or(0, |(_, v)| *v);
                    metrics::gauge!("hub_webhook_breakers", "state" => s).set(v as f64);
                }
            }
        }
        if n == 1 || n.is_multiple_of(60) {
            // At start, then every minute, in batches that keep each delete
            // short.
            let go_on = || !shutdown.is_cancelled();
            if let Err(e) = deliveries::prune(&pool, retention_days, 5_000, go_on).await {
                tracing::warn!(error = %e, "pruning deliveries failed");
            }
            if let Err(e) = hub_storage::idempotency::prune(&pool, 5_000, go_on).await {
                tracing::warn!(error = %e, "pruning idempotency keys failed");
            }
        }
    }
}
