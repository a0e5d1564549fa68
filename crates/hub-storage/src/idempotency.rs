//! `event_idempotency_keys`: the first answer to each tenant's
//! `Idempotency-Key` on `POST /api/v1/events`, kept [`TTL_HOURS`].

use crate::{Result, Tx, column};
use hub_domain::TenantId;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// How long a key is honoured; older rows are taken over by a new request
/// and pruned.
pub const TTL_HOURS: i32 = 24;

/// A key's answer, to store with the request's events.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Whose key.
    pub tenant_id: TenantId,
    /// The header's value.
    pub key: String,
    /// SHA-256 of the request.
    pub request_hash: Vec<u8>,
    /// The answer's HTTP status.
    pub status: i16,
    /// The answer's body.
    pub response: String,
}

/// A stored key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    /// Whose key.
    pub tenant_id: Uuid,
    /// The header's value.
    pub key: String,
    /// SHA-256 of the first request.
    pub request_hash: Vec<u8>,
    /// The first answer's HTTP status.
    pub status: i16,
    /// The first answer's body.
    pub response: String,
}

/// Stores `keys` (each (tenant, key) at most once in the slice) in `tx`, in
/// one statement; a key another request holds (committed, or in a
/// transaction this statement waits for) and that is younger than
/// [`TTL_HOURS`] is left as it is. Returns the (tenant, key) pairs stored.
pub async fn store(tx: &mut Tx<'_>, keys: &[NewKey]) -> Result<HashSet<(Uuid, String)>> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "INSERT INTO event_idempotency_keys AS k (tenant_id, key, request_hash, status, response)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::int2[], $5::text[])
         ON CONFLICT (tenant_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
                response = EXCLUDED.response, created_at = NOW()
          WHERE k.created_at < NOW() - make_interval(hours => $6)
         RETURNING tenant_id, key",
    )
    .bind(column(keys, |k| k.tenant_id.0))
    .bind(column(keys, |k| k.key.as_str()))
    .bind(column(keys, |k| k.request_hash.as_slice()))
    .bind(column(keys, |k| k.status))
    .bind(column(keys, |k| k.response.as_str()))
    .bind(TTL_HOURS)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The live (younger than [`TTL_HOURS`]) stored keys among `keys`.
pub async fn find(pool: &PgPool, keys: &[(TenantId, &str)]) -> Result<Vec<StoredKey>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT k.tenant_id, k.key, k.request_hash, k.status, k.response
           FROM event_idempotency_keys k
           JOIN UNNEST($1::uuid[], $2::text[]) AS w(tenant_id, key)
             ON k.tenant_id = w.tenant_id AND k.key = w.key
          WHERE k.created_at >= NOW() - make_interval(hours => $3)",
    )
    .bind(column(keys, |k| k.0.0))
    .bind(column(keys, |k| k.1))
    .bind(TTL_HOURS)
    .fetch_all(pool)
    .await?)
}

/// Deletes keys older than [`TTL_HOURS`], `batch` per statement, oldest
/// first, until a statement finds fewer or `go_on` says stop; returns how
/// many.
pub async fn prune(pool: &PgPool, batch: i64, go_on: impl Fn() -> bool) -> Result<u64> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM event_idempotency_keys WHERE (tenant_id, key) IN (
                SELECT tenant_id, key FROM event_idempotency_keys
                 WHERE created_at < NOW() - make_interval(hours => $1)
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(TTL_HOURS)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected();
        total += done;
        if done < batch as u64 || !go_on() {
            return Ok(total);
        }
    }
}
