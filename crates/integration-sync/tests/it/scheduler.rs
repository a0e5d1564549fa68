//! The sync scheduler end to end: integrations' `sync_frequency` set through
//! integration-manager's API (its binary), jobs created by integration-sync
//! replicas (one holding the scheduler's lock) and run against the fake
//! HubSpot, whose manifest syncs three entities.

use chrono::{DateTime, Duration, Timelike, Utc};
use hub_domain::{Envelope, EventType};
use hub_testkit::amqp::{Amqp, Message};
use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// HubSpot's `sync.entities`.
const ENTITIES: [&str; 3] = ["companies", "contacts", "deals"];

struct World {
    env: TestEnv,
    m: Running,
    api: TenantApi,
    fake: FakeProvider,
}

async fn world() -> World {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let (tenant, key) = env.tenant(&m, "sched").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", 30);
    World { env, m, api, fake }
}

/// integration-sync's configuration with a scheduler tick of `tick_ms`.
fn sync_config(env: &TestEnv, tick_ms: u64) -> hub_platform::Config {
    let mut c = env.config();
    c.sync_scheduler_tick_ms = tick_ms;
    c
}

impl World {
    /// A connected HubSpot integration of `api`'s tenant in `environment`,
    /// created with `frequency`; returns its body.
    async fn integration(&self, api: &TenantApi, environment: &str, frequency: &str) -> Value {
        let created = api
            .post(
                "/api/v1/integrations",
                json!({"provider_code": "HUBSPOT", "name": format!("crm {environment}"),
                       "environment": environment, "config": self.fake.config(),
                       "credentials": {"access_token": DEFAULT_TOKEN},
                       "sync_frequency": frequency}),
            )
            .await;
        let created = created.ok(201).clone();
        let id = created["id"].as_str().unwrap();
        api.post_empty(&format!("/api/v1/integrations/{id}/enable"))
            .await
            .ok(200);
        created
    }

    /// A manual job of `integration`'s `entity` due tomorrow; returns its id.
    async fn future_job(&self, integration: &str, entity: &str) -> String {
        let later = (Utc::now() + Duration::days(1)).to_rfc3339();
        let created = self
            .api
            .post(
                "/api/v1/sync-jobs",
                json!({"integration_id": integration, "job_type": "FULL_SYNC",
                       "entity_type": entity, "scheduled_at": later}),
            )
            .await;
        created.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// A contacts job of `integration`, created and cancelled.
    async fn cancelled_job(&self, integration: &str) -> String {
        let job = self.future_job(integration, "contacts").await;
        let cancelled = self
            .api
            .post_empty(&format!("/api/v1/sync-jobs/{job}/cancel"))
            .await;
        assert_eq!(cancelled.ok(200)["status"], "CANCELLED");
        job
    }

    /// Runs `sql` with `job` as `$1` (to age what the API made).
    async fn exec(&self, sql: &'static str, job: &str) {
        sqlx::query(sql)
            .bind(job)
            .execute(self.env.pool())
            .await
            .unwrap();
    }

    /// Makes the integrations look as if their next sync time has passed.
    async fn make_due(&self, ids: &[&str]) {
        sqlx::query(
            "UPDATE integrations SET next_sync_at = now() - interval '1 second'
              WHERE id::text = ANY($1)",
        )
        .bind(ids)
        .execute(self.env.pool())
        .await
        .unwrap();
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

/// The jobs of an integration, through the API.
async fn jobs(api: &TenantApi, integration: &str) -> Vec<Value> {
    let list = api
        .get(&format!(
            "/api/v1/sync-jobs?integration_id={integration}&limit=100"
        ))
        .await;
    list.ok(200)["data"].as_array().unwrap().clone()
}

/// The jobs the scheduler created for an integration: entity → job types.
async fn scheduled(api: &TenantApi, integration: &str) -> BTreeMap<String, Vec<String>> {
    let mut by_entity: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for j in jobs(api, integration).await {
        if j["scheduled_by"] == "SCHEDULED" {
            by_entity
                .entry(j["entity_type"].as_str().unwrap().to_owned())
                .or_default()
                .push(j["job_type"].as_str().unwrap().to_owned());
        }
    }
    by_entity
}

async fn next_sync_at(api: &TenantApi, integration: &str) -> Option<DateTime<Utc>> {
    let it = api
        .get(&format!("/api/v1/integrations/{integration}"))
        .await;
    time(&it.ok(200)["next_sync_at"])
}

/// Asserts `at` is `after` + `delta`, give or take a few seconds.
fn about(at: Option<DateTime<Utc>>, after: DateTime<Utc>, delta: Duration, what: &str) {
    let at = at.unwrap_or_else(|| panic!("{what}: no next_sync_at"));
    let off = (at - (after + delta)).num_seconds().abs();
    assert!(off <= 20, "{what}: {at} is not about {}", after + delta);
}

/// The next 02:30 UTC strictly after `t`.
fn next_0230(t: DateTime<Utc>) -> DateTime<Utc> {
    let today = t
        .with_hour(2)
        .and_then(|d| d.with_minute(30))
        .and_then(|d| d.with_second(0))
        .and_then(|d| d.with_nanosecond(0))
        .unwrap();
    if today > t {
        today
    } else {
        today + Duration::days(1)
    }
}

/// The pid of the session holding the scheduler's advisory lock, if any.
async fn lock_holder(env: &TestEnv) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND objsubid = 1
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND (classid::bigint << 32 | objid::bigint) = $1",
    )
    .bind(hub_storage::schedule::SCHEDULER_LOCK)
    .fetch_optional(env.pool())
    .await
    .unwrap()
}

fn count(messages: &[Message], kind: &str) -> usize {
    messages.iter().filter(|m| m.routing_key == kind).count()
}

#[tokio::test]
async fn three_replicas_create_each_due_job_once_and_advance_next_sync_at() {
    let w = world().await;
    let amqp = Amqp::connect().await;
    let routed = amqp
        .tap(&format!("{}hub.routed", w.env.prefix), "integration.#")
        .await;
    let (other, key) = w.env.tenant(&w.m, "other").await;
    let other = TenantApi::new(&w.env, &w.m, &other, &key);

    let set_at = Utc::now();
    let hourly = w.integration(&w.api, "PRODUCTION", "hourly").await;
    let cron = w.integration(&w.api, "SANDBOX", "30 2 * * *").await;
    let realtime = w.integration(&w.api, "TEST", "REALTIME").await;
    let manual = w.integration(&other, "PRODUCTION", "MANUAL").await;
    // Setting the frequency sets the next sync.
    assert_eq!(cron["sync_frequency"], "30 2 * * *", "stored as sent");
    about(
        time(&hourly["next_sync_at"]),
        set_at,
        Duration::hours(1),
        "HOURLY",
    );
    about(
        time(&realtime["next_sync_at"]),
        set_at,
        Duration::minutes(1),
        "REALTIME",
    );
    let cron_next = time(&cron["next_sync_at"]).unwrap();
    assert!(
        [next_0230(set_at), next_0230(Utc::now())].contains(&cron_next),
        "{cron_next}"
    );
    assert!(
        manual["next_sync_at"].is_null(),
        "MANUAL is never scheduled"
    );

    // The hourly one's contacts already have a job pending: skipped.
    w.future_job(id(&hourly), "contacts").await;

    // Time passes: all four look due, MANUAL too (as if its schedule were
    // stale).
    w.make_due(&[id(&hourly), id(&cron), id(&realtime), id(&manual)])
        .await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            w.env
                .start(integration_sync::build, sync_config(&w.env, 100))
                .await,
        );
    }
    let all: BTreeMap<String, Vec<String>> = ENTITIES
        .iter()
        .map(|e| ((*e).to_owned(), vec!["FULL_SYNC".to_owned()]))
        .collect();
    eventually(30, "each due integration's jobs were created", || async {
        let done = scheduled(&w.api, id(&cron)).await.len() == 3
            && scheduled(&w.api, id(&realtime)).await.len() == 3
            && scheduled(&w.api, id(&hourly)).await.len() == 2;
        done.then_some(())
    })
    .await;
    let scheduled_at = Utc::now();
    // Many ticks of three replicas later, still once each.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(scheduled(&w.api, id(&cron)).await, all);
    assert_eq!(scheduled(&w.api, id(&realtime)).await, all);
    let mut without_contacts = all.clone();
    without_contacts.remove("contacts");
    assert_eq!(scheduled(&w.api, id(&hourly)).await, without_contacts);
    assert_eq!(jobs(&other, id(&manual)).await.len(), 0, "MANUAL: no job");

    // The next sync moved on from the run.
    about(
        next_sync_at(&w.api, id(&hourly)).await,
        scheduled_at,
        Duration::hours(1),
        "HOURLY after its run",
    );
    about(
        next_sync_at(&w.api, id(&realtime)).await,
        scheduled_at,
        Duration::minutes(1),
        "REALTIME after its run",
    );
    let cron_next = next_sync_at(&w.api, id(&cron)).await.unwrap();
    assert_eq!(cron_next, next_0230(scheduled_at), "the next 02:30 UTC");
    assert_eq!(next_sync_at(&other, id(&manual)).await, None);

    // One event per job; each tick once across the three replicas.
    let mut seen = Vec::new();
    amqp.drain_until(
        &routed,
        &mut seen,
        20,
        "the scheduled jobs' events and the ticks",
        |got| {
            got.iter()
                .filter(|m| {
                    m.routing_key == "integration.sync.scheduled"
                        && m.body["data"]["scheduled_by"] == "SCHEDULED"
                })
                .count()
                == 8
                && count(got, "integration.sync.check-due") >= 1
                && count(got, "integration.token.check-expiring") >= 1
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    seen.extend(amqp.drain_messages(&routed).await);
    assert_eq!(count(&seen, "integration.sync.check-due"), 1);
    assert_eq!(count(&seen, "integration.token.check-expiring"), 1);
    let tick = seen
        .iter()
        .find(|m| m.routing_key == "integration.sync.check-due")
        .unwrap();
    assert!(
        tick.body["tenantid"].is_null(),
        "a platform tick: {}",
        tick.body
    );
    let events = seen
        .iter()
        .filter(|m| {
            m.routing_key == "integration.sync.scheduled"
                && m.body["data"]["scheduled_by"] == "SCHEDULED"
        })
        .count();
    assert_eq!(events, 8, "one integration.sync.scheduled per job");

    // Once its FULL_SYNCs completed (their watermarks kept), REALTIME's next
    // run is INCREMENTAL.
    eventually(60, "REALTIME's first jobs completed", || async {
        let done = jobs(&w.api, id(&realtime))
            .await
            .iter()
            .all(|j| j["status"] == "COMPLETED");
        done.then_some(())
    })
    .await;
    w.make_due(&[id(&realtime)]).await;
    eventually(30, "REALTIME's second run was scheduled", || async {
        let s = scheduled(&w.api, id(&realtime)).await;
        s.values().all(|v| v.len() == 2).then_some(())
    })
    .await;
    for (entity, types) in scheduled(&w.api, id(&realtime)).await {
        assert_eq!(types[0], "INCREMENTAL", "{entity}: newest first");
    }
    for r in replicas {
        r.stop().await;
    }
}

#[tokio::test]
async fn stopping_the_replica_holding_the_lock_lets_another_take_over() {
    let w = world().await;
    let it = w.integration(&w.api, "PRODUCTION", "REALTIME").await;
    let first = w
        .env
        .start(integration_sync::build, sync_config(&w.env, 100))
        .await;
    let holder = eventually(15, "the first replica took the lock", || {
        lock_holder(&w.env)
    })
    .await;
    let second = w
        .env
        .start(integration_sync::build, sync_config(&w.env, 100))
        .await;
    let third = w
        .env
        .start(integration_sync::build, sync_config(&w.env, 100))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(lock_holder(&w.env).await, Some(holder), "one holder");

    first.stop().await;
    let stopped = std::time::Instant::now();
    let next = eventually(10, "another replica took the lock", || async {
        lock_holder(&w.env).await.filter(|p| *p != holder)
    })
    .await;
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(3),
        "taken over in {:?}",
        stopped.elapsed()
    );
    assert_ne!(next, holder);
    // And it schedules.
    w.make_due(&[id(&it)]).await;
    eventually(
        20,
        "the new holder scheduled the due integration",
        || async { (scheduled(&w.api, id(&it)).await.len() == ENTITIES.len()).then_some(()) },
    )
    .await;
    second.stop().await;
    third.stop().await;
}

#[tokio::test]
async fn prune_removes_old_finished_jobs_and_keeps_recent_and_running_ones() {
    let w = world().await;
    let it = w.integration(&w.api, "PRODUCTION", "MANUAL").await;
    let old_a = w.cancelled_job(id(&it)).await;
    let old_b = w.cancelled_job(id(&it)).await;
    let recent = w.cancelled_job(id(&it)).await;
    let running = w.future_job(id(&it), "contacts").await;
    // Two ended 31 days ago (one COMPLETED, with an error and a
    // before-image kept); the recent one ended now; one has been running
    // for 40 days.
    for job in [&old_a, &old_b] {
        w.exec(
            "UPDATE sync_jobs SET completed_at = now() - interval '31 days' WHERE id = $1::uuid",
            job,
        )
        .await;
    }
    w.exec(
        "UPDATE sync_jobs SET status = 'COMPLETED' WHERE id = $1::uuid",
        &old_b,
    )
    .await;
    w.exec(
        "INSERT INTO sync_job_items (job_id, external_id, outcome, page, error)
         VALUES ($1::uuid, 'c-1', 'ERROR', 1, '{}'), ($1::uuid, 'c-2', 'UPDATED', 1, NULL)",
        &old_b,
    )
    .await;
    w.exec(
        "UPDATE sync_jobs SET status = 'RUNNING', lease_owner = 'elsewhere',
                lease_until = now() + interval '1 day', created_at = now() - interval '40 days',
                started_at = now() - interval '40 days', scheduled_at = now() - interval '40 days'
          WHERE id = $1::uuid",
        &running,
    )
    .await;

    let s = w
        .env
        .start(integration_sync::build, sync_config(&w.env, 100))
        .await;
    eventually(20, "the old finished jobs were pruned", || async {
        let ids: Vec<String> = jobs(&w.api, id(&it))
            .await
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;
    w.api
        .get(&format!("/api/v1/sync-jobs/{old_a}"))
        .await
        .problem(404, "not_found");
    w.api
        .get(&format!("/api/v1/sync-jobs/{old_b}"))
        .await
        .problem(404, "not_found");
    let kept = w.api.get(&format!("/api/v1/sync-jobs/{recent}")).await;
    assert_eq!(kept.ok(200)["status"], "CANCELLED");
    let kept = w.api.get(&format!("/api/v1/sync-jobs/{running}")).await;
    assert_eq!(kept.ok(200)["status"], "RUNNING");
    let items: i64 = w
        .env
        .scalar(
            "SELECT count(*) FROM sync_job_items WHERE job_id = $1::uuid",
            old_b.clone(),
        )
        .await;
    assert_eq!(items, 0, "the items went with their job");
    s.stop().await;
}

#[tokio::test]
async fn a_check_due_event_runs_the_due_check_at_once() {
    let w = world().await;
    let it = w.integration(&w.api, "PRODUCTION", "HOURLY").await;
    // The ticks were just emitted (by an earlier replica, say): none is due
    // from the replica below, whose own tick is ten minutes.
    sqlx::query(
        "INSERT INTO scheduler_ticks (name, last_at)
         VALUES ('integration.sync.check-due', now()), ('integration.token.check-expiring', now())",
    )
    .execute(w.env.pool())
    .await
    .unwrap();
    let s = w
        .env
        .start(integration_sync::build, sync_config(&w.env, 600_000))
        .await;
    // The replica's first tick has looked (nothing was due then).
    eventually(15, "the replica holds the lock", || lock_holder(&w.env)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    w.make_due(&[id(&it)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        scheduled(&w.api, id(&it)).await.is_empty(),
        "no tick ran since it became due"
    );

    let amqp = Amqp::connect().await;
    let tick = Envelope::new(
        "scheduler",
        EventType::parse("integration.sync.check-due").unwrap(),
        None,
        json!({}),
    );
    amqp.publish(
        &format!("{}hub.events", w.env.prefix),
        "integration.sync.check-due",
        &serde_json::to_vec(&tick).unwrap(),
        Some(&tick.id.to_string()),
    )
    .await;
    eventually(
        15,
        "the check-due event scheduled the due integration",
        || async { (scheduled(&w.api, id(&it)).await.len() == ENTITIES.len()).then_some(()) },
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_bad_cron_expression_is_a_422_naming_the_field_at_the_manager() {
    let w = world().await;
    let bad = w
        .api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "crm", "config": w.fake.config(),
                   "sync_frequency": "61 * * * *"}),
        )
        .await;
    let p = bad.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "sync_frequency", "{p}");
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("cron expression") && message.contains("the cron parser says: "),
        "{message}"
    );
    let it = w.integration(&w.api, "PRODUCTION", "MANUAL").await;
    let path = format!("/api/v1/integrations/{}", id(&it));
    for bad in ["*/5 * * * * *", "0 0 30 2 *", "every hour"] {
        let r = w.api.put(&path, json!({"sync_frequency": bad})).await;
        let p = r.problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], "sync_frequency", "{bad}: {p}");
    }
    assert!(next_sync_at(&w.api, id(&it)).await.is_none(), "unchanged");
    // A good one sets the next run; MANUAL clears it.
    let set_at = Utc::now();
    let r = w
        .api
        .put(&path, json!({"sync_frequency": "*/10 * * * *"}))
        .await;
    let next = time(&r.ok(200)["next_sync_at"]).unwrap();
    assert!(
        next > set_at && next <= set_at + Duration::minutes(10),
        "{next}"
    );
    assert_eq!(next.minute() % 10, 0);
    let r = w.api.put(&path, json!({"sync_frequency": "manual"})).await;
    assert!(r.ok(200)["next_sync_at"].is_null());
    assert_eq!(r.ok(200)["sync_frequency"], "MANUAL");
}
