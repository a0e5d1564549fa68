//! OUTBOUND webhooks: the subscriptions the webhook-dispatcher delivers the
//! hub's events to, with their signing secrets, delivery history, replays
//! and test sends. Deliveries themselves are made by the dispatcher; a test
//! send is made here, once, with the same sender.

pub mod body;
pub mod input;

use super::list::{ListParams, ListQuery, Paging, status_filter, status_of};
use super::{Call, begin, commit, emit, find, find_for_update, optional_json, strip_field};
use actix_web::{HttpResponse, web};
use body::{
    CreatedSubscription, DeliveryBody, DeliveryFilter, DeliveryTestResult, ReplayInput,
    ReplayResult, RotateInput, SecretBody, SubscriptionBody, SubscriptionFilter, SubscriptionInput,
};
use chrono::Utc;
use hub_connectors::webhook::{
    AttemptResult, Outbound, Sender, custom_headers, open_subscription, render_body, secret_context,
};
use hub_domain::secret::Keyring;
use hub_domain::status::{DeliveryStatus, SubscriptionStatus};
use hub_domain::webhook::{BreakerState, RetryPolicy, WebhookSecret};
use hub_domain::{Envelope, EventType, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, Problem};
use hub_platform::server::Context;
use hub_platform::transforms::Templates;
use hub_storage::deliveries::{self, Attempt, NewDelivery, ReplaySelection};
use hub_storage::subscriptions::{self as store, Subscription};
use input::{Mode, ValidSubscriptionPatch};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a rotated-out signing secret keeps signing.
const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Shared state of the outbound subscription routes.
#[derive(Clone)]
pub struct OutboundWebhooks {
    keyring: Arc<Keyring>,
    sender: Arc<Sender>,
    allow_insecure: bool,
    allow_private: bool,
    templates: Arc<Templates>,
}

impl OutboundWebhooks {
    /// State for a service's configuration, sealing with `keyring`.
    pub fn new(
        config: &hub_platform::Config,
        keyring: Arc<Keyring>,
        templates: Arc<Templates>,
    ) -> Self {
        Self {
            keyring,
            sender: Arc::new(Sender::new(
                crate::state::target_policy(config),
                Duration::from_secs(u64::from(config.webhook_timeout_seconds)),
                8,
            )),
            allow_insecure: config.hub_allow_insecure_urls,
            allow_private: config.hub_allow_private_targets,
            templates,
        }
    }
}

/// Seals a secret of subscription `id` (`what`: `secret`, `previous`, `auth`).
fn seal(keyring: &Keyring, id: Uuid, what: &str, plain: &str) -> String {
    keyring.seal(&secret_context(&id.to_string(), what), plain.as_bytes())
}

/// The signing secret sent as `field`, or a new one.
fn secret_or_new(field: &str, sent: Option<String>) -> Result<WebhookSecret, ApiError> {
    match sent {
        Some(s) => WebhookSecret::parse(&s)
            .map_err(|e| FieldError::new(field, strip_field(&e.to_string())).into()),
        None => Ok(WebhookSecret::generate()),
    }
}

fn open_secret(st: &OutboundWebhooks, s: &Subscription) -> Result<String, ApiError> {
    let sealed = s
        .secret_key
        .as_deref()
        .ok_or_else(|| ApiError::internal("subscription has no signing secret"))?;
    let plain = st
        .keyring
        .open(&secret_context(&s.id.to_string(), "secret"), sealed)
        .map_err(ApiError::internal)?;
    String::from_utf8(plain).map_err(ApiError::internal)
}

/// A new subscription of `t` with the defaults, before its body is applied.
fn new_subscription(t: &Tenant, ctx: &Context) -> Subscription {
    let now = Utc::now();
    Subscription {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        name: String::new(),
        description: None,
        url: String::new(),
        event_types: json!([]),
        auth_type: "HMAC".into(),
        auth_config: None,
        secret_key: None,
        previous_secret_key: None,
        previous_secret_expires_at: None,
        secret_hint: None,
        auth_secret_encrypted: None,
        auth_secret_hint: None,
        content_type: "application/json".into(),
        headers: json!({}),
        transform_template: None,
        retry_enabled: true,
        max_retries: i32::try_from(ctx.config.webhook_max_retries).unwrap_or(5),
        retry_intervals: json!(RetryPolicy::DEFAULT_INTERVALS),
        status: SubscriptionStatus::Active,
        is_enabled: true,
        disabled_reason: None,
        total_sent: 0,
        total_delivered: 0,
        total_failed: 0,
        last_triggered_at: None,
        last_success_at: None,
        last_failure_at: None,
        consecutive_failures: 0,
        circuit_state: BreakerState::Closed.as_str().to_owned(),
        circuit_opened_at: None,
        circuit_failures: 0,
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    }
}

/// Creates a subscription; its signing secret is generated unless given.
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    request_body = SubscriptionInput,
    responses((status = 201, body = CreatedSubscription), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    Call { t, ctx }: Call,
    st: web::Data<OutboundWebhooks>,
    input: web::Json<SubscriptionInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = input.into_inner();
    let mut row = new_subscription(&t, &ctx);
    let secret = secret_or_new("secret_key", std::mem::take(&mut input.secret_key).value())?;
    ValidSubscriptionPatch::parse(input, &row, &st, Mode::Create)
        .await?
        .apply(&mut row, &st.keyring);
    row.secret_hint = Some(secret.last4());
    row.secret_key = Some(seal(&st.keyring, row.id, "secret", secret.expose()));
    let mut tx = begin(&ctx).await?;
    store::insert(&mut tx, &row).await?;
    let data = json!({"id": row.id, "name": row.name, "url": row.url, "event_types": row.event_types, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.subscription.created", t.id, data).await?;
    commit(tx).await?;
    route_to_dispatcher(&ctx, &row.event_types).await;
    let stored = find::<Subscription>(&ctx, &t, row.id).await?;
    Ok(HttpResponse::Created().json(CreatedSubscription {
        subscription: SubscriptionBody::from(stored),
        secret: secret.expose().to_owned(),
    }))
}

/// Binds the dispatcher's queue to the event types of `event_types` that
/// its standing bindings do not cover, before the caller answers: an event
/// published right after the answer reaches the dispatcher. If the broker
/// cannot be reached the dispatcher binds them itself within seconds.
async fn route_to_dispatcher(ctx: &Context, event_types: &Value) {
    let entries = event_types.as_array().into_iter().flatten();
    let keys: Vec<String> =
        hub_domain::webhook::extra_binding_keys(entries.filter_map(Value::as_str))
            .into_iter()
            .collect();
    if keys.is_empty() {
        return;
    }
    let bound = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        ctx.bus.bind(hub_domain::webhook::DISPATCHER, &keys),
    )
    .await;
    if !matches!(bound, Ok(Ok(()))) {
        tracing::warn!(
            ?keys,
            "could not bind the dispatcher's queue to these event types now; it will bind them itself"
        );
    }
}
/// The tenant's subscriptions.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(SubscriptionFilter, ListParams), responses((status = 200, description = "`{data: [Subscription], next_cursor}`")))]
pub async fn list(
    Call { t, ctx }: Call,
    ListQuery { filter: q, paging }: ListQuery<SubscriptionFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = store::Filter {
        status: status_filter("status", &q.status)?,
        is_enabled: q.is_enabled,
        after: paging.cursor,
    };
    let rows = store::list(&ctx.pool, t.id, &filter, paging.limit).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let backlogs: std::collections::HashMap<Uuid, i64> =
        deliveries::backlog_of(&ctx.pool, t.id, &ids)
            .await?
            .into_iter()
            .collect();
    let mut page = paging.page::<_, SubscriptionBody>(rows);
    for b in &mut page.data {
        b.backlog = Some(backlogs.get(&b.subscription.id).copied().unwrap_or(0));
    }
    Ok(HttpResponse::Ok().json(page))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SubscriptionBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let mut body = SubscriptionBody::from(find::<Subscription>(&ctx, &t, *id).await?);
    let backlog = deliveries::backlog_of(&ctx.pool, t.id, &[*id]).await?;
    body.backlog = Some(backlog.first().map_or(0, |(_, n)| *n));
    Ok(HttpResponse::Ok().json(body))
}

/// Changes a subscription (absent fields are kept).
#[utoipa::path(put, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = SubscriptionInput,
    responses((status = 200, body = SubscriptionBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    Call { t, ctx }: Call,
    st: web::Data<OutboundWebhooks>,
    id: web::Path<Uuid>,
    input: web::Json<SubscriptionInput>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    let mut row = find_for_update(&mut tx, &t, *id).await?;
    let changed = ValidSubscriptionPatch::parse(input.into_inner(), &row, &st, Mode::Update)
        .await?
        .apply(&mut row, &st.keyring);
    if !changed.is_empty() {
        row.updated_by_key = Some(t.api_key_id.0);
        store::update(&mut tx, &row).await?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        emit(&mut tx, "webhook.subscription.updated", t.id, data).await?;
    }
    commit(tx).await?;
    if changed.contains("event_types") || changed.contains("is_enabled") {
        route_to_dispatcher(&ctx, &row.event_types).await;
    }
    Ok(HttpResponse::Ok().json(SubscriptionBody::from(
        find::<Subscription>(&ctx, &t, *id).await?,
    )))
}

/// Deletes a subscription with its delivery history.
#[utoipa::path(delete, path = "/api/v1/webhooks/subscriptions/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let mut tx = begin(&ctx).await?;
    if !store::delete(&mut tx, t.id, *id).await? {
        return Err(ApiError::not_found("subscription"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.subscription.deleted", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The subscription's signing secret, to verify deliveries with.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = SecretBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn secret(
    Call { t, ctx }: Call,
    st: web::Data<OutboundWebhooks>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let s = find(&ctx, &t, *id).await?;
    Ok(HttpResponse::Ok().json(SecretBody {
        secret: open_secret(&st, &s)?,
        previous_secret_expires_at: s.previous_secret_expires_at.filter(|t| *t > Utc::now()),
    }))
}

/// Rotates the signing secret: deliveries carry signatures by the new and
/// the old secret for 24 hours, then by the new one only.
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<RotateInput>),
    responses((status = 200, body = SecretBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    Call { t, ctx }: Call,
    st: web::Data<OutboundWebhooks>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: RotateInput = optional_json(&body)?;
    let new = secret_or_new("secret", input.secret)?;
    let mut tx = begin(&ctx).await?;
    let mut row = find_for_update(&mut tx, &t, *id).await?;
    let old = open_secret(&st, &row)?;
    let until = Utc::now() + ROTATION_GRACE;
    row.previous_secret_key = Some(seal(&st.keyring, row.id, "previous", &old));
    row.previous_secret_expires_at = Some(until);
    row.secret_key = Some(seal(&st.keyring, row.id, "secret", new.expose()));
    row.secret_hint = Some(new.last4());
    row.updated_by_key = Some(t.api_key_id.0);
    store::update(&mut tx, &row).await?;
    let data = json!({"id": row.id, "changed": ["secret_key"], "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "webhook.subscription.updated", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(SecretBody {
        secret: new.expose().to_owned(),
        previous_secret_expires_at: Some(until),
    }))
}

/// The subscription's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), DeliveryFilter, ListParams),
    responses((status = 200, description = "`{data: [Delivery], next_cursor}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryFilter>,
    page: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    find::<Subscription>(&ctx, &t, *id).await?;
    let paging = Paging::parse(&page)?;
    let filter = deliveries::DeliveryFilter {
        status: status_filter("status", &q.status)?,
        event_type: q.event_type.clone(),
        since: q.since,
        until: q.until,
        before: paging.cursor,
    };
    let rows = deliveries::list(&ctx.pool, t.id, *id, &filter, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, DeliveryBody>(rows)))
}

/// One delivery with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries/{delivery_id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 200, body = DeliveryBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delivery(
    Call { t, ctx }: Call,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (sub, id) = *path;
    let d = deliveries::get(&ctx.pool, t.id, sub, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = deliveries::attempts(&ctx.pool, d.id).await?;
    let mut body = DeliveryBody::from(d);
    body.attempts = Some(attempts);
    Ok(HttpResponse::Ok().json(body))
}

/// What a replay body selects: delivery ids, or a status and time window.
fn selection(input: ReplayInput) -> Result<ReplaySelection, FieldError> {
    if let Some(ids) = input.delivery_ids {
        if input.status.is_some() || input.since.is_some() || input.until.is_some() {
            return Err(FieldError::new(
                "delivery_ids",
                "give either delivery_ids or a status/since/until filter, not both",
            ));
        }
        if ids.is_empty() || ids.len() > 1000 {
            return Err(FieldError::new("delivery_ids", "must hold 1 to 1000 ids"));
        }
        return Ok(ReplaySelection::Ids(ids));
    }
    let status = match input.status.as_deref().map(status_of) {
        None => DeliveryStatus::Failed,
        Some(Ok(s @ (DeliveryStatus::Failed | DeliveryStatus::Delivered))) => s,
        Some(_) => return Err(FieldError::new("status", "must be FAILED or DELIVERED")),
    };
    if let (Some(a), Some(b)) = (input.since, input.until)
        && a >= b
    {
        return Err(FieldError::new("until", "must be after since"));
    }
    Ok(ReplaySelection::Filter {
        status,
        since: input.since,
        until: input.until,
    })
}

/// Re-queues finished deliveries as new attempts (retry budget restarts).
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/replay", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = ReplayInput,
    responses((status = 202, body = ReplayResult), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    input: web::Json<ReplayInput>,
) -> Result<HttpResponse, ApiError> {
    let sel = selection(input.into_inner())?;
    let mut tx = begin(&ctx).await?;
    find_for_update::<Subscription>(&mut tx, &t, *id).await?;
    let ids = deliveries::replay(&mut tx, t.id, *id, &sel, 10_000).await?;
    commit(tx).await?;
    Ok(HttpResponse::Accepted().json(ReplayResult {
        replayed: ids.len(),
        delivery_ids: ids,
    }))
}

/// Sends a `webhook.test` event to the subscription now, once, signed like
/// any delivery, and returns the attempt (also kept in the history).
#[utoipa::path(post, path = "/api/v1/webhooks/subscriptions/{id}/test", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeliveryTestResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn test(
    Call { t, ctx }: Call,
    st: web::Data<OutboundWebhooks>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let s: Subscription = find(&ctx, &t, *id).await?;
    let ev = Envelope::new(
        crate::NAME,
        EventType::parse("webhook.test").expect("static event type"),
        Some(t.id),
        json!({"subscription_id": s.id, "message": "This is a test delivery from Integration Hub."}),
    );
    let payload = serde_json::to_value(&ev).map_err(ApiError::internal)?;
    let r = send(&st, &s, &ev, &payload).await?;
    let delivery_id = Uuid::now_v7();
    let attempt = Attempt {
        id: Uuid::now_v7(),
        delivery_id,
        attempt_number: 1,
        status: Some(if r.success {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Failed
        }),
        next_retry_at: None,
        request_url: s.url.chars().take(500).collect(),
        request_headers: r.request_headers.clone(),
        response_status: r.status.map(i32::from),
        response_headers: r.response_headers.clone(),
        response_body: r.response_body.clone(),
        response_time_ms: i32::try_from(r.latency.as_millis()).unwrap_or(i32::MAX),
        error_message: r.error.clone(),
        at: Utc::now(),
    };
    let mut tx = begin(&ctx).await?;
    deliveries::insert_events(&mut tx, std::slice::from_ref(&ev)).await?;
    let delivery = NewDelivery {
        id: delivery_id,
        subscription_id: s.id,
        tenant_id: t.id.0,
        event_type: "webhook.test".into(),
        event_id: ev.id.0,
        payload,
        request_url: s.url.chars().take(500).collect(),
    };
    // Leased at once so no dispatcher picks the test delivery up.
    deliveries::insert(&mut tx, &[delivery], Some(600)).await?;
    deliveries::record(&mut tx, std::slice::from_ref(&attempt)).await?;
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(DeliveryTestResult {
        ok: r.success,
        status: r.status,
        latency_ms: r.latency.as_millis() as u64,
        error: r.error,
        delivery_id,
        attempt,
    }))
}

/// Sends `ev` to `s` as a delivery would (signed, with its auth, headers and
/// transform).
async fn send(
    st: &OutboundWebhooks,
    s: &Subscription,
    ev: &Envelope,
    payload: &serde_json::Value,
) -> Result<AttemptResult, ApiError> {
    let now = Utc::now();
    let sid = s.id.to_string();
    let (auth, secrets) =
        open_subscription(&st.keyring, s.sealed(&sid), now).map_err(ApiError::internal)?;
    let body = render_body(payload, s.transform_template.as_ref());
    Ok(st
        .sender
        .send(&Outbound {
            url: s.url.clone(),
            content_type: s.content_type.clone(),
            headers: custom_headers(&s.headers),
            auth,
            secrets,
            msg_id: ev.id.to_string(),
            timestamp: now.timestamp(),
            body: serde_json::to_vec(&body).map_err(ApiError::internal)?,
            token_key: sid,
        })
        .await)
}
