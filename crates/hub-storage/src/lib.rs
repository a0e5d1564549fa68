//! Postgres access for the Integration Hub.
//!
//! This is the only crate that contains SQL. Rows are mapped to domain types
//! here, in one place per aggregate; domain types never derive sqlx traits.
//! Every tenant-owned query takes a [`TenantId`](hub_domain::TenantId) and
//! filters by it.
//!
//! A row the API shows is also its response body: it derives
//! `serde::Serialize` and `utoipa::ToSchema` (named after the API's body
//! with `#[schema(as = …)]`), with `#[serde(skip)]` on what the API never
//! shows (sealed secrets, owners, bookkeeping) and `#[serde(rename)]` where
//! the API's name differs. What a body computes (a secret's hint turned
//! into `{set, last4}`, a URL) is added by the service, not stored here.

pub mod api_logs;
pub mod audit;
pub mod console;
pub mod deliveries;
pub mod events;
pub mod export;
pub mod gateway;
pub mod idempotency;
pub mod inbound_events;
pub mod integrations;
pub mod oauth;
pub mod outbox;
pub mod processed;
pub mod providers;
pub mod schedule;
pub mod subscriptions;
pub mod sync;
pub mod sync_import;
pub mod tenants;
pub mod transformations;
pub mod wake;
pub mod webhook_endpoints;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The tenant id every tenant-owned query takes (re-exported for callers,
/// such as xtask, that depend on storage only).
pub use hub_domain::TenantId;
pub use sqlx::PgPool as Pool;
/// A transaction on the hub database.
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// A statement with its bound parameters (what a `bind_*` helper extends).
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A statement that takes parameters, whatever it returns (`sqlx::query`,
/// `query_as`, `query_scalar`), so that one helper binds a column list for
/// all of them.
pub(crate) trait Bind<'q>: Sized {
    /// Binds the next parameter.
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>;
}

impl<'q> Bind<'q> for Query<'q> {
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query::Query::bind(self, value)
    }
}

impl<'q, O> Bind<'q> for sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query::QueryAs::bind(self, value)
    }
}

impl<'q, O> Bind<'q>
    for sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
{
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query::QueryScalar::bind(self, value)
    }
}

/// `$first, $first + 1, …`: the placeholders of `n` parameters.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT INTO {table} ({head}, {settings}) VALUES ({values}, …)`: the
/// `head` columns with their `values` as given, then the `settings` bound
/// from `$first` on.
pub(crate) fn insert_sql(
    table: &str,
    head: &str,
    values: &str,
    settings: &[&str],
    first: usize,
) -> String {
    format!(
        "INSERT INTO {table} ({head}, {}) VALUES ({values}, {})",
        settings.join(", "),
        placeholders(first, settings.len())
    )
}

/// `UPDATE {table} SET {set}, updated_at = NOW(), {settings} WHERE
/// tenant_id = $1 AND id = $2 {and}`: the tenant's row, with `set` as
/// given and the `settings` bound from `$first` on.
pub(crate) fn update_sql(
    table: &str,
    set: &str,
    settings: &[&str],
    first: usize,
    and: &str,
) -> String {
    let settings: Vec<String> = settings
        .iter()
        .zip(first..)
        .map(|(c, i)| format!("{c} = ${i}"))
        .collect();
    format!(
        "UPDATE {table} SET {set}, updated_at = NOW(), {} WHERE tenant_id = $1 AND id = $2 {and}",
        settings.join(", ")
    )
}

/// One column of `rows`, to bind as an array (for `UNNEST`).
pub(crate) fn column<'a, T, U>(rows: &'a [T], f: impl FnMut(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// Reads the row a tenant-owned statement finds by `$1` (the tenant) and
/// `$2` (the id); `sql` is static text (column lists and conditions, never
/// input).
pub(crate) async fn fetch_owned<'c, T, E>(
    conn: E,
    sql: String,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<Option<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    E: sqlx::PgExecutor<'c>,
{
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Sends a notification on `channel` when `tx` commits (wakes the workers
/// that LISTEN on it).
pub(crate) async fn notify<'c, E: sqlx::PgExecutor<'c>>(conn: E, channel: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// The migrations of `migrations/`, embedded in every binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint was violated (the constraint name is kept so
    /// callers can say which field clashed).
    #[error("conflict on {constraint}")]
    Conflict {
        /// The violated constraint.
        constraint: String,
    },
    /// A referenced row does not exist (foreign key violation).
    #[error("referenced row missing ({constraint})")]
    MissingReference {
        /// The violated constraint.
        constraint: String,
    },
    /// The database could not be reached or the connection broke: worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl StorageError {
    /// Whether retrying later may succeed (the database was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                match db.code().as_deref() {
                    Some("23505") => StorageError::Conflict { constraint },
                    Some("23503") => StorageError::MissingReference { constraint },
                    // admin_shutdown, cannot_connect_now, too_many_connections,
                    // and deadlock / serialization failures: retrying succeeds.
                    Some("57P01" | "57P02" | "57P03" | "53300" | "40P01" | "40001") => {
                        StorageError::Unavailable(e)
                    }
                    _ => StorageError::Other(e),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StorageError::Unavailable(e),
            _ => StorageError::Other(e),
        }
    }
}

/// Result of the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Maximum connections of this process.
    pub max_connections: u32,
    /// How long a caller waits for a connection before giving up.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A lazily connecting pool: building it never fails because Postgres is down,
/// so a service can start, report not-ready, and recover by itself.
pub fn pool(database_url: &str, settings: &PoolSettings) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(StorageError::Other)?
        .application_name("integration-hub");
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .connect_lazy_with(options))
}

/// Applies pending migrations. Safe when several replicas start at once: the
/// migrator holds a Postgres advisory lock while it runs.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// The versions of the embedded migrations this database has not applied
/// (successfully) yet, oldest first; all of them on a database never migrated.
pub async fn pending_migrations(pool: &PgPool) -> Result<Vec<i64>> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let applied: Vec<i64> = if table_exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect())
}

/// Vacuums and analyzes the whole database (maintenance for tools such as
/// the benchmarks, on servers that run without autovacuum).
pub async fn vacuum_analyze(pool: &PgPool) -> Result<()> {
    sqlx::query("VACUUM (ANALYZE)").execute(pool).await?;
    Ok(())
}

/// Writes every dirty buffer to disk and syncs the files changed since the
/// last checkpoint (`CHECKPOINT`; needs a superuser or `pg_checkpoint`).
/// For tools such as the benchmarks: a database just created and migrated
/// leaves hundreds of new files for the next checkpoint to sync, which
/// stalls commits for a fraction of a second while a measurement runs.
pub async fn checkpoint(pool: &PgPool) -> Result<()> {
    sqlx::query("CHECKPOINT").execute(pool).await?;
    Ok(())
}

/// How far the server's WAL has come, in bytes (`pg_current_wal_lsn`). Two
/// readings give the WAL written in between, by every database of the
/// server. For tools such as the benchmarks.
pub async fn wal_position(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
            .fetch_one(pool)
            .await?,
    )
}

/// WAL segment files Postgres has ready beyond the one it is writing, and
/// the most it keeps (`max_wal_size` in segments). Needs a superuser or
/// `pg_monitor` (`pg_ls_waldir`). For tools such as the benchmarks: see
/// [`recycle_wal_segments`].
pub async fn wal_segments_ahead(pool: &PgPool) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM pg_ls_waldir()
                  WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn())),
                (SELECT setting::int8 * 1048576 FROM pg_settings WHERE name = 'max_wal_size')
                  / (SELECT setting::int8 FROM pg_settings WHERE name = 'wal_segment_size')",
    )
    .fetch_one(pool)
    .await?)
}

/// Moves the WAL on to a new segment file `n` times, then checkpoints, so
/// that Postgres recycles the files passed as segments to come (as many as
/// `max_wal_size` allows). A server that has been running has such files;
/// a fresh one creates each segment when the WAL first reaches it, writing
/// its 16 MB of zeros and syncing them while every commit waits (tens to
/// hundreds of milliseconds, every 16 MB of WAL). Calls `progress` after
/// each switch. Needs a superuser (`pg_switch_wal`, `CHECKPOINT`). For tools
/// such as the benchmarks.
pub async fn recycle_wal_segments(pool: &PgPool, n: i64, progress: impl Fn(i64)) -> Result<()> {
    let mut conn = pool.acquire().await?;
    for i in 0..n {
        // A switch needs something written in the segment it leaves.
        sqlx::query("SELECT pg_logical_emit_message(false, 'hub-wal-recycle', '')")
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT pg_switch_wal()")
            .execute(&mut *conn)
            .await?;
        progress(i + 1);
    }
    sqlx::query("CHECKPOINT").execute(&mut *conn).await?;
    Ok(())
}

/// Makes the queue claims of `tx` read their queue in index order. A claim
/// (`ORDER BY <due> LIMIT n FOR UPDATE SKIP LOCKED`) is planned from table
/// statistics that lag behind a queue's size: on a queue thought small the
/// planner reads every pending row and sorts them (on disk, hundreds of
/// milliseconds per claim once tens of thousands are pending) instead of
/// reading the first `n` from the index that is already in that order.
async fn claim_in_index_order(tx: &mut Tx<'_>) -> Result<()> {
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Checks that the database answers (for `/ready`).
pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Rows of a table that pruning deletes once they are old: `finished` is an
/// SQL condition on the table's columns (static text, never input).
pub(crate) struct Aged {
    pub table: &'static str,
    /// The column saying when the row was made.
    pub time: &'static str,
    pub finished: String,
}

/// Deletes the rows made more than `days` ago that are finished, `batch` per
/// statement (short transactions), oldest first, walking the UUIDv7 primary
/// key ([`cutoff_id`]) and skipping rows others hold, until a statement finds
/// fewer than `batch` or `go_on` says stop; returns how many.
pub(crate) async fn prune_old(
    pool: &PgPool,
    aged: Aged,
    days: u32,
    batch: i64,
    go_on: impl Fn() -> bool,
) -> Result<u64> {
    let Aged {
        table,
        time,
        finished,
    } = aged;
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (
            SELECT id FROM {table}
             WHERE id < $3 AND {time} < NOW() - make_interval(days => $1) AND ({finished})
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)"
    );
    let mut total = 0;
    loop {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(days as i32)
            .bind(batch)
            .bind(cutoff_id(days))
            .execute(pool)
            .await?
            .rows_affected();
        total += done;
        if done < batch as u64 || !go_on() {
            return Ok(total);
        }
    }
}

/// The smallest time-ordered (UUIDv7) id made `days` ago: ids below it are
/// older, so pruning walks the primary key instead of another index.
pub(crate) fn cutoff_id(days: u32) -> uuid::Uuid {
    let secs = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
        .timestamp()
        .max(0) as u64;
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, 0);
    let mut bytes = *uuid::Uuid::new_v7(ts).as_bytes();
    // Keep the timestamp and version; zero the random part.
    bytes[6] &= 0xF0;
    bytes[7] = 0;
    bytes[8] = 0x80;
    for b in &mut bytes[9..] {
        *b = 0;
    }
    uuid::Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_write_their_own_columns_then_the_settings() {
        assert_eq!(
            insert_sql("t", "id, a", "$1, $1", &["b", "c"], 2),
            "INSERT INTO t (id, a, b, c) VALUES ($1, $1, $2, $3)"
        );
        assert_eq!(
            update_sql("t", "x = $3", &["b", "c"], 4, "AND d"),
            "UPDATE t SET x = $3, updated_at = NOW(), b = $4, c = $5 WHERE tenant_id = $1 AND id = $2 AND d"
        );
    }

    /// The columns an INSERT or UPDATE built by [`insert_sql`] or
    /// [`update_sql`] writes, sorted.
    fn written(sql: &str) -> Vec<String> {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let list = match sql.strip_prefix("INSERT INTO ") {
            Some(rest) => rest[rest.find('(').unwrap() + 1..rest.find(')').unwrap()].to_owned(),
            None => sql[sql.find(" SET ").unwrap() + 5..sql.find(" WHERE ").unwrap()].to_owned(),
        };
        let mut columns: Vec<String> = list
            .split(',')
            .map(|c| c.split('=').next().unwrap().trim().to_owned())
            .collect();
        columns.sort();
        columns
    }

    /// Each INSERT and UPDATE built from a settings list writes the columns
    /// it wrote when it listed them by hand.
    #[test]
    fn inserts_and_updates_write_the_columns_they_always_wrote() {
        let statements: [(&str, &str); 6] = [
        (
            &integrations::INSERT,
            "id, tenant_id, provider_id, name, description, config, environment, auth_type,
             api_key_encrypted, oauth_tokens, oauth_expires_at, basic_auth_encrypted, oauth_client_encrypted,
             oauth_refresh_expires_at, oauth_refreshed_at, oauth_retry_at, oauth_failures, oauth_tenants,
             credentials_hint, status,
             is_enabled, retry_enabled, max_retries, timeout_seconds, rate_limit_requests,
             rate_limit_window_seconds, sync_frequency, external_id, source_system,
             custom_fields, export_events, created_by_key, updated_by_key",
        ),
        (
            &integrations::UPDATE,
            "name, description, config, api_key_encrypted, oauth_tokens, oauth_expires_at,
             basic_auth_encrypted, oauth_client_encrypted, oauth_refresh_expires_at, oauth_refreshed_at,
             oauth_retry_at, oauth_failures, oauth_tenants, credentials_hint, status, is_enabled, retry_enabled, max_retries,
             timeout_seconds, rate_limit_requests, rate_limit_window_seconds, sync_frequency, external_id,
             source_system, custom_fields, export_events, last_successful_call,
             last_error, last_error_at, error_count, updated_by_key, updated_at",
        ),
        (
            &subscriptions::INSERT,
            "id, tenant_id, name, description, url, event_types, auth_type,
             auth_config, secret_key, secret_hint, auth_secret_encrypted, auth_secret_hint, content_type, headers,
             transform_template, retry_enabled, max_retries, retry_intervals, status, is_enabled,
             created_by_key, updated_by_key",
        ),
        (
            &subscriptions::UPDATE,
            "name, description, url, event_types, auth_type, auth_config, secret_key,
             previous_secret_key, previous_secret_expires_at, secret_hint, auth_secret_encrypted,
             auth_secret_hint, content_type, headers, transform_template, retry_enabled, max_retries,
             retry_intervals, status, is_enabled, disabled_reason, consecutive_failures, updated_by_key, updated_at",
        ),
        (
            &webhook_endpoints::INSERT,
            "id, tenant_id, integration_id, endpoint_path, secret_key, secret_hint,
             event_types, handler_type, transform_template, target_service, ip_whitelist, signature_header,
             signature_algorithm, signature_encoding, signature_prefix, timestamp_tolerance_seconds, status,
             is_enabled, created_by_key, updated_by_key",
        ),
        (
            &webhook_endpoints::UPDATE,
            "integration_id, endpoint_path, secret_key, secret_hint, secret_previous,
             secret_previous_expires_at, event_types, handler_type, transform_template, target_service,
             ip_whitelist, signature_header, signature_algorithm, signature_encoding, signature_prefix,
             timestamp_tolerance_seconds, status, is_enabled, updated_by_key, updated_at",
        ),
        ];
        for (sql, columns) in statements {
            let mut expected: Vec<String> =
                columns.split(',').map(|c| c.trim().to_owned()).collect();
            expected.sort();
            assert_eq!(written(sql), expected, "{sql}");
        }
        assert!(
            integrations::UPDATE
                .ends_with("WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
        );
    }
}
