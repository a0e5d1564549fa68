//! Authentication and tenancy.
//!
//! Every `/api/v1` route takes `Authorization: Bearer <api key>` and
//! `X-Tenant-ID: <uuid>`; the key must belong to that tenant (design §6):
//! no or bad credentials → 401, tenant header missing or malformed → 400,
//! key of another tenant → 403. Admin routes take the operator token
//! (`HUB_ADMIN_TOKEN`) instead and no tenant header.

use crate::error::{ApiError, ErrorCode};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use hub_domain::status::TenantStatus;
use hub_domain::{ApiKeyId, ApiKeySecret, TenantId};
use hub_storage::wake::Woken;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::future::Future;
use std::pin::Pin;

/// Header naming the tenant of a request.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// What authentication needs, as app data.
#[derive(Clone)]
pub struct AuthState {
    /// The hub database.
    pub pool: PgPool,
    /// SHA-256 of the operator token, when the admin API is on.
    pub admin_token_hash: Option<[u8; 32]>,
    /// When this process last recorded each key's use (`last_used_at` is
    /// minute-grained, so a busy key costs one write a minute, not one per
    /// request).
    touched:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, std::time::Instant>>>,
    /// Keys this process has verified recently.
    keys: std::sync::Arc<KeyCache>,
}

impl AuthState {
    /// State for `pool` and the configured operator token.
    pub fn new(pool: PgPool, admin_token: Option<&str>) -> Self {
        Self {
            pool,
            admin_token_hash: admin_token.map(|t| Sha256::digest(t.as_bytes()).into()),
            touched: Default::default(),
            keys: Default::default(),
        }
    }

    /// Forgets every cached key (after a revocation this process made).
    pub fn forget_keys(&self) {
        self.keys.clear();
    }

    /// Keeps the key cache true until `shutdown`: it is used only while this
    /// process listens for revocations, and emptied by each one.
    pub async fn watch_revocations(self, shutdown: tokio_util::sync::CancellationToken) {
        use hub_bus::backoff::Backoff as _;
        let mut backoff = hub_bus::backoff::doubling(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(10),
        );
        let mut wakeup =
            hub_storage::wake::Wakeup::new(self.pool.clone(), hub_storage::tenants::KEYS_CHANNEL);
        while !shutdown.is_cancelled() {
            match wakeup.listen().await {
                Ok(_) => {
                    // Anything revoked while nobody listened is forgotten too.
                    self.keys.set_listening(true);
                    backoff.reset();
                    loop {
                        tokio::select! {
                            w = wakeup.wait(REVOCATIONS_IDLE) => match w {
                                Woken::Notified => self.keys.clear(),
                                Woken::Elapsed => {}
                                Woken::Lost => {
                                    tracing::debug!("API key revocation listener lost; not caching keys until it is back");
                                    break;
                                }
                            },
                            _ = shutdown.cancelled() => break,
                        }
                    }
                    self.keys.set_listening(false);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot listen for API key revocations; not caching keys");
                }
            }
            let wait = backoff.next_backoff().unwrap_or(backoff.max_interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

/// How long a revocation listener waits before it waits again (nothing is
/// polled: this only bounds one wait).
const REVOCATIONS_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a verified key is trusted without asking the database again
/// (revocations through the API take effect at once; this bounds changes
/// made behind the API's back, such as a tenant suspended in SQL).
const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// Most keys cached (a full cache starts over).
const KEY_CACHE_MAX: usize = 10_000;

type CachedKey = (
    hub_storage::tenants::ApiKey,
    TenantStatus,
    std::time::Instant,
);

/// Verified API keys by hash, so a busy client costs no key lookup per
/// request. Used only while revocations are being listened for.
#[derive(Default)]
struct KeyCache {
    inner: std::sync::Mutex<KeyCacheInner>,
}

#[derive(Default)]
struct KeyCacheInner {
    listening: bool,
    /// Bumped by every clear: a lookup that started before a clear does
    /// not put what it read back.
    generation: u64,
    keys: std::collections::HashMap<[u8; 32], CachedKey>,
}

impl KeyCache {
    /// The cached key and tenant status, or the generation to pass to
    /// [`KeyCache::put`] after looking it up.
    fn get(&self, hash: &[u8; 32]) -> Result<(hub_storage::tenants::ApiKey, TenantStatus), u64> {
        let inner = self.inner.lock().expect("key cache");
        match inner.keys.get(hash) {
            Some((key, status, at)) if inner.listening && at.elapsed() < KEY_CACHE_TTL => {
                Ok((key.clone(), *status))
            }
            _ => Err(inner.generation),
        }
    }

    fn put(
        &self,
        hash: [u8; 32],
        generation: u64,
        key: hub_storage::tenants::ApiKey,
        status: TenantStatus,
    ) {
        let mut inner = self.inner.lock().expect("key cache");
        if !inner.listening || inner.generation != generation {
            return;
        }
        if inner.keys.len() >= KEY_CACHE_MAX {
            inner.keys.clear();
        }
        inner
            .keys
            .insert(hash, (key, status, std::time::Instant::now()));
    }

    fn clear(&self) {
        let mut inner = self.inner.lock().expect("key cache");
        inner.generation += 1;
        inner.keys.clear();
    }

    fn set_listening(&self, on: bool) {
        let mut inner = self.inner.lock().expect("key cache");
        inner.listening = on;
        inner.generation += 1;
        inner.keys.clear();
    }
}

/// An authenticated tenant request: the tenant and the key that proved it.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    /// The tenant every query of this request is scoped to.
    pub id: TenantId,
    /// The API key used.
    pub api_key_id: ApiKeyId,
}

fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let raw = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingCredentials,
                "send Authorization: Bearer <api key>",
            )
        })?;
    let text = raw.to_str().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the Authorization header is not valid text",
        )
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "use the Bearer scheme: Authorization: Bearer <api key>",
        ));
    }
    Ok(token.trim())
}

async fn authenticate(req: HttpRequest) -> Result<Tenant, ApiError> {
    let state = req
        .app_data::<web::Data<AuthState>>()
        .ok_or_else(|| ApiError::internal("AuthState missing from app data"))?
        .clone();
    let token = bearer(&req)?;
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the API key is unknown, malformed or revoked",
        )
    };
    let secret = ApiKeySecret::parse(token).ok_or_else(invalid)?;
    let hash = secret.hash();
    let (key, tenant_status) = match state.keys.get(&hash.0) {
        Ok(hit) => hit,
        Err(generation) => {
            let (key, status) = hub_storage::tenants::find_active_key(&state.pool, &hash)
                .await?
                .ok_or_else(invalid)?;
            state.keys.put(hash.0, generation, key.clone(), status);
            (key, status)
        }
    };

    let header = req.headers().get(TENANT_HEADER).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingTenantHeader,
            "send X-Tenant-ID: <tenant uuid>",
        )
    })?;
    let tenant: TenantId = header
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidTenantHeader,
                "X-Tenant-ID must be the tenant's UUID",
            )
        })?;
    if tenant != key.tenant_id {
        return Err(ApiError::new(
            ErrorCode::TenantMismatch,
            "this API key does not belong to the tenant in X-Tenant-ID",
        ));
    }
    if tenant_status != TenantStatus::Active {
        return Err(ApiError::new(
            ErrorCode::TenantSuspended,
            "the tenant is suspended",
        ));
    }
    // Recording use must not slow the request or fail it.
    let pool = state.pool.clone();
    let key_id = key.id;
    let due = {
        let mut touched = state.touched.lock().expect("touch map");
        let now = std::time::Instant::now();
        match touched.get(&key_id.0) {
            Some(at) if now.duration_since(*at) < std::time::Duration::from_secs(30) => false,
            _ => {
                if touched.len() > 10_000 {
                    touched.clear();
                }
                touched.insert(key_id.0, now);
                true
            }
        }
    };
    if due {
        tokio::spawn(async move {
            if let Err(e) = hub_storage::tenants::touch_api_key(&pool, key_id).await {
                tracing::debug!(error = %e, "could not record API key use");
            }
        });
    }
    Ok(Tenant {
        id: tenant,
        api_key_id: key.id,
    })
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}

/// An operator request, authenticated with `HUB_ADMIN_TOKEN`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let state = req
                .app_data::<web::Data<AuthState>>()
                .ok_or_else(|| ApiError::internal("AuthState missing from app data"))?;
            let Some(expected) = state.admin_token_hash else {
                return Err(ApiError::new(
                    ErrorCode::AdminDisabled,
                    "the admin API is off; set HUB_ADMIN_TOKEN to turn it on",
                ));
            };
            let token = bearer(req).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidAdminToken,
                    "send Authorization: Bearer <HUB_ADMIN_TOKEN>",
                )
            })?;
            // Comparing digests keeps the comparison time independent of the token.
            let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if given != expected {
                return Err(ApiError::new(
                    ErrorCode::InvalidAdminToken,
                    "the operator token is wrong",
                ));
            }
            Ok(Admin)
        })())
    }
}
