//! Web console sessions (`console_sessions`): a row per signed-in browser,
//! found by the SHA-256 of its cookie, holding the sealed credential the
//! console calls the public API with. The console never reads any other
//! table: everything it shows comes through the HTTP API.

use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// One console session, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsoleSession {
    /// SHA-256 (hex) of the cookie's value.
    pub id_hash: String,
    /// `TENANT` (an API key of `tenant_id`) or `OPERATOR` (the admin token).
    pub kind: String,
    /// The tenant of a `TENANT` session.
    pub tenant_id: Option<Uuid>,
    /// The sealed API key or admin token.
    pub credential_sealed: String,
    /// The session's CSRF token, required on every change.
    pub csrf_token: String,
    /// What the console shows as "signed in as".
    pub label: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Stores a new session, and deletes the expired ones.
pub async fn insert(pool: &PgPool, s: &ConsoleSession) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM console_sessions WHERE expires_at < NOW()")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, kind, tenant_id, credential_sealed, csrf_token, label, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id_hash)
    .bind(&s.kind)
    .bind(s.tenant_id)
    .bind(&s.credential_sealed)
    .bind(&s.csrf_token)
    .bind(&s.label)
    .bind(s.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The unexpired session with this hash, if any.
pub async fn find(pool: &PgPool, id_hash: &str) -> Result<Option<ConsoleSession>> {
    Ok(sqlx::query_as(
        "SELECT id_hash, kind, tenant_id, credential_sealed, csrf_token, label, expires_at
           FROM console_sessions WHERE id_hash = $1 AND expires_at > NOW()",
    )
    .bind(id_hash)
    .fetch_optional(pool)
    .await?)
}

/// Ends the session with this hash (sign-out); nothing if there is none.
pub async fn delete(pool: &PgPool, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}
