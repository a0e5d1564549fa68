//! Every provider whose manifest has a `sync` section, synced for real:
//! jobs created through integration-manager's API (its binary), run by
//! integration-sync against the provider's fake holding 10,000+ records,
//! with the fake's own page sizes, incremental filters and an enforced
//! rate limit.
//!
//! Each test: a FULL_SYNC creates every record (counts, pages, mapped
//! fields on a sample); the provider changes a few records and an
//! INCREMENTAL updates exactly those (the watermark), leaving the others
//! untouched. Rate limits: the integration is limited to `L` requests a
//! second and the fake enforces `2 L` in its own windows (the gateway's
//! windows are aligned to the epoch, the fake's start at its first
//! request, so one of the fake's can overlap two of the gateway's): the
//! fake must never have had to refuse a call. The first page is answered
//! with the provider's throttling answer (429, Salesforce's 403
//! `REQUEST_LIMIT_EXCEEDED`, Alpha Vantage's 200 `Note`), which the
//! gateway retries: the job still completes.

use hub_testkit::fakes::{DEFAULT_TOKEN, FakeProvider, Kind, Mode, Selection};
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// A provider, its fake with `count` records of `object`, and an enabled
/// integration limited to `limit` requests a second.
struct World {
    env: TestEnv,
    _m: Running,
    _s: Running,
    api: TenantApi,
    fake: FakeProvider,
    integration: String,
    /// The fake's enforced limit per second.
    fake_limit: u32,
}

async fn world(kind: Kind, object: &str, count: u64, config: Value, limit: u32) -> World {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let s = env.start(integration_sync::build, env.config()).await;
    let (tenant, key) = env.tenant(&m, "sync").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    let fake = FakeProvider::start(kind).await;
    fake.set_count(object, count);
    let credentials = match kind {
        Kind::NewsApi | Kind::Samsara | Kind::AlphaVantage => json!({"api_key": DEFAULT_TOKEN}),
        _ => json!({"access_token": DEFAULT_TOKEN}),
    };
    let mut cfg = fake.config();
    for (k, v) in config.as_object().into_iter().flatten() {
        cfg[k] = v.clone();
    }
    let created = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": kind.code(), "name": "sync", "config": cfg,
                   "credentials": credentials, "max_retries": 5,
                   "rate_limit_requests": limit, "rate_limit_window_seconds": 1}),
        )
        .await;
    let integration = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.post_empty(&format!("/api/v1/integrations/{integration}/enable"))
        .await
        .ok(200);
    let fake_limit = 2 * limit;
    fake.set_rate_limit(fake_limit, Duration::from_secs(1));
    fake.clear_requests();
    World {
        env,
        _m: m,
        _s: s,
        api,
        fake,
        integration,
        fake_limit,
    }
}

impl World {
    /// Creates a job and waits for it to end; returns it.
    async fn run(&self, job_type: &str, entity: &str) -> Value {
        let created = self
            .api
            .post(
                "/api/v1/sync-jobs",
                json!({"integration_id": self.integration, "job_type": job_type, "entity_type": entity}),
            )
            .await;
        let id = created.ok(201)["id"].as_str().unwrap().to_owned();
        eventually(120, "the job ended", || async {
            let j = self.api.get(&format!("/api/v1/sync-jobs/{id}")).await;
            let j = j.ok(200).clone();
            (!["PENDING", "RUNNING"].contains(&j["status"].as_str().unwrap())).then_some(j)
        })
        .await
    }

    /// The mapped record held for `external_id`.
    async fn held(&self, external_id: &str) -> Value {
        sqlx::query_scalar(
            "SELECT data FROM sync_records WHERE integration_id = $1::uuid AND external_id = $2",
        )
        .bind(&self.integration)
        .bind(external_id)
        .fetch_one(self.env.pool())
        .await
        .unwrap_or_else(|e| panic!("no record {external_id}: {e}"))
    }

    /// Records held and not deleted.
    async fn live(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM sync_records WHERE integration_id = $1::uuid AND deleted_at IS NULL",
        )
        .bind(&self.integration)
        .fetch_one(self.env.pool())
        .await
        .unwrap()
    }

    /// The ids of records the database rewrote after `since`.
    async fn rewritten_since(&self, since: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let mut ids: Vec<String> = sqlx::query_scalar(
            "SELECT external_id FROM sync_records WHERE integration_id = $1::uuid AND updated_at > $2",
        )
        .bind(&self.integration)
        .bind(since)
        .fetch_all(self.env.pool())
        .await
        .unwrap();
        ids.sort();
        ids
    }

    /// The first page gets the provider's throttling answer.
    fn throttle_first_call(&self) {
        self.fake.set_mode_for(
            1,
            Mode::RateLimited {
                retry_after_secs: 1,
            },
        );
    }

    /// The throttled first call was sent again, and the enforced limit was
    /// never reached.
    fn check_rate_limits(&self) {
        let sent = self.fake.requests();
        assert!(sent.len() >= 2, "{} requests", sent.len());
        assert_eq!(
            (&sent[0].path, &sent[0].query),
            (&sent[1].path, &sent[1].query),
            "the throttled first page was retried"
        );
        assert_eq!(
            self.fake.throttled_count(),
            0,
            "the gateway kept under the provider's limit"
        );
        assert!(
            self.fake.max_in_any_window() <= self.fake_limit,
            "{} calls in one second (limit {})",
            self.fake.max_in_any_window(),
            self.fake_limit
        );
    }
}

fn counts(j: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| j[k].as_i64().unwrap_or(-1);
    (
        n("processed_records"),
        n("created_count"),
        n("updated_count"),
        n("unchanged_count"),
    )
}

/// FULL_SYNC of `entity`: every one of `count` records created in `pages`.
async fn full_sync(w: &World, entity: &str, count: i64, pages: i64) {
    w.throttle_first_call();
    let j = w.run("FULL_SYNC", entity).await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(counts(&j), (count, count, 0, 0), "{j}");
    assert_eq!(j["error_count"], 0, "{j}");
    assert_eq!(j["current_page"], pages, "{j}");
    assert_eq!(w.live().await, count);
    w.check_rate_limits();
}

/// INCREMENTAL of `entity` after `changed` changed at the provider: those
/// updated (or created when `new`), no other record rewritten.
async fn incremental(w: &World, entity: &str, changed: &[String], new: bool) -> Value {
    let before = chrono::Utc::now();
    let j = w.run("INCREMENTAL", entity).await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    let n = i64::try_from(changed.len()).unwrap();
    let (created, updated) = if new { (n, 0) } else { (0, n) };
    assert_eq!(
        (j["created_count"].as_i64(), j["updated_count"].as_i64()),
        (Some(created), Some(updated)),
        "{j}"
    );
    assert_eq!(j["error_count"], 0, "{j}");
    let mut want: Vec<String> = changed.to_vec();
    want.sort();
    assert_eq!(
        w.rewritten_since(before).await,
        want,
        "only the changed records were written"
    );
    j
}

#[tokio::test]
async fn salesforce_opportunities_sync_by_soql_next_records_url_and_system_modstamp() {
    let w = world(Kind::Salesforce, "Opportunity", 10_000, json!({}), 10).await;
    // 2,000 records a query page.
    full_sync(&w, "Opportunity", 10_000, 5).await;
    let sent = w.fake.requests();
    assert!(
        sent.iter()
            .any(|r| r.path.starts_with("/services/data/v60.0/query/01g")),
        "pages after the first follow nextRecordsUrl"
    );
    let first = w.fake.record_id("Opportunity", 1);
    let o = w.held(&first).await;
    assert_eq!(
        (&o["name"], &o["amount"], &o["stage"], &o["probability"]),
        (
            &json!("Lane contract 1"),
            &json!(1500.0),
            &json!("Qualification"),
            &json!(20)
        ),
        "{o}"
    );
    assert!(
        o["account_external_id"]
            .as_str()
            .unwrap()
            .starts_with("001"),
        "{o}"
    );

    let touched = w
        .fake
        .touch("Opportunity", Selection::Numbers((1..=10).collect()));
    w.fake.clear_requests();
    let j = incremental(&w, "Opportunity", &touched, false).await;
    assert_eq!(
        j["processed_records"], 10,
        "only the changed ones were read: {j}"
    );
    let q = w.fake.requests()[0].query_param("q").unwrap();
    assert!(q.contains("WHERE SystemModstamp > 2024-01-0"), "{q}");
    let o = w.held(&first).await;
    assert_eq!(o["amount"], json!(1600.0), "the change arrived: {o}");
}

#[tokio::test]
async fn zoho_deals_sync_by_page_more_records_and_if_modified_since() {
    let w = world(Kind::Zoho, "Deals", 10_000, json!({}), 20).await;
    // 200 a page.
    full_sync(&w, "Deals", 10_000, 50).await;
    let first = w.fake.record_id("Deals", 1);
    let d = w.held(&first).await;
    assert_eq!(
        (&d["name"], &d["amount"], &d["stage"]),
        (
            &json!("Lane contract 1"),
            &json!(1500.0),
            &json!("Needs Analysis")
        ),
        "{d}"
    );
    assert_eq!(d["source_updated_at"], "2024-01-01T08:01:00Z", "{d}");

    // Zoho's times are to the second: changed on a whole second, the
    // watermark is exact.
    let at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap();
    let touched = w
        .fake
        .touch_at("Deals", Selection::Numbers((1..=10).collect()), at);
    w.fake.clear_requests();
    let j = incremental(&w, "Deals", &touched, false).await;
    assert_eq!(j["processed_records"], 10, "{j}");
    assert!(
        w.fake.requests()[0].header("if-modified-since").is_some(),
        "incremental reads ask If-Modified-Since"
    );
    // Nothing changed since: Zoho answers 304, an empty read.
    let j = w.run("INCREMENTAL", "Deals").await;
    assert_eq!(j["status"], "COMPLETED", "{j}");
    assert_eq!(counts(&j), (0, 0, 0, 0), "{j}");
}

#[tokio::test]
async fn quickbooks_invoices_sync_by_query_startposition_and_last_updated_time() {
    let w = world(Kind::QuickBooks, "Invoice", 10_000, json!({}), 10).await;
    // MAXRESULTS 1000; no total told, so an empty eleventh page ends it.
    full_sync(&w, "Invoice", 10_000, 11).await;
    let first = w.fake.record_id("Invoice", 1);
    let i = w.held(&first).await;
    assert_eq!(
        (&i["number"], &i["total"], &i["lines"][0]["amount"]),
        (&json!("1001"), &json!(1323.19), &json!(1323.19)),
        "{i}"
    );
    assert_eq!(i["customer"]["external_id"], "1", "{i}");

    let touched = w
        .fake
        .touch("Invoice", Selection::Numbers((1..=10).collect()));
    w.fake.clear_requests();
    let j = incremental(&w, "Invoice", &touched, false).await;
    assert_eq!(j["processed_records"], 10, "{j}");
    let q = w.fake.requests()[0].query_param("query").unwrap();
    assert!(
        q.contains("where Metadata.LastUpdatedTime > '2024-01-0"),
        "{q}"
    );
    assert!(
        w.fake.requests()[0].path.starts_with(&format!(
            "/v3/company/{}/",
            hub_testkit::fakes::QUICKBOOKS_REALM_ID
        )),
        "the realm id comes from the config"
    );
}

#[tokio::test]
async fn xero_invoices_sync_by_page_and_if_modified_since() {
    let w = world(Kind::Xero, "Invoices", 10_000, json!({}), 5).await;
    // pageSize 1000; pagination.itemCount ends it.
    full_sync(&w, "Invoices", 10_000, 10).await;
    let first = w.fake.record_id("Invoices", 1);
    let i = w.held(&first).await;
    assert_eq!(
        (&i["number"], &i["status"], &i["issue_date"]),
        (&json!("INV-0001"), &json!("open"), &json!("2024-01-01")),
        "{i}"
    );
    assert_eq!(i["source_updated_at"], "2024-01-01T08:01:00Z", "{i}");

    let touched = w
        .fake
        .touch("Invoices", Selection::Numbers((1..=10).collect()));
    w.fake.clear_requests();
    let j = incremental(&w, "Invoices", &touched, false).await;
    assert_eq!(j["processed_records"], 10, "{j}");
    let sent = &w.fake.requests()[0];
    assert_eq!(
        sent.header("if-modified-since"),
        Some("2024-01-08T06:40:00Z"),
        "the watermark is the newest UpdatedDateUTC"
    );
    assert_eq!(
        w.held(&first).await["reference"],
        "Load 7001 rev 1",
        "the change arrived"
    );
}

#[tokio::test]
async fn samsara_vehicle_locations_sync_by_end_cursor() {
    let w = world(Kind::Samsara, "vehicles", 10_000, json!({}), 10).await;
    // 512 a page: 19 full ones and the rest.
    full_sync(&w, "vehicle_locations", 10_000, 20).await;
    let first = w.fake.record_id("vehicles", 1);
    let v = w.held(&first).await;
    assert_eq!(v["vehicle_name"], "Truck 01", "{v}");
    assert!(
        (v["latitude"].as_f64().unwrap() - 39.637).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(v["located_at"], "2024-01-01T08:01:00Z", "{v}");

    // Samsara has no "changed since" filter on this list: the listing is
    // read again and only what is newer than the watermark is kept.
    let touched = w
        .fake
        .touch("vehicles", Selection::Numbers((1..=10).collect()));
    let j = incremental(&w, "vehicle_locations", &touched, false).await;
    assert_eq!(j["unchanged_count"], 9_990, "{j}");
    let v = w.held(&first).await;
    assert!(
        (v["latitude"].as_f64().unwrap() - 39.647).abs() < 1e-9,
        "the new position arrived: {v}"
    );
}

#[tokio::test]
async fn keeptruckin_vehicle_locations_sync_by_page_no_until_the_total() {
    let w = world(
        Kind::KeepTruckin,
        "vehicle_locations",
        10_000,
        json!({}),
        40,
    )
    .await;
    // 100 a page; pagination.total ends it.
    full_sync(&w, "vehicle_locations", 10_000, 100).await;
    let first = w.fake.record_id("vehicle_locations", 1);
    let v = w.held(&first).await;
    assert_eq!(
        (
            &v["external_id"],
            &v["vehicle_name"],
            &v["driver_external_id"]
        ),
        (&json!("80001"), &json!("Truck 01"), &json!("120001")),
        "{v}"
    );

    let touched = w
        .fake
        .touch("vehicle_locations", Selection::Numbers((1..=10).collect()));
    let j = incremental(&w, "vehicle_locations", &touched, false).await;
    assert_eq!(j["unchanged_count"], 9_990, "{j}");
}

#[tokio::test]
async fn newsapi_articles_sync_by_page_and_from() {
    let w = world(
        Kind::NewsApi,
        "articles",
        10_000,
        json!({"query": "freight"}),
        40,
    )
    .await;
    // A paid plan: more than the developer plan's 100 results.
    w.fake.set_newsapi_developer_plan(false);
    // 100 a page; totalResults ends it.
    full_sync(&w, "articles", 10_000, 100).await;
    let a = w.held("https://news.example.com/articles/1").await;
    assert_eq!(
        (&a["title"], &a["published_at"]),
        (
            &json!("freight: spot rates move on lane 1"),
            &json!("2024-01-01T08:01:00Z")
        ),
        "{a}"
    );
    assert_eq!(
        w.fake.requests()[0].query_param("q").as_deref(),
        Some("freight"),
        "the search comes from the config"
    );

    // Ten articles published since: only they are new.
    let new: Vec<String> = (0..10)
        .map(|i| {
            w.fake
                .create("articles", json!({"author": format!("Desk {i}")}))
        })
        .collect();
    w.fake.clear_requests();
    let j = incremental(&w, "articles", &new, true).await;
    // `from` is inclusive: the newest article already held comes again.
    assert_eq!(
        (
            j["processed_records"].as_i64(),
            j["unchanged_count"].as_i64()
        ),
        (Some(11), Some(1)),
        "{j}"
    );
    assert_eq!(
        w.fake.requests()[0].query_param("from").as_deref(),
        Some("2024-01-08T06:40:00Z")
    );
}

#[tokio::test]
async fn alpha_vantage_daily_quotes_sync_from_the_series_keyed_by_date() {
    let w = world(
        Kind::AlphaVantage,
        "TIME_SERIES_DAILY",
        10_000,
        json!({"symbol": "IBM"}),
        5,
    )
    .await;
    // One answer holds the full series.
    full_sync(&w, "TIME_SERIES_DAILY", 10_000, 1).await;
    let q = w.held("2024-06-28").await;
    let bar = w.fake.record("TIME_SERIES_DAILY", "2024-06-28").unwrap();
    let close: f64 = bar["2024-06-28"]["4. close"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (&q["date"], q["close"].as_f64()),
        (&json!("2024-06-28"), Some(close)),
        "{q}"
    );
    assert!(q["volume"].is_i64(), "{q}");

    // Corrections to the latest ten days: the compact series (100 days)
    // brings them.
    let touched = w
        .fake
        .touch("TIME_SERIES_DAILY", Selection::Numbers((1..=10).collect()));
    w.fake.clear_requests();
    let j = incremental(&w, "TIME_SERIES_DAILY", &touched, false).await;
    assert_eq!(
        (
            j["processed_records"].as_i64(),
            j["unchanged_count"].as_i64()
        ),
        (Some(100), Some(90)),
        "{j}"
    );
    assert_eq!(
        w.fake.requests()[0].query_param("outputsize").as_deref(),
        Some("compact")
    );
    let q = w.held("2024-06-28").await;
    assert!(
        (q["close"].as_f64().unwrap() - (close + 0.25)).abs() < 1e-3,
        "the corrected close arrived: {q}"
    );
}
