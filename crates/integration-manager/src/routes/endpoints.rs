//! Inbound webhook endpoints of a tenant: CRUD, secret rotation, received
//! events and their replay. Providers call the endpoints at
//! `POST /webhooks/{tenant}/{path}` (see [`super::receive`]).

use super::event;
use crate::inbound::{Inbound, secrets};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hub_domain::FieldError;
use hub_domain::inbound::ip::Cidrs;
use hub_domain::inbound::{
    Encoding, EndpointPath, HandlerType, Scheme, check_filter_entry, transform,
};
use hub_domain::secret::last_four;
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode};
use hub_platform::http::{ListParams, Page};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::inbound_events::EventRow;
use hub_storage::webhook_endpoints::{self as store, Endpoint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

type Problem = hub_platform::error::Problem;

/// Default grace period of the previous secret after a rotation.
pub const DEFAULT_GRACE_SECONDS: i64 = 24 * 3600;
/// Longest grace period.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// An inbound webhook endpoint. The secret appears only in the answers of
/// create and rotate-secret.
#[derive(Serialize, ToSchema)]
pub struct EndpointBody {
    /// Id.
    pub id: Uuid,
    /// The integration it belongs to.
    pub integration_id: Option<Uuid>,
    /// `{path}` of the public URL.
    pub endpoint_path: String,
    /// The path providers call: `/webhooks/{tenant id}/{endpoint_path}` (the tenant's slug works too).
    pub url_path: String,
    /// The signing secret, only right after create or rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// `{"set": true, "last4": "…"}`.
    #[schema(value_type = Object)]
    pub secret: Value,
    /// Until when the previous secret is still accepted (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Provider event types handled (`invoice.*`, `*`, exact names); empty = all.
    pub event_types: Vec<String>,
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM`.
    pub handler_type: String,
    /// Field mapping applied before routing.
    #[schema(value_type = Object)]
    pub transform_template: Option<Value>,
    /// Where processed events are meant to go.
    pub target_service: Option<String>,
    /// Allowed source networks (CIDRs); null = anyone.
    pub ip_whitelist: Option<Vec<String>>,
    /// Header holding the signature.
    pub signature_header: String,
    /// The verification scheme.
    pub signature_algorithm: String,
    /// Generic schemes: `hex` or `base64`.
    pub signature_encoding: String,
    /// Generic schemes: prefix before the signature.
    pub signature_prefix: Option<String>,
    /// Timestamped schemes: tolerance in seconds.
    pub timestamp_tolerance_seconds: i32,
    /// `ACTIVE`, `PAUSED`, `DISABLED`.
    pub status: String,
    /// Whether it accepts requests.
    pub is_enabled: bool,
    /// Events received (repeats of an event are not counted).
    pub total_received: i64,
    /// Events processed (or filtered out by `event_types`).
    pub total_processed: i64,
    /// Events failed for good.
    pub total_failed: i64,
    /// Last event received.
    pub last_received_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// API key that created it.
    pub created_by: Option<Uuid>,
    /// API key that last changed it.
    pub updated_by: Option<Uuid>,
}

impl From<&Endpoint> for EndpointBody {
    fn from(e: &Endpoint) -> Self {
        let v = crate::inbound::verifier_of(e);
        Self {
            id: e.id,
            integration_id: e.integration_id,
            endpoint_path: e.endpoint_path.clone(),
            url_path: format!("/webhooks/{}/{}", e.tenant_id, e.endpoint_path),
            secret_key: None,
            secret: json!({"set": true, "last4": e.secret_hint}),
            previous_secret_expires_at: e
                .secret_previous_expires_at
                .filter(|_| e.secret_previous.is_some()),
            event_types: strings(&e.event_types),
            handler_type: e.handler_type.clone(),
            transform_template: e.transform_template.clone(),
            target_service: e.target_service.clone(),
            ip_whitelist: e.ip_whitelist.as_ref().map(strings),
            signature_header: v.header,
            signature_algorithm: v.scheme.as_str().to_owned(),
            signature_encoding: v.encoding.as_str().to_owned(),
            signature_prefix: e.signature_prefix.clone(),
            timestamp_tolerance_seconds: e.timestamp_tolerance_seconds,
            status: e.status.clone(),
            is_enabled: e.is_enabled,
            total_received: e.total_received,
            total_processed: e.total_processed,
            total_failed: e.total_failed,
            last_received_at: e.last_received_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            created_by: e.created_by_key,
            updated_by: e.updated_by_key,
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Body of create (`endpoint_path` required) and update (any subset).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// The tenant's integration it belongs to.
    pub integration_id: Option<Uuid>,
    /// Slug, unique per tenant: 1–100 of a-z, 0-9, `-`, `_`.
    pub endpoint_path: Option<String>,
    /// The provider's signing secret (8–512 characters); generated when omitted at create.
    pub secret_key: Option<String>,
    /// Provider event types to handle; `order.*` and `*` allowed; empty = all.
    pub event_types: Option<Vec<String>>,
    /// `LOAD_STATUS`, `TRACKING`, `INVOICE`, `CUSTOM` (default).
    pub handler_type: Option<String>,
    /// Field mapping (`{"load_id": "$.data.id"}`); `{}` removes it.
    #[schema(value_type = Object)]
    pub transform_template: Option<Value>,
    /// Internal service processed events are meant for.
    pub target_service: Option<String>,
    /// Allowed source networks (CIDRs, IPv4 and IPv6); `[]` = anyone.
    pub ip_whitelist: Option<Vec<String>>,
    /// Header holding the signature (the scheme's preset when omitted).
    pub signature_header: Option<String>,
    /// `standard-webhooks` (default), `github`, `stripe`, `shopify`, `slack`,
    /// `hubspot-v3`, `twilio`, `quickbooks`, `xero`, `samsara`,
    /// `hmac-sha256`, `hmac-sha1`, or `none` (no verification).
    pub signature_algorithm: Option<String>,
    /// Generic schemes: `hex` (default) or `base64`.
    pub signature_encoding: Option<String>,
    /// Generic schemes: prefix before the signature (`sha256=`); `""` removes it.
    pub signature_prefix: Option<String>,
    /// Timestamped schemes: 1–3600 s (default 300).
    pub timestamp_tolerance_seconds: Option<i32>,
    /// `ACTIVE` (default), `PAUSED`, `DISABLED`.
    pub status: Option<String>,
    /// Accept requests (default true).
    pub is_enabled: Option<bool>,
}

impl std::fmt::Debug for EndpointInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointInput([secret redacted])")
    }
}

fn scheme_of(row: &Endpoint) -> Scheme {
    crate::inbound::verifier_of(row).scheme
}

/// Applies `input` to `row`; returns the changed field names and a new plain
/// secret when one was set.
async fn apply(
    ctx: &Context,
    t: &Tenant,
    row: &mut Endpoint,
    input: &EndpointInput,
    st: &Inbound,
    creating: bool,
    errors: &mut Vec<FieldError>,
) -> Result<(Vec<&'static str>, Option<String>), ApiError> {
    let mut changed = Vec::new();
    if let Some(p) = &input.endpoint_path {
        match EndpointPath::parse(p) {
            Ok(p) if p.as_str() != row.endpoint_path => {
                row.endpoint_path = p.as_str().to_owned();
                changed.push("endpoint_path");
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if let Some(id) = input.integration_id
        && Some(id) != row.integration_id
    {
        if store::integration_exists(&ctx.pool, t.id, id).await? {
            row.integration_id = Some(id);
            changed.push("integration_id");
        } else {
            errors.push(FieldError::new("integration_id", "no such integration"));
        }
    }
    let old_scheme = scheme_of(row);
    if let Some(a) = &input.signature_algorithm {
        match Scheme::parse(a) {
            Some(s) => {
                if creating || s != old_scheme {
                    row.signature_algorithm = Some(s.as_str().to_owned());
                    if input.signature_header.is_none() {
                        row.signature_header = Some(s.default_header().to_owned());
                    }
                    changed.push("signature_algorithm");
                }
            }
            None => errors.push(FieldError::new(
                "signature_algorithm",
                format!(
                    "must be one of {}",
                    Scheme::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    let scheme = scheme_of(row);
    if let Some(h) = &input.signature_header {
        let ok = !h.is_empty()
            && h.len() <= 100
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            errors.push(FieldError::new(
                "signature_header",
                "must be a header name of 1 to 100 characters",
            ));
        } else if Some(h) != row.signature_header.as_ref() {
            row.signature_header = Some(h.clone());
            changed.push("signature_header");
        }
    }
    if let Some(enc) = &input.signature_encoding {
        match Encoding::parse(enc) {
            Some(e) if e.as_str() != row.signature_encoding => {
                row.signature_encoding = e.as_str().to_owned();
                changed.push("signature_encoding");
            }
            Some(_) => {}
            None => errors.push(FieldError::new(
                "signature_encoding",
                "must be hex or base64",
            )),
        }
    }
    if let Some(p) = &input.signature_prefix {
        if p.len() > 50 {
            errors.push(FieldError::new(
                "signature_prefix",
                "must be at most 50 characters",
            ));
        } else {
            let v = (!p.is_empty()).then(|| p.clone());
            if v != row.signature_prefix {
                row.signature_prefix = v;
                changed.push("signature_prefix");
            }
        }
    }
    if (input.signature_encoding.is_some()
        || input
            .signature_prefix
            .as_deref()
            .is_some_and(|p| !p.is_empty()))
        && !scheme.generic()
    {
        errors.push(FieldError::new(
            "signature_encoding",
            "signature_encoding and signature_prefix apply only to hmac-sha256 and hmac-sha1",
        ));
    }
    if let Some(v) = input.timestamp_tolerance_seconds {
        if !(1..=3600).contains(&v) {
            errors.push(FieldError::new(
                "timestamp_tolerance_seconds",
                "must be between 1 and 3600",
            ));
        } else if v != row.timestamp_tolerance_seconds {
            row.timestamp_tolerance_seconds = v;
            changed.push("timestamp_tolerance_seconds");
        }
    }
    let mut plain = None;
    match &input.secret_key {
        Some(s) => match scheme.check_secret(s) {
            Ok(()) => plain = Some(s.clone()),
            Err(e) => errors.push(FieldError::new("secret_key", e)),
        },
        None if creating => plain = Some(scheme.generate_secret()),
        None if scheme != old_scheme => {
            // The stored secret must still key the new scheme.
            let current = secrets::open_current(row, &st.keyring).map_err(ApiError::internal)?;
            if let Err(e) = scheme.check_secret(&current) {
                errors.push(FieldError::new(
                    "secret_key",
                    format!(
                        "the current secret does not fit {scheme} ({e}); send a new secret_key too"
                    ),
                ));
            }
        }
        None => {}
    }
    if let Some(s) = &plain {
        row.secret_sealed = secrets::seal_current(row.id, s, &st.keyring);
        row.secret_hint = last_four(s);
        if !creating {
            changed.push("secret_key");
        }
    }
    if let Some(types) = &input.event_types {
        if types.len() > 100 {
            errors.push(FieldError::new("event_types", "at most 100 entries"));
        }
        for t in types {
            if let Err(e) = check_filter_entry(t) {
                errors.push(FieldError::new("event_types", e));
            }
        }
        let v = json!(types);
        if v != row.event_types {
            row.event_types = v;
            changed.push("event_types");
        }
    }
    if let Some(h) = &input.handler_type {
        match HandlerType::parse(h) {
            Some(h) if h.as_str() != row.handler_type => {
                row.handler_type = h.as_str().to_owned();
                changed.push("handler_type");
            }
            Some(_) => {}
            None => errors.push(FieldError::new(
                "handler_type",
                "must be LOAD_STATUS, TRACKING, INVOICE or CUSTOM",
            )),
        }
    }
    if let Some(tpl) = &input.transform_template {
        let v = match tpl {
            Value::Object(m) if m.is_empty() => None,
            other => Some(other.clone()),
        };
        if let Some(t) = &v
            && let Err(e) = transform::validate(t)
        {
            errors.push(FieldError::new("transform_template", e));
        } else if v != row.transform_template {
            row.transform_template = v;
            changed.push("transform_template");
        }
    }
    if let Some(s) = &input.target_service {
        let ok = s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            errors.push(FieldError::new(
                "target_service",
                "at most 50 characters of a-z, 0-9, '-', '_', '.'",
            ));
        } else {
            let v = (!s.is_empty()).then(|| s.clone());
            if v != row.target_service {
                row.target_service = v;
                changed.push("target_service");
            }
        }
    }
    if let Some(list) = &input.ip_whitelist {
        match Cidrs::parse(list) {
            Ok(c) if list.len() <= 100 => {
                let v = (!c.is_empty()).then(|| json!(c.to_strings()));
                if v != row.ip_whitelist {
                    row.ip_whitelist = v;
                    changed.push("ip_whitelist");
                }
            }
            Ok(_) => errors.push(FieldError::new("ip_whitelist", "at most 100 entries")),
            Err(e) => errors.push(FieldError::new("ip_whitelist", e)),
        }
    }
    if let Some(s) = &input.status {
        let s = s.to_ascii_uppercase();
        if !["ACTIVE", "PAUSED", "DISABLED"].contains(&s.as_str()) {
            errors.push(FieldError::new(
                "status",
                "must be ACTIVE, PAUSED or DISABLED",
            ));
        } else if s != row.status {
            row.status = s;
            changed.push("status");
        }
    }
    if let Some(v) = input.is_enabled
        && v != row.is_enabled
    {
        row.is_enabled = v;
        changed.push("is_enabled");
    }
    Ok((changed, plain))
}

fn conflict(e: StorageError) -> ApiError {
    match e {
        StorageError::Conflict { .. } => ApiError::new(
            ErrorCode::Conflict,
            "endpoint_path: this tenant already has an endpoint with this path",
        ),
        other => other.into(),
    }
}

/// Creates an endpoint. The answer holds the secret; it is never shown again.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    request_body = EndpointInput,
    responses((status = 201, body = EndpointBody),
        (status = 409, description = "The tenant already has an endpoint with this path", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one error each", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Inbound>,
    body: web::Json<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = body.into_inner();
    let mut errors = Vec::new();
    if input.endpoint_path.is_none() {
        errors.push(FieldError::new("endpoint_path", "is required"));
    }
    if input.signature_algorithm.is_none() {
        input.signature_algorithm = Some(Scheme::StandardWebhooks.as_str().to_owned());
    }
    let now = Utc::now();
    let mut row = Endpoint {
        id: Uuid::now_v7(),
        tenant_id: t.id.0,
        integration_id: None,
        endpoint_path: String::new(),
        secret_sealed: String::new(),
        secret_hint: String::new(),
        secret_previous: None,
        secret_previous_expires_at: None,
        event_types: json!([]),
        handler_type: HandlerType::Custom.as_str().to_owned(),
        transform_template: None,
        target_service: None,
        ip_whitelist: None,
        signature_header: None,
        signature_algorithm: None,
        signature_encoding: "hex".into(),
        signature_prefix: None,
        timestamp_tolerance_seconds: 300,
        status: "ACTIVE".into(),
        is_enabled: true,
        total_received: 0,
        total_processed: 0,
        total_failed: 0,
        last_received_at: None,
        created_at: now,
        updated_at: now,
        created_by_key: Some(t.api_key_id.0),
        updated_by_key: Some(t.api_key_id.0),
    };
    let (_, plain) = apply(&ctx, &t, &mut row, &input, &st, true, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    store::insert(&mut tx, &row).await.map_err(conflict)?;
    let data = json!({"id": row.id, "endpoint_path": row.endpoint_path, "signature_algorithm": row.signature_algorithm,
                      "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(&mut tx, &[event("webhook.endpoint.created", t.id, data)]).await?;
    tx.commit().await.map_err(|e| conflict(e.into()))?;
    st.cache.clear();
    let mut body = EndpointBody::from(&find(&ctx, &t, row.id).await?);
    body.secret_key = plain;
    Ok(HttpResponse::Created().json(body))
}

/// The tenant's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(ListParams), responses((status = 200, description = "`{\"data\": [EndpointBody], \"next_cursor\": …}`")))]
pub async fn list(
    t: Tenant,
    ctx: web::Data<Context>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = q.parse()?;
    let rows = store::list(&ctx.pool, t.id, after, limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::new(
        rows.iter().map(EndpointBody::from).collect(),
        limit,
        |b: &EndpointBody| b.id,
    )))
}

async fn find(ctx: &Context, t: &Tenant, id: Uuid) -> Result<Endpoint, ApiError> {
    store::get(&ctx.pool, t.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// One endpoint, with its counters.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(EndpointBody::from(&find(&ctx, &t, *id).await?)))
}

/// Updates any field. A new `secret_key` replaces the secret at once (use
/// rotate-secret for a grace period); the answer then shows it once.
#[utoipa::path(put, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = EndpointInput,
    responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
    body: web::Json<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let mut errors = Vec::new();
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    let (changed, plain) = apply(&ctx, &t, &mut row, &input, &st, false, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    row.updated_by_key = Some(t.api_key_id.0);
    if !changed.is_empty() {
        store::update(&mut tx, &row).await.map_err(conflict)?;
        let data = json!({"id": row.id, "changed": changed, "actor_api_key_id": t.api_key_id});
        hub_storage::outbox::enqueue(&mut tx, &[event("webhook.endpoint.updated", t.id, data)])
            .await?;
    }
    tx.commit().await.map_err(|e| conflict(e.into()))?;
    st.cache.clear();
    let mut body = EndpointBody::from(&find(&ctx, &t, *id).await?);
    body.secret_key = plain;
    Ok(HttpResponse::Ok().json(body))
}

/// Deletes an endpoint and its received events.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    if !store::delete(&mut tx, t.id, *id).await? {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let data = json!({"id": *id, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(&mut tx, &[event("webhook.endpoint.deleted", t.id, data)]).await?;
    tx.commit().await.map_err(StorageError::from)?;
    st.cache.clear();
    Ok(HttpResponse::NoContent().finish())
}

/// Body of rotate-secret (all optional).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointRotateInput {
    /// The new secret when the provider issues it; generated otherwise.
    pub secret_key: Option<String>,
    /// How long the old secret keeps working: 0–604800 s (default 86400).
    pub grace_period_seconds: Option<i64>,
}

/// Replaces the secret; the old one stays valid for the grace period. The
/// answer holds the new secret; it is never shown again.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = EndpointRotateInput, description = "Optional"),
    responses((status = 200, body = EndpointBody), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    t: Tenant,
    ctx: web::Data<Context>,
    st: web::Data<Inbound>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: EndpointRotateInput = optional_json(&body)?;
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let mut row = store::get_for_update(&mut tx, t.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    let scheme = scheme_of(&row);
    let mut errors = Vec::new();
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        errors.push(FieldError::new(
            "grace_period_seconds",
            format!("must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    if let Some(s) = &input.secret_key
        && let Err(e) = scheme.check_secret(s)
    {
        errors.push(FieldError::new("secret_key", e));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let new = input
        .secret_key
        .clone()
        .unwrap_or_else(|| scheme.generate_secret());
    let old = secrets::open_current(&row, &st.keyring).map_err(ApiError::internal)?;
    row.secret_previous = Some(secrets::seal_previous(row.id, &old, &st.keyring));
    let until = Utc::now() + ChronoDuration::seconds(grace);
    row.secret_previous_expires_at = Some(until);
    row.secret_sealed = secrets::seal_current(row.id, &new, &st.keyring);
    row.secret_hint = last_four(&new);
    row.updated_by_key = Some(t.api_key_id.0);
    store::update(&mut tx, &row).await?;
    let data = json!({"id": row.id, "previous_secret_expires_at": until, "actor_api_key_id": t.api_key_id});
    hub_storage::outbox::enqueue(
        &mut tx,
        &[event("webhook.endpoint.secret_rotated", t.id, data)],
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    st.cache.clear();
    let mut body = EndpointBody::from(&find(&ctx, &t, *id).await?);
    body.secret_key = Some(new);
    Ok(HttpResponse::Ok().json(body))
}

/// A JSON body that may be absent (empty means all defaults).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!(
                "invalid JSON body: {}",
                hub_platform::http::redact_values(&e.to_string())
            ),
        )
    })
}

/// A received request.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    /// Id (what the provider was answered).
    pub id: Uuid,
    /// The provider's event id, if it sent one.
    pub provider_event_id: Option<String>,
    /// What repeats are recognised by: `id:<provider id>` or `sha256:<body hash>`.
    pub dedupe_key: String,
    /// The provider's event type.
    pub event_type: Option<String>,
    /// Whether it repeats an earlier event (then never processed).
    pub duplicate: bool,
    /// The event it repeats.
    pub duplicate_of: Option<Uuid>,
    /// `PENDING`, `PROCESSED`, `SKIPPED` (filtered), `FAILED`, `DUPLICATE`.
    pub status: String,
    /// Processing attempts.
    pub attempts: i32,
    /// Last processing error.
    pub last_error: Option<String>,
    /// Method.
    pub method: String,
    /// Request headers.
    #[schema(value_type = Object)]
    pub headers: Value,
    /// The body as received (UTF-8; invalid bytes replaced).
    pub body: String,
    /// Client address.
    pub source_ip: String,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Processed.
    pub processed_at: Option<DateTime<Utc>>,
    /// Next attempt, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The typed event it produced.
    pub published_event_id: Option<Uuid>,
}

impl From<&EventRow> for EventBody {
    fn from(e: &EventRow) -> Self {
        Self {
            id: e.id,
            provider_event_id: e.provider_event_id.clone(),
            dedupe_key: e.dedupe_key.clone(),
            event_type: e.event_type.clone(),
            duplicate: e.duplicate,
            duplicate_of: e.duplicate_of,
            status: e.status.clone(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            method: e.method.clone(),
            headers: e.headers.clone(),
            body: String::from_utf8_lossy(&e.body).into_owned(),
            source_ip: e.source_ip.clone(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            next_attempt_at: e.next_attempt_at,
            published_event_id: e.published_event_id,
        }
    }
}

/// Query of the events list.
#[derive(Deserialize, IntoParams)]
pub struct EventQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this status.
    pub status: Option<String>,
}

/// The endpoint's received requests, oldest first (repeats included, flagged).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}/events", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), EventQuery),
    responses((status = 200, description = "`{\"data\": [EventBody], \"next_cursor\": …}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let (limit, after) = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse()?;
    let status = q.status.map(|s| s.to_ascii_uppercase());
    if let Some(s) = &status
        && !["PENDING", "PROCESSED", "SKIPPED", "FAILED", "DUPLICATE"].contains(&s.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "status: must be PENDING, PROCESSED, SKIPPED, FAILED or DUPLICATE",
        ));
    }
    find(&ctx, &t, *id).await?;
    let rows = hub_storage::inbound_events::list(
        &ctx.pool,
        t.id,
        *id,
        status.as_deref(),
        after,
        limit + 1,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page::new(
        rows.iter().map(EventBody::from).collect(),
        limit,
        |b: &EventBody| b.id,
    )))
}

/// Body of replay (optional).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointReplayInput {
    /// Only these events (default: every FAILED one).
    pub event_ids: Option<Vec<Uuid>>,
}

/// Puts FAILED events back in the processing queue with fresh attempts.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/events/replay", tag = "webhooks", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = EndpointReplayInput, description = "Optional"),
    responses((status = 200, description = "`{\"replayed\": n, \"event_ids\": [...]}`"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn replay(
    t: Tenant,
    ctx: web::Data<Context>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: EndpointReplayInput = optional_json(&body)?;
    if input.event_ids.as_ref().is_some_and(|v| v.len() > 1000) {
        return Err(FieldError::new("event_ids", "at most 1000 ids").into());
    }
    find(&ctx, &t, *id).await?;
    let mut tx = ctx.pool.begin().await.map_err(StorageError::from)?;
    let ids =
        hub_storage::inbound_events::replay(&mut tx, t.id, *id, input.event_ids.as_deref()).await?;
    if !ids.is_empty() {
        let data = json!({"endpoint_id": *id, "event_ids": ids, "actor_api_key_id": t.api_key_id});
        hub_storage::outbox::enqueue(&mut tx, &[event("webhook.endpoint.replayed", t.id, data)])
            .await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    Ok(HttpResponse::Ok().json(json!({"replayed": ids.len(), "event_ids": ids})))
}
