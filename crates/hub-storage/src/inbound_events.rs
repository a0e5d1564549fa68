//! Received inbound webhook requests (`inbound_events`): written in batches
//! (group commit), deduplicated by a unique index, and processed as a
//! Postgres work queue (claimed with `FOR UPDATE SKIP LOCKED` and a lease).
//!
//! Statuses come from `hub_domain::status`: bound, or spliced into
//! statements built once ([`STORE`], pruning). The claim's `status =
//! 'PENDING'` stays a literal so that the planner matches it to the partial
//! index of due events (`WHERE status = 'PENDING'`); a parameter would not.

use crate::webhook_endpoints::{CounterDelta, add_deltas};
use crate::{Result, Tx, outbox};
use chrono::{DateTime, Utc};
use hub_domain::TenantId;
pub use hub_domain::inbound::processing::Outcome;
use hub_domain::status::InboundEventStatus as Status;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// The notification channel that wakes processing workers.
pub const CHANNEL: &str = "hub_inbound";

/// A verified request to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Id (UUIDv7, made by the caller).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Endpoint.
    pub endpoint_id: Uuid,
    /// `id:<provider id>` or `sha256:<body hash>`.
    pub dedupe_key: String,
    /// The provider's event id, if it sent one.
    pub provider_event_id: Option<String>,
    /// The provider's event type, if it said one.
    pub event_type: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request headers (JSON object of name → value).
    pub headers: serde_json::Value,
    /// Raw body.
    pub body: Vec<u8>,
    /// Client address.
    pub source_ip: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Its first processing attempt, made before the request is stored (a
    /// pure decision plus an outbox event, so it commits with the insert; a
    /// failed first attempt is stored PENDING with its retry due, for the
    /// worker).
    pub outcome: Outcome,
}

/// What storing one request resulted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The event's id: the request's own, or the first delivery's for a repeat.
    pub event_id: Uuid,
    /// Whether it repeats an event already received.
    pub duplicate: bool,
}

/// The statement that stores a batch of requests with their counter deltas
/// and outbox events; it returns the ids it inserted (the others repeat an
/// event already stored, and their outbox events are left out).
static STORE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH r AS (
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::jsonb[], $9::bytea[], $10::text[], $11::timestamptz[],
                 $12::text[], $13::int4[], $14::uuid[], $15::text[], $16::int8[])
               AS r(id, tenant_id, endpoint_id, dedupe_key, provider_event_id, event_type, method, headers,
                    body, source_ip, received_at, status, attempts, published, error, delay_ms)
         ), ins AS (
             INSERT INTO inbound_events (id, tenant_id, endpoint_id, dedupe_key, provider_event_id, event_type,
                 method, headers, body, source_ip, received_at, status, attempts, published_event_id, last_error,
                 next_attempt_at, processed_at)
             SELECT r.id, r.tenant_id, r.endpoint_id, r.dedupe_key, r.provider_event_id, r.event_type, r.method,
                    r.headers, r.body, r.source_ip, r.received_at, r.status, r.attempts, r.published, r.error,
                    CASE WHEN r.status = '{pending}' THEN NOW() + make_interval(secs => r.delay_ms::float8 / 1000) END,
                    CASE WHEN r.status IN ('{processed}', '{skipped}') THEN NOW() END
               FROM r
             ON CONFLICT (endpoint_id, dedupe_key) WHERE NOT duplicate DO NOTHING
             RETURNING id, endpoint_id, received_at, status
         ), d AS (
             INSERT INTO webhook_endpoint_counter_deltas (endpoint_id, received, processed, failed, last_received_at)
             SELECT endpoint_id, COUNT(*)::int4,
                    (COUNT(*) FILTER (WHERE status IN ('{processed}', '{skipped}')))::int4,
                    (COUNT(*) FILTER (WHERE status = '{failed}'))::int4, MAX(received_at)
               FROM ins GROUP BY endpoint_id
         ), u AS (
             SELECT e.id, e.tenant_id, e.event_type, e.envelope, e.audit_id
               FROM UNNEST({params}, $22::uuid[]) AS e(id, tenant_id, event_type, envelope, audit_id, owner)
              WHERE e.owner IN (SELECT id FROM ins)
         ), {outbox}
         SELECT id FROM ins",
        params = outbox::Prepared::params(17),
        outbox = outbox::insert_cte(23),
        pending = Status::Pending,
        processed = Status::Processed,
        skipped = Status::Skipped,
        failed = Status::Failed,
    )
});

/// Stores a batch of requests, each with the outbox events it publishes
/// (`events[i]` those of `batch[i]`, prepared by [`outbox::Prepared::of`]),
/// in one statement, so in one round trip and one commit: first deliveries
/// become events, their endpoints' counter deltas and outbox rows (leased
/// for `lease_secs` to the caller's relay when not `None`) are written with
/// them; repeats (`ON CONFLICT DO NOTHING` on the unique dedupe index, so
/// concurrent repeats store one event) get no outbox rows and are then
/// stored as duplicates of the event they repeat. Returns one [`Stored`] per
/// input, in order: the outbox rows of those that are not duplicates were
/// written, to publish once this commits.
pub async fn store_batch(
    conn: &mut sqlx::PgConnection,
    batch: &[&NewEvent],
    events: &[&outbox::Prepared],
    lease_secs: Option<u32>,
) -> Result<Vec<Stored>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    assert_eq!(batch.len(), events.len(), "one outbox part per request");
    let inserted = store(conn, batch, events, lease_secs).await?;
    if batch.iter().any(|e| {
        inserted.contains(&e.id)
            && matches!(e.outcome, Outcome::Retry { retry_in_ms, .. } if retry_in_ms <= 0)
    }) {
        crate::notify(&mut *conn, CHANNEL).await?;
    }
    let repeats: Vec<&NewEvent> = batch
        .iter()
        .copied()
        .filter(|e| !inserted.contains(&e.id))
        .collect();
    let mut original: HashMap<Uuid, Uuid> = HashMap::new();
    if !repeats.is_empty() {
        // The event each repeat repeats is committed: ON CONFLICT waited for
        // it, and this statement has a fresh snapshot.
        let cols = Columns::of(&repeats);
        let rows: Vec<(Uuid, Uuid)> = cols
            .bind(sqlx::query_as(
                "INSERT INTO inbound_events (id, tenant_id, endpoint_id, dedupe_key, provider_event_id, event_type,
                     method, headers, body, source_ip, received_at, status, duplicate, duplicate_of)
                 SELECT u.*, $12, true, o.id FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[],
                     $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::bytea[], $10::text[], $11::timestamptz[])
                     AS u(id, tenant_id, endpoint_id, dedupe_key, provider_event_id, event_type, method, headers,
                          body, source_ip, received_at)
                 JOIN inbound_events o ON o.endpoint_id = u.endpoint_id AND o.dedupe_key = u.dedupe_key
                                      AND NOT o.duplicate
                 RETURNING id, duplicate_of",
            ))
            .bind(Status::Duplicate.as_str())
            .fetch_all(&mut *conn)
            .await?;
        original = rows.into_iter().collect();
    }
    batch
        .iter()
        .map(|e| {
            if inserted.contains(&e.id) {
                Ok(Stored {
                    event_id: e.id,
                    duplicate: false,
                })
            } else {
                original
                    .get(&e.id)
                    .map(|o| Stored {
                        event_id: *o,
                        duplicate: true,
                    })
                    .ok_or_else(|| {
                        crate::StorageError::Other(sqlx::Error::Protocol(format!(
                            "inbound event {} neither inserted nor a duplicate",
                            e.id
                        )))
                    })
            }
        })
        .collect::<Result<Vec<_>>>()
}

/// Runs the store statement for `batch`; returns the ids it inserted.
async fn store(
    conn: &mut sqlx::PgConnection,
    batch: &[&NewEvent],
    events: &[&outbox::Prepared],
    lease_secs: Option<u32>,
) -> Result<std::collections::HashSet<Uuid>> {
    let cols = Columns::of(batch);
    let owners: Vec<Uuid> = batch
        .iter()
        .zip(events)
        .flat_map(|(e, p)| std::iter::repeat_n(e.id, p.len()))
        .collect();
    use crate::column;
    let q = cols
        .bind(sqlx::query_scalar(STORE.as_str()))
        .bind(column(batch, |e| e.outcome.status()))
        .bind(vec![1_i32; batch.len()])
        .bind(column(batch, |e| e.outcome.published()))
        .bind(column(batch, |e| e.outcome.error()))
        .bind(column(batch, |e| e.outcome.retry_in_ms()));
    Ok(outbox::Prepared::bind_all(events, q)
        .bind(&owners)
        .bind(lease_secs.map(f64::from))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect())
}

/// Runs the store statement on `conn` with nothing to store, so that the
/// connection has it prepared and its backend has the tables' metadata
/// cached before the first batch arrives (at start-up, instead of in the
/// first requests' latency).
pub async fn warm(conn: &mut sqlx::PgConnection) -> Result<()> {
    store(conn, &[], &[], None).await?;
    Ok(())
}

/// The columns of received requests, bound as arrays (borrowed).
struct Columns<'a> {
    ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    endpoints: Vec<Uuid>,
    keys: Vec<&'a str>,
    provider_ids: Vec<Option<&'a str>>,
    types: Vec<Option<&'a str>>,
    methods: Vec<&'a str>,
    headers: Vec<&'a serde_json::Value>,
    bodies: Vec<&'a [u8]>,
    ips: Vec<&'a str>,
    at: Vec<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn of(events: &[&'a NewEvent]) -> Self {
        use crate::column;
        Columns {
            ids: column(events, |e| e.id),
            tenants: column(events, |e| e.tenant_id),
            endpoints: column(events, |e| e.endpoint_id),
            keys: column(events, |e| e.dedupe_key.as_str()),
            provider_ids: column(events, |e| e.provider_event_id.as_deref()),
            types: column(events, |e| e.event_type.as_deref()),
            methods: column(events, |e| e.method.as_str()),
            headers: column(events, |e| &e.headers),
            bodies: column(events, |e| e.body.as_slice()),
            ips: column(events, |e| e.source_ip.as_str()),
            at: column(events, |e| e.received_at),
        }
    }

    /// Binds the columns as `$1` … `$11`.
    fn bind<'q, Q: crate::Bind<'q>>(&'q self, q: Q) -> Q {
        q.bind(&self.ids)
            .bind(&self.tenants)
            .bind(&self.endpoints)
            .bind(&self.keys)
            .bind(&self.provider_ids)
            .bind(&self.types)
            .bind(&self.methods)
            .bind(&self.headers)
            .bind(&self.bodies)
            .bind(&self.ips)
            .bind(&self.at)
    }
}

/// A claimed event with what processing needs of its endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Event id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: Uuid,
    /// Endpoint.
    pub endpoint_id: Uuid,
    /// Endpoint path.
    pub endpoint_path: String,
    /// Endpoint's integration.
    pub integration_id: Option<Uuid>,
    /// Provider event id.
    pub provider_event_id: Option<String>,
    /// Provider event type.
    pub event_type: Option<String>,
    /// Request headers.
    pub headers: serde_json::Value,
    /// Raw body.
    pub body: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Endpoint handler type.
    pub handler_type: String,
    /// Endpoint filter.
    pub event_types: serde_json::Value,
    /// Endpoint mapping.
    pub transform_template: Option<serde_json::Value>,
    /// Endpoint target.
    pub target_service: Option<String>,
}

/// Claims up to `limit` due events (PENDING, due, lease free or expired) for
/// `lease_secs`, counting the attempt. Rows another worker is claiming are
/// skipped.
pub async fn claim(pool: &PgPool, limit: i64, lease_secs: f64) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "WITH due AS (
             SELECT id FROM inbound_events
             WHERE status = 'PENDING' AND next_attempt_at <= NOW()
               AND (lease_until IS NULL OR lease_until < NOW())
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE inbound_events e SET lease_until = NOW() + make_interval(secs => $2), attempts = e.attempts + 1
         FROM due, webhook_endpoints w
         WHERE e.id = due.id AND w.id = e.endpoint_id
         RETURNING e.id, e.tenant_id, e.endpoint_id, w.endpoint_path, w.integration_id, e.provider_event_id,
                   e.event_type, e.headers, e.body, e.attempts, w.handler_type, w.event_types,
                   w.transform_template, w.target_service",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(pool)
    .await?)
}

/// Records outcomes of claimed events in `tx` (with their counter deltas).
/// Only rows still `PENDING` change (a replay or another worker may have
/// finished them meanwhile).
pub async fn complete(tx: &mut Tx<'_>, results: &[(Claimed, Outcome)]) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut delays = Vec::new();
    let mut errors: Vec<Option<&str>> = Vec::new();
    let mut published: Vec<Option<Uuid>> = Vec::new();
    let mut per_endpoint: HashMap<Uuid, CounterDelta> = HashMap::new();
    for (c, o) in results {
        ids.push(c.id);
        let d = per_endpoint
            .entry(c.endpoint_id)
            .or_insert_with(|| CounterDelta {
                endpoint_id: c.endpoint_id,
                ..Default::default()
            });
        statuses.push(o.status());
        delays.push(o.retry_in_ms());
        errors.push(o.error());
        published.push(o.published());
        match o {
            Outcome::Skipped | Outcome::Processed { .. } => d.processed += 1,
            Outcome::Failed { .. } => d.failed += 1,
            Outcome::Retry { .. } => {}
        }
    }
    sqlx::query(
        "UPDATE inbound_events e SET status = u.status, lease_until = NULL, last_error = u.error,
             published_event_id = COALESCE(u.published, e.published_event_id),
             next_attempt_at = CASE WHEN u.status = $6
                 THEN NOW() + make_interval(secs => u.delay_ms::float8 / 1000) ELSE NULL END,
             processed_at = CASE WHEN u.status IN ($7, $8) THEN NOW() ELSE e.processed_at END
         FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::uuid[])
             AS u(id, status, delay_ms, error, published)
         WHERE e.id = u.id AND e.status = $6",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&delays)
    .bind(&errors)
    .bind(&published)
    .bind(Status::Pending.as_str())
    .bind(Status::Processed.as_str())
    .bind(Status::Skipped.as_str())
    .execute(&mut **tx)
    .await?;
    let deltas: Vec<CounterDelta> = per_endpoint
        .into_values()
        .filter(|d| d.processed + d.failed > 0)
        .collect();
    add_deltas(tx, &deltas).await?;
    Ok(())
}

/// A received request.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[schema(as = EventBody)]
pub struct EventRow {
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
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: Status,
    /// Processing attempts.
    pub attempts: i32,
    /// Last processing error.
    pub last_error: Option<String>,
    /// Method.
    pub method: String,
    /// Request headers.
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    /// The body as received (UTF-8; invalid bytes replaced).
    #[serde(serialize_with = "lossy_utf8")]
    #[schema(value_type = String)]
    pub body: Vec<u8>,
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

/// Serializes raw bytes as text, invalid UTF-8 replaced.
fn lossy_utf8<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// A page of an endpoint's received requests after `after`, oldest first,
/// optionally of one `status`.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    endpoint: Uuid,
    status: Option<Status>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<EventRow>> {
    Ok(sqlx::query_as(
        "SELECT id, provider_event_id, dedupe_key, event_type, duplicate, duplicate_of, status, attempts,
                last_error, method, headers, body, source_ip, received_at, processed_at, next_attempt_at,
                published_event_id
         FROM inbound_events
         WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR status = $3)
           AND ($4::uuid IS NULL OR id > $4)
         ORDER BY id LIMIT $5",
    )
    .bind(tenant.0)
    .bind(endpoint)
    .bind(status.map(Status::as_str))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// Puts an endpoint's FAILED events (all, or those in `ids`) back in the
/// queue with fresh attempts; returns their ids.
pub async fn replay(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    endpoint: Uuid,
    ids: Option<&[Uuid]>,
) -> Result<Vec<Uuid>> {
    let replayed: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE inbound_events SET status = $4, attempts = 0, next_attempt_at = NOW(), lease_until = NULL
         WHERE tenant_id = $1 AND endpoint_id = $2 AND status = $5 AND ($3::uuid[] IS NULL OR id = ANY($3))
         RETURNING id",
    )
    .bind(tenant.0)
    .bind(endpoint)
    .bind(ids)
    .bind(Status::Pending.as_str())
    .bind(Status::Failed.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if !replayed.is_empty() {
        // Replayed rows were failed, not deducted from the counters: undo that.
        add_deltas(
            tx,
            &[CounterDelta {
                endpoint_id: endpoint,
                failed: -(replayed.len() as i32),
                ..Default::default()
            }],
        )
        .await?;
        crate::notify(&mut **tx, CHANNEL).await?;
    }
    Ok(replayed)
}

/// How many of `ids` are stored, and how many rows they are in total (the
/// benchmark's exactly-once check).
pub async fn count_ids(pool: &PgPool, ids: &[Uuid]) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events WHERE id = ANY($1)")
            .bind(ids)
            .fetch_one(pool)
            .await?,
    )
}

/// Rows stored for an endpoint: (events, duplicates).
pub async fn count_for_endpoint(pool: &PgPool, endpoint: Uuid) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE NOT duplicate) AS events, COUNT(*) FILTER (WHERE duplicate) AS dups
         FROM inbound_events WHERE endpoint_id = $1",
    )
    .bind(endpoint)
    .fetch_one(pool)
    .await?)
}

/// Deletes the received events older than `older_than_days` whose processing
/// is over (PROCESSED, SKIPPED, FAILED, and repeats), `batch` per statement
/// while `go_on`; events still PENDING are kept until they are processed or
/// fail. Returns how many.
pub async fn prune(
    pool: &PgPool,
    older_than_days: u32,
    batch: i64,
    go_on: impl Fn() -> bool,
) -> Result<u64> {
    crate::prune_old(
        pool,
        crate::Aged {
            table: "inbound_events",
            time: "received_at",
            finished: format!("duplicate OR status <> '{}'", Status::Pending),
        },
        older_than_days,
        batch,
        go_on,
    )
    .await
}
