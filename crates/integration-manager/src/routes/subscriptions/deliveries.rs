//! An outbound subscription's deliveries: their history, replays, and the
//! test send.

use super::body::{
    AttemptBody, DeliveryBody, DeliveryFilter, DeliveryTestResult, ReplayInput, ReplayResult,
};
use super::{OutboundWebhooks, find, find_for_update};
use crate::routes::list::{ListParams, Paging, one_of};
use crate::routes::{begin, commit};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use hub_connectors::webhook::{
    AttemptResult, Outbound, SealedSubscription, custom_headers, open_subscription, render_body,
};
use hub_domain::{Envelope, EventType, FieldError};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, Problem};
use hub_platform::server::Context;
use hub_storage::deliveries::{self, Attempt, NewDelivery, ReplaySelection};
use hub_storage::subscriptions::Subscription;
use serde_json::json;
use uuid::Uuid;

/// The subscription's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), DeliveryFilter, ListParams),
    responses((status = 200, description = "`{data: [Delivery], next_cursor}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryFilter>,
    page: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    find(&ctx, &t, *id).await?;
    let paging = Paging::parse(&page)?;
    let statuses = ["PENDING", "RETRYING", "DELIVERED", "FAILED"];
    let filter = deliveries::DeliveryFilter {
        status: one_of("status", &q.status, &statuses)?,
        event_type: q.event_type.clone(),
        since: q.since,
        until: q.until,
        before: paging.cursor,
    };
    let rows = deliveries::list(&ctx.pool, t.id, *id, &filter, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, DeliveryBody>(&rows)))
}

/// One delivery with its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/subscriptions/{id}/deliveries/{delivery_id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 200, body = DeliveryBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delivery(
    t: Tenant,
    ctx: web::Data<Context>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (sub, id) = *path;
    let d = deliveries::get(&ctx.pool, t.id, sub, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = deliveries::attempts(&ctx.pool, d.id).await?;
    let mut body = DeliveryBody::from(&d);
    body.attempts = Some(attempts.iter().map(AttemptBody::from).collect());
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
    let status = input
        .status
        .map_or_else(|| "FAILED".to_owned(), |s| s.to_ascii_uppercase());
    if !matches!(status.as_str(), "FAILED" | "DELIVERED") {
        return Err(FieldError::new("status", "must be FAILED or DELIVERED"));
    }
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
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    input: web::Json<ReplayInput>,
) -> Result<HttpResponse, ApiError> {
    let sel = selection(input.into_inner())?;
    let mut tx = begin(&ctx).await?;
    find_for_update(&mut tx, &t, *id).await?;
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
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<OutboundWebhooks>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let s = find(&ctx, &t, *id).await?;
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
        status: if r.success { "DELIVERED" } else { "FAILED" },
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
        attempt: AttemptBody::from(&attempt),
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
    let (auth, secrets) = open_subscription(
        &st.keyring,
        SealedSubscription {
            id: &sid,
            auth_type: &s.auth_type,
            auth_config: s.auth_config.as_ref(),
            secret_key: s.secret_key.as_deref(),
            previous_secret_key: s.previous_secret_key.as_deref(),
            previous_secret_expires_at: s.previous_secret_expires_at,
            auth_secret: s.auth_secret_encrypted.as_deref(),
        },
        now,
    )
    .map_err(ApiError::internal)?;
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
