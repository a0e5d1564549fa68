//! OAuth connections: pending authorizations (`oauth_states`), the token
//! journal (`oauth_token_journal`) and the integrations whose tokens are due
//! for a refresh. The tokens themselves live on the integration row
//! ([`crate::integrations`]), written with [`crate::integrations::update`]
//! under its row lock.

use crate::integrations::{Integration, SELECT};
use crate::{Result, Tx};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

/// A pending authorization, as stored (the state itself only as its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct State {
    /// SHA-256 (hex) of the state.
    pub state_hash: String,
    /// The tenant that asked.
    pub tenant_id: Uuid,
    /// The integration being connected.
    pub integration_id: Uuid,
    /// The API key that asked (the callback acts for it).
    pub api_key_id: Uuid,
    /// Sealed PKCE verifier, when a challenge was sent.
    pub code_verifier: Option<String>,
    /// The redirect URI given to the consent page (the code exchange repeats it).
    pub redirect_uri: String,
    /// Where to send the browser afterwards.
    pub redirect_after: Option<String>,
    /// Extra scopes asked for.
    pub scopes: serde_json::Value,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Stores a new pending authorization.
pub async fn insert_state(pool: &PgPool, s: &State) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, tenant_id, integration_id, api_key_id, code_verifier,
             redirect_uri, redirect_after, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.state_hash)
    .bind(s.tenant_id)
    .bind(s.integration_id)
    .bind(s.api_key_id)
    .bind(&s.code_verifier)
    .bind(&s.redirect_uri)
    .bind(&s.redirect_after)
    .bind(&s.scopes)
    .bind(s.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Uses up the state with this hash, if it is unused and unexpired; `None`
/// (and nothing changed) otherwise. Single use holds across replicas: the
/// update's row lock lets one of two concurrent callbacks have it.
pub async fn consume_state(tx: &mut Tx<'_>, state_hash: &str) -> Result<Option<State>> {
    Ok(sqlx::query_as(
        "UPDATE oauth_states SET used_at = NOW()
         WHERE state_hash = $1 AND used_at IS NULL AND expires_at > NOW()
         RETURNING state_hash, tenant_id, integration_id, api_key_id, code_verifier, redirect_uri, redirect_after,
                   scopes, expires_at",
    )
    .bind(state_hash)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Deletes states that expired more than a day ago.
pub async fn prune_states(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < NOW() - INTERVAL '1 day'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Journals a sealed token answer in its own autocommit statement, before
/// it is applied to the integration (see the migration's comment).
pub async fn journal(
    pool: &PgPool,
    tenant: TenantId,
    integration: Uuid,
    id: Uuid,
    sealed: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_token_journal (id, tenant_id, integration_id, answer) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(tenant.0)
    .bind(integration)
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest journaled answer not yet applied to the integration, as
/// `(id, sealed answer)`; call with the integration's row locked.
pub async fn journaled(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    integration: Uuid,
) -> Result<Option<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, answer FROM oauth_token_journal WHERE tenant_id = $1 AND integration_id = $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(tenant.0)
    .bind(integration)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Drops every journal entry of the integration (once the newest is applied).
pub async fn clear_journal(tx: &mut Tx<'_>, tenant: TenantId, integration: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM oauth_token_journal WHERE tenant_id = $1 AND integration_id = $2")
        .bind(tenant.0)
        .bind(integration)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A live integration of `tenant`, locked until `tx` ends, or `None` when it
/// does not exist or another transaction holds its lock (`SKIP LOCKED`: the
/// periodic refresh leaves it to whoever has it).
pub async fn get_if_unlocked(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Integration>> {
    let sql = format!(
        "{SELECT} WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL FOR UPDATE OF i SKIP LOCKED"
    );
    crate::fetch_owned(&mut **tx, sql, tenant, id).await
}

/// Connected OAuth integrations whose refresh is due, oldest expiry first:
/// the access token expires within `ahead_secs`, or 80% of the refresh
/// token's lifetime has passed since the last refresh (idle connections keep
/// their refresh token alive); none waiting out a failure (`oauth_retry_at`).
pub async fn due_for_refresh(
    pool: &PgPool,
    ahead_secs: i64,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM integrations
         WHERE deleted_at IS NULL AND oauth_tokens IS NOT NULL AND auth_type = 'OAUTH2'
           AND (oauth_retry_at IS NULL OR oauth_retry_at <= NOW())
           AND (oauth_expires_at < NOW() + make_interval(secs => $1)
                OR (oauth_refresh_expires_at IS NOT NULL AND oauth_refreshed_at IS NOT NULL
                    AND oauth_refreshed_at + (oauth_refresh_expires_at - oauth_refreshed_at) * 0.8 <= NOW()))
         ORDER BY oauth_expires_at NULLS LAST LIMIT $2",
    )
    .bind(ahead_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
