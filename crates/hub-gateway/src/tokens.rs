//! OAuth2 access tokens for provider calls, refreshed before they expire and
//! after a 401, **once** across every replica.
//!
//! - Across replicas: a refresh holds the integration's row lock
//!   (`SELECT … FOR UPDATE`) from before it reads the tokens until the new
//!   ones are committed; whoever gets the lock next sees the new token (no
//!   longer the stale one, no longer expiring) and uses it without calling
//!   the provider. So two refreshes never use the same refresh token.
//! - In one process: concurrent refreshes of one integration share one
//!   spawned task, so 20 requests wait on one row lock, not 20. The task is
//!   spawned so that a caller that goes away cannot cancel a refresh between
//!   the provider's answer and its save.
//! - Rotation and crashes: the provider's answer is first journaled, sealed,
//!   in its own autocommit statement (`oauth_token_journal`), then applied to
//!   the row and the journal entry deleted in one transaction. A refresh that
//!   finds a journal entry applies it instead of using the old refresh token.
//!   A rotated refresh token is therefore committed (journal, then row)
//!   before the new access token is handed to anyone.
//! - Errors: `invalid_grant`, `invalid_client`, `unauthorized_client` and
//!   per-provider patterns ([`hub_connectors::oauth::classify`]) are
//!   [`TokenError::Revoked`]: the integration goes to `PENDING_AUTH` at once,
//!   its tokens are dropped and exactly one `integration.disconnected` is
//!   written to the outbox in the same transaction. 5xx, 429 and network
//!   errors are retried with jittered exponential backoff (the `backoff`
//!   crate) for at most [`RETRY_DEADLINE`]; if they persist the integration's
//!   next attempt is pushed out (`oauth_retry_at`, doubling per failure, at
//!   most 5 minutes) and remembered in process, so 100 callers do not each
//!   call a failing token endpoint: they get [`TokenError::Unavailable`].
//! - Test-only fault injection: `HUB_FAULT=exit-after-token-journal` (read
//!   once, in [`Tokens::new`]) aborts the process right after a token answer
//!   is journaled and before it is applied, as a `kill -9` at that point would.
//!
//! The periodic refresh ([`Tokens::refresh_due`]) is run by the manager every
//! minute; it will later be driven by the sync scheduler's
//! `integration.token.check-expiring` tick.

use crate::credentials::{self, OAuthTokens};
use backoff::backoff::Backoff;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use hub_connectors::catalog::manifest;
use hub_connectors::client::TargetPolicy;
use hub_connectors::manifest::{GrantType, OAuthConfig};
use hub_connectors::oauth::{self, ClientApp, Grant, TokenAnswer, TokenFailure};
use hub_domain::secret::Keyring;
use hub_domain::status::IntegrationStatus;
use hub_domain::{Envelope, EventType, TenantId};
use hub_storage::integrations::{self as store, Integration};
use hub_storage::{StorageError, Tx};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A token expiring within this is refreshed before use.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// How long one refresh keeps retrying an unavailable token endpoint.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(8);
/// Timeout of one token-endpoint call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The `source` of the events the token keeper writes.
const SOURCE: &str = "hub-gateway";
/// The fault [`Tokens::new`] reads from `HUB_FAULT` (tests only).
pub const FAULT_EXIT_AFTER_JOURNAL: &str = "exit-after-token-journal";

/// Why no access token can be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The integration has no OAuth connection (never connected, no
    /// refresh token, no OAuth app, not an OAuth provider, deleted).
    #[error("not connected: {0}")]
    NotConnected(String),
    /// The provider revoked the grant or the client; the integration is now
    /// `PENDING_AUTH` and must be connected again.
    #[error("the OAuth connection was revoked: {0}")]
    Revoked(String),
    /// The token endpoint is unavailable (5xx, 429, network); try later.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The hub failed (database, sealed data that does not open).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for TokenError {
    fn from(e: StorageError) -> Self {
        TokenError::Internal(e.to_string())
    }
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        TokenError::Internal(StorageError::from(e).to_string())
    }
}

impl From<hub_domain::secret::SecretError> for TokenError {
    fn from(e: hub_domain::secret::SecretError) -> Self {
        TokenError::Internal(format!("sealed OAuth data: {e}"))
    }
}

/// A token obtained or confirmed by a refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// The access token to use.
    pub access_token: String,
    /// When it expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a refresh must achieve; checked again once the row is locked, so
/// work another replica already did is not repeated.
#[derive(Clone, PartialEq, Eq)]
enum Need {
    /// A token not expiring within [`REFRESH_AHEAD`].
    Fresh,
    /// Any token but this one (the provider answered 401 to it).
    Not(String),
    /// A new token from the provider (`refresh-oauth`).
    Forced,
    /// The periodic check: fresh, and a refresh token not near its end.
    Due,
}

type SharedRefresh = Shared<BoxFuture<'static, Result<Refreshed, TokenError>>>;

struct Inner {
    pool: sqlx::PgPool,
    /// A small pool of its own for the journal's autocommit insert: a
    /// refresh already holds a connection of `pool` (the row lock), and
    /// waiting for a second one from the same pool starves it when many
    /// integrations refresh at once.
    journal_pool: sqlx::PgPool,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    policy: TargetPolicy,
    inflight: Mutex<HashMap<Uuid, SharedRefresh>>,
    /// Failing integrations: no refresh before this instant (in process).
    not_before: Mutex<HashMap<Uuid, Instant>>,
    fault: Option<String>,
}

/// The access-token keeper every provider call gets its OAuth token from.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

impl Tokens {
    /// A keeper over the hub database, opening and sealing with `keyring`,
    /// calling token endpoints with `http` under `policy`.
    pub fn new(
        pool: sqlx::PgPool,
        keyring: Arc<Keyring>,
        http: reqwest::Client,
        policy: TargetPolicy,
    ) -> Self {
        let fault = std::env::var("HUB_FAULT").ok().filter(|f| !f.is_empty());
        let journal_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            inner: Arc::new(Inner {
                pool,
                journal_pool,
                keyring,
                http,
                policy,
                inflight: Mutex::new(HashMap::new()),
                not_before: Mutex::new(HashMap::new()),
                fault,
            }),
        }
    }

    /// The access token to use now; refreshes first (once across replicas)
    /// if it expires within 5 minutes.
    pub async fn access(&self, integration: &Integration) -> Result<String, TokenError> {
        let tokens = credentials::open_tokens(integration, &self.inner.keyring)?
            .ok_or_else(not_connected)?;
        if !expiring(integration.oauth_expires_at, Utc::now()) {
            return Ok(tokens.access_token);
        }
        Ok(self.coalesced(integration, Need::Fresh).await?.access_token)
    }

    /// The provider answered 401 to `stale`: refresh once across replicas,
    /// or return the token another request/replica already got in its place.
    pub async fn after_unauthorized(
        &self,
        integration: &Integration,
        stale: &str,
    ) -> Result<String, TokenError> {
        let need = Need::Not(stale.to_owned());
        Ok(self.coalesced(integration, need).await?.access_token)
    }

    /// Refreshes now (`POST …/refresh-oauth`), whatever the token's expiry.
    pub async fn refresh_now(&self, integration: &Integration) -> Result<Refreshed, TokenError> {
        self.coalesced(integration, Need::Forced).await
    }

    /// One pass of the periodic refresh: up to `limit` integrations whose
    /// token expires within 5 minutes or whose refresh token has run 80% of
    /// its lifetime, each refreshed unless another replica holds it
    /// (`SKIP LOCKED`). Returns how many were refreshed.
    pub async fn refresh_due(&self, limit: i64) -> Result<usize, TokenError> {
        let ahead = i64::try_from(REFRESH_AHEAD.as_secs()).unwrap_or(300);
        let due = hub_storage::oauth::due_for_refresh(&self.inner.pool, ahead, limit).await?;
        let mut refreshed = 0;
        for (tenant, id) in due {
            match self.refresh(TenantId(tenant), id, Need::Due, false).await {
                Ok(Some(_)) => refreshed += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(integration = %id, error = %e, "periodic OAuth refresh failed")
                }
            }
        }
        Ok(refreshed)
    }

    /// Joins the refresh of `integration` running in this process, or
    /// starts one (in its own task, so no caller can cancel it half-way).
    async fn coalesced(
        &self,
        integration: &Integration,
        need: Need,
    ) -> Result<Refreshed, TokenError> {
        let id = integration.id;
        let tenant = TenantId(integration.tenant_id);
        let fut = {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(f) = inflight.get(&id) {
                f.clone()
            } else {
                let this = self.clone();
                let task = tokio::spawn(async move {
                    let result = this.refresh(tenant, id, need, true).await;
                    this.inner
                        .inflight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    result.and_then(|r| {
                        r.ok_or_else(|| TokenError::Internal("refresh skipped".into()))
                    })
                });
                let f = async move {
                    task.await
                        .unwrap_or_else(|e| Err(TokenError::Internal(format!("refresh task: {e}"))))
                }
                .boxed()
                .shared();
                inflight.insert(id, f.clone());
                f
            }
        };
        fut.await
    }

    /// A failing integration's next attempt, if it is still ahead.
    fn backing_off(&self, id: Uuid) -> Option<Duration> {
        let map = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .and_then(|at| at.checked_duration_since(Instant::now()))
    }

    fn remember_failure(&self, id: Uuid, until: Option<DateTime<Utc>>) {
        let mut map = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match until.and_then(|u| (u - Utc::now()).to_std().ok()) {
            Some(wait) => {
                map.insert(id, Instant::now() + wait);
            }
            None => {
                map.remove(&id);
            }
        }
    }

    /// The refresh itself, under the integration's row lock (`wait`: wait
    /// for it; else skip a row another transaction holds and answer `None`).
    async fn refresh(
        &self,
        tenant: TenantId,
        id: Uuid,
        need: Need,
        wait: bool,
    ) -> Result<Option<Refreshed>, TokenError> {
        if need != Need::Forced
            && let Some(left) = self.backing_off(id)
        {
            return Err(unavailable_for(left));
        }
        let mut tx = self.inner.pool.begin().await?;
        let row = if wait {
            store::get_for_update(&mut tx, tenant, id).await?
        } else {
            hub_storage::oauth::get_if_unlocked(&mut tx, tenant, id).await?
        };
        let Some(mut row) = row else {
            return if wait {
                Err(TokenError::NotConnected("no such integration".into()))
            } else {
                Ok(None)
            };
        };
        let oauth = oauth_of(&row)?;
        let now = Utc::now();
        let applied = self.apply_journal(&mut tx, &mut row, &oauth, now).await?;
        let Some(tokens) = credentials::open_tokens(&row, &self.inner.keyring)? else {
            tx.commit().await?;
            return Err(not_connected());
        };
        if satisfied(&need, &row, &tokens, applied, now) {
            tx.commit().await?;
            self.remember_failure(id, None);
            return Ok(Some(refreshed(&row, tokens)));
        }
        if need != Need::Forced
            && let Some(at) = row.oauth_retry_at.filter(|at| *at > now)
        {
            tx.commit().await?;
            self.remember_failure(id, Some(at));
            return Err(unavailable_for((at - now).to_std().unwrap_or_default()));
        }
        let app = credentials::open_client(&row, &self.inner.keyring)?;
        let basic = credentials::open(&row, &self.inner.keyring)?.basic;
        let grant = app
            .as_ref()
            .and_then(|_| renewal(oauth.grant_type, &tokens, basic.as_ref()));
        let (Some(app), Some(grant)) = (app.as_ref(), grant) else {
            if need == Need::Due {
                // Nothing to renew with: look again in an hour, not every minute.
                row.oauth_retry_at = Some(now + chrono::Duration::hours(1));
                store::update(&mut tx, &row).await?;
            }
            tx.commit().await?;
            return Err(TokenError::NotConnected(
                "the connection cannot be renewed (no refresh token or no OAuth app: set \
                 credentials.client_id and client_secret, then POST …/oauth/authorize)"
                    .into(),
            ));
        };
        let answer = self.call_provider(&row, &oauth, app, &grant).await;
        self.settle(tx, row, &oauth, answer).await.map(Some)
    }

    /// Applies a journaled answer the last refresh could not (a crash
    /// between the provider's answer and the save); `true` if there was one.
    async fn apply_journal(
        &self,
        tx: &mut Tx<'_>,
        row: &mut Integration,
        oauth: &OAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let tenant = TenantId(row.tenant_id);
        let Some((_, sealed)) = hub_storage::oauth::journaled(tx, tenant, row.id).await? else {
            return Ok(false);
        };
        let answer = credentials::open_answer(row.id, &self.inner.keyring, &sealed)?;
        credentials::apply_answer(row, &self.inner.keyring, oauth, &answer, now)?;
        store::update(tx, row).await?;
        hub_storage::oauth::clear_journal(tx, tenant, row.id).await?;
        tracing::info!(integration = %row.id, "applied a journaled OAuth token answer");
        Ok(true)
    }

    /// Calls the token endpoint with the grant that renews this connection,
    /// retrying an unavailable endpoint with jittered backoff for at most
    /// [`RETRY_DEADLINE`].
    async fn call_provider(
        &self,
        row: &Integration,
        oauth: &OAuthConfig,
        app: &ClientApp,
        grant: &Grant<'_>,
    ) -> Result<TokenAnswer, TokenFailure> {
        let mut backoff = backoff::ExponentialBackoff {
            initial_interval: Duration::from_millis(250),
            current_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(2),
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_elapsed_time: Some(RETRY_DEADLINE),
            ..backoff::ExponentialBackoff::default()
        };
        loop {
            let inner = &self.inner;
            let result = oauth::request_token(
                &inner.http,
                oauth,
                &row.config,
                app,
                grant,
                CALL_TIMEOUT,
                inner.policy,
            )
            .await;
            match (result, backoff.next_backoff()) {
                (Err(TokenFailure::Unavailable(why)), Some(wait)) => {
                    tracing::warn!(integration = %row.id, %why, "token endpoint unavailable; retrying");
                    tokio::time::sleep(wait).await;
                }
                (other, _) => return other,
            }
        }
    }

    /// Stores what the token endpoint said and commits: a new token
    /// (journaled first), a revocation (`PENDING_AUTH` and one
    /// `integration.disconnected`), or a failure to retry later.
    async fn settle(
        &self,
        mut tx: Tx<'static>,
        mut row: Integration,
        oauth: &OAuthConfig,
        answer: Result<TokenAnswer, TokenFailure>,
    ) -> Result<Refreshed, TokenError> {
        let now = Utc::now();
        let tenant = TenantId(row.tenant_id);
        match answer {
            Ok(answer) => {
                let sealed = credentials::seal_answer(row.id, &self.inner.keyring, &answer);
                let journaled = hub_storage::oauth::journal(
                    &self.inner.journal_pool,
                    tenant,
                    row.id,
                    Uuid::now_v7(),
                    &sealed,
                )
                .await;
                if let Err(e) = &journaled {
                    // Still try to save it on the row: that is the last chance.
                    tracing::error!(integration = %row.id, error = %e, "could not journal a token answer");
                }
                if journaled.is_ok()
                    && self.inner.fault.as_deref() == Some(FAULT_EXIT_AFTER_JOURNAL)
                {
                    tracing::error!("HUB_FAULT={FAULT_EXIT_AFTER_JOURNAL}: aborting (tests only)");
                    std::process::abort();
                }
                credentials::apply_answer(&mut row, &self.inner.keyring, oauth, &answer, now)?;
                store::update(&mut tx, &row).await?;
                hub_storage::oauth::clear_journal(&mut tx, tenant, row.id).await?;
                tx.commit().await?;
                self.remember_failure(row.id, None);
                tracing::info!(integration = %row.id, "OAuth tokens refreshed");
                Ok(Refreshed {
                    access_token: answer.access_token,
                    expires_at: row.oauth_expires_at,
                })
            }
            Err(TokenFailure::Revoked { code, message }) => {
                let error =
                    format!("OAuth refresh refused ({code}); connect the integration again");
                row.status = IntegrationStatus::PendingAuth;
                row.oauth_tokens = None;
                row.oauth_expires_at = None;
                row.oauth_retry_at = None;
                row.oauth_failures = 0;
                row.last_error = Some(error.clone());
                row.last_error_at = Some(now);
                row.error_count += 1;
                if let Some(hint) = row.credentials_hint.as_object_mut() {
                    hint.remove("access_token");
                    hint.remove("refresh_token");
                    hint.remove("expires_at");
                }
                store::update(&mut tx, &row).await?;
                let data = serde_json::json!({
                    "id": row.id, "status": row.status, "reason": "oauth_revoked", "error": code,
                });
                let event = Envelope::new(
                    SOURCE,
                    EventType::parse("integration.disconnected").expect("static event type"),
                    Some(tenant),
                    data,
                );
                hub_storage::outbox::enqueue(&mut tx, &[event]).await?;
                tx.commit().await?;
                tracing::warn!(integration = %row.id, %code, %message, "OAuth grant revoked; integration is PENDING_AUTH");
                Err(TokenError::Revoked(error))
            }
            Err(failure) => {
                row.oauth_failures = row.oauth_failures.saturating_add(1);
                let until = now
                    + chrono::Duration::from_std(retry_wait(row.oauth_failures))
                        .unwrap_or_default();
                row.oauth_retry_at = Some(until);
                row.last_error = Some(failure.to_string());
                row.last_error_at = Some(now);
                store::update(&mut tx, &row).await?;
                tx.commit().await?;
                self.remember_failure(row.id, Some(until));
                Err(TokenError::Unavailable(failure.to_string()))
            }
        }
    }
}

fn not_connected() -> TokenError {
    TokenError::NotConnected(
        "the integration has no OAuth tokens; connect it with POST …/oauth/authorize".into(),
    )
}

fn unavailable_for(left: Duration) -> TokenError {
    TokenError::Unavailable(format!(
        "the last refresh failed; next attempt in {} s",
        left.as_secs().max(1)
    ))
}

/// The provider's OAuth section, or `NotConnected`.
fn oauth_of(row: &Integration) -> Result<OAuthConfig, TokenError> {
    manifest(&row.provider_code)
        .and_then(|m| m.oauth.clone())
        .ok_or_else(|| {
            TokenError::NotConnected(format!("{} is not an OAuth provider", row.provider_code))
        })
}

/// The grant that renews a connection: the refresh token if there is one,
/// else the provider's own grant when it needs no user (client credentials,
/// password with the integration's basic credentials).
fn renewal<'a>(
    grant: GrantType,
    tokens: &'a OAuthTokens,
    basic: Option<&'a (String, String)>,
) -> Option<Grant<'a>> {
    const NO_SCOPES: &[String] = &[];
    match (grant, &tokens.refresh_token, basic) {
        (_, Some(refresh_token), _) => Some(Grant::Refresh { refresh_token }),
        (GrantType::ClientCredentials, None, _) => {
            Some(Grant::ClientCredentials { scopes: NO_SCOPES })
        }
        (GrantType::Password, None, Some((username, password))) => Some(Grant::Password {
            username,
            password,
            scopes: NO_SCOPES,
        }),
        _ => None,
    }
}

/// Whether a token expiring at `at` must be refreshed before use.
fn expiring(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    at.is_some_and(|at| at <= now + chrono::Duration::from_std(REFRESH_AHEAD).unwrap_or_default())
}

/// Whether the locked row already has what `need` asks (another request or
/// replica did the work, or a journal entry was just applied).
fn satisfied(
    need: &Need,
    row: &Integration,
    tokens: &OAuthTokens,
    applied: bool,
    now: DateTime<Utc>,
) -> bool {
    match need {
        Need::Fresh => !expiring(row.oauth_expires_at, now),
        Need::Not(stale) => tokens.access_token != *stale,
        Need::Forced => applied,
        Need::Due => !expiring(row.oauth_expires_at, now) && !refresh_token_aging(row, now),
    }
}

/// 80% of the refresh token's lifetime has passed since the last refresh.
fn refresh_token_aging(row: &Integration, now: DateTime<Utc>) -> bool {
    match (row.oauth_refreshed_at, row.oauth_refresh_expires_at) {
        (Some(from), Some(to)) => from + (to - from) * 4 / 5 <= now,
        _ => false,
    }
}

fn refreshed(row: &Integration, tokens: OAuthTokens) -> Refreshed {
    Refreshed {
        access_token: tokens.access_token,
        expires_at: row.oauth_expires_at,
    }
}

/// How long to leave a token endpoint alone after `failures` failed
/// refreshes in a row: 5 s doubling, at most 5 minutes, ±25% jitter.
fn retry_wait(failures: i32) -> Duration {
    let base = Duration::from_secs(5);
    let max = Duration::from_secs(300);
    let exp = u32::try_from(failures.clamp(1, 10) - 1).unwrap_or(0);
    let wait = base.saturating_mul(1 << exp).min(max);
    let jitter = rand::random_range(0.75..1.25);
    wait.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_grow_and_cap() {
        assert!(retry_wait(1) <= Duration::from_millis(6250));
        assert!(retry_wait(1) >= Duration::from_millis(3750));
        assert!(retry_wait(20) <= Duration::from_secs(375));
        assert!(retry_wait(20) >= Duration::from_secs(225));
    }

    #[test]
    fn a_token_expiring_within_five_minutes_is_refreshed() {
        let now = Utc::now();
        assert!(expiring(Some(now + chrono::Duration::seconds(299)), now));
        assert!(!expiring(Some(now + chrono::Duration::seconds(301)), now));
        assert!(!expiring(None, now));
    }
}
