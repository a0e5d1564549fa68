//! `cargo xtask bench console [--rows N] [--views N] [--connections LIST]`:
//! how fast the console's pages answer with a tenant of 10,000 deliveries
//! and every integration the API lets a tenant have (issue 30: under
//! 200 ms; one integration per provider and environment, so a tenant can
//! never hold 10,000 integrations).
//!
//! Builds integration-manager and webhook-dispatcher in release and starts
//! them against a fresh database (created, migrated; dropped afterwards)
//! and the local RabbitMQ. Through the public API it creates a tenant, an
//! API key, one integration per provider and environment, a subscription
//! to a local receiver and `--rows` (10,000) events (batches of 1,000),
//! and waits until every
//! delivery has arrived and is recorded as delivered.
//!
//! Then it signs in to the console as a browser does (the sign-in form
//! with its CSRF token, the session cookie) and views each page
//! `--views` times (50) at each connection count of `--connections`
//! (1,4,16), every connection its own signed-in session. A view is what a
//! browser does to show the page: the page itself, then the htmx request
//! (`HX-Request: true`) that loads its data, one after the other; both
//! must answer 200, and the data must hold what the page shows (a table
//! row). Timed per view, from the first request's start to the second's
//! last byte. The report gives p50/p95/max per page and connection count.
//! Verdict: every page's p95 with one connection under 200 ms.

use crate::bench::receiver::Receiver;
use crate::bench::report::{Latency, ms, thousands};
use crate::bench::send;
use crate::bench_gateway::{self as gw, ADMIN_TOKEN};
use crate::infra;
use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: cargo xtask bench console [--rows N] [--views N] [--connections 1,4,16]";
/// What a page may take with one connection (p95).
const TARGET: Duration = Duration::from_millis(200);

#[derive(Debug, PartialEq)]
struct Options {
    rows: usize,
    views: usize,
    connections: Vec<usize>,
}

/// Parses `console [options]` (see [`USAGE`]) and runs it.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    bench(&parse_args(args)?)
}

fn parse_args(args: &[&str]) -> Result<Options> {
    let Some((&"console", rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    let mut opts = Options {
        rows: 10_000,
        views: 50,
        connections: vec![1, 4, 16],
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            bail!("{flag} needs a value; {USAGE}");
        };
        match *flag {
            "--connections" => {
                opts.connections =
                    crate::bench::levels::parse_connections(value).map_err(anyhow::Error::msg)?;
                ensure!(
                    opts.connections.iter().all(|&c| c <= 64),
                    "--connections: at most 64 signed-in browsers; {USAGE}"
                );
            }
            "--rows" | "--views" => {
                let n: usize = value
                    .parse()
                    .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
                match *flag {
                    "--rows" if (1..=1_000_000).contains(&n) => opts.rows = n,
                    "--views" if (1..=100_000).contains(&n) => opts.views = n,
                    _ => bail!("{flag} {n} is out of its range; {USAGE}"),
                }
            }
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    Ok(opts)
}

fn bench(opts: &Options) -> Result<ExitCode> {
    let (base_url, rabbitmq_url, transport) = crate::bench::servers()?;
    let (manager_bin, dispatcher_bin) = build()?;
    let run_id = std::process::id();
    let logs = crate::target_dir()
        .join("bench")
        .join(format!("console-{run_id}"));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let database_url =
        crate::bench::with_database(&base_url, &format!("hub_bench_console_{run_id}"))?;
    let prefix = format!("benchconsole{run_id}.");
    let _cleanup = crate::bench::RunCleanup {
        database_url: database_url.clone(),
        rabbitmq_url: rabbitmq_url.clone(),
        prefix: prefix.clone(),
    };
    infra::create_database_and_migrate(&database_url)?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("RABBITMQ_URL", rabbitmq_url.as_str()),
        ("HUB_BUS_PREFIX", prefix.as_str()),
        ("INTEGRATION_ENCRYPTION_KEY", key.as_str()),
        // The receiver is plain http on loopback.
        ("HUB_ALLOW_INSECURE_URLS", "true"),
    ];
    let manager_log = logs.join("integration-manager.log");
    let mut manager = gw::start_service(&manager_bin, "the manager", &env, &manager_log)?;
    let dispatcher_log = logs.join("webhook-dispatcher.log");
    let dispatcher =
        gw::start_service(&dispatcher_bin, "webhook-dispatcher", &env, &dispatcher_log)?;
    let receiver = Receiver::start()?;
    ui::step(&format!(
        "console benchmark: a tenant with every integration the catalog allows and {} deliveries; database over {transport}",
        thousands(opts.rows as u64)
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let tenant = rt.block_on(Tenant::create(&client, &manager.base))?;
    let ids = rt.block_on(tenant.integrations(&client, &manager.base))?;
    let sub = rt.block_on(tenant.deliveries(
        &client,
        &manager.base,
        &dispatcher.base,
        &receiver.url(0, 0),
        opts.rows,
    ))?;
    ensure!(
        receiver.recorded.count(0) >= opts.rows as u64,
        "the receiver saw {} deliveries of {}",
        receiver.recorded.count(0),
        opts.rows
    );
    let pages = pages(&ids[ids.len() / 2], &sub);
    let mut rows = Vec::new();
    for &n in &opts.connections {
        ui::step(&format!(
            "{} views of each page with {n} signed-in browser{}",
            opts.views,
            if n == 1 { "" } else { "s" }
        ));
        let browsers = rt.block_on(sign_in_all(&client, &manager.base, &tenant, n))?;
        for page in &pages {
            let mut samples =
                rt.block_on(views(&client, &manager.base, &browsers, page, opts.views))?;
            let lat = Latency::of(&mut samples).context("no samples")?;
            ui::info(&format!(
                "{:<28} p50 {:>9}  p95 {:>9}  max {:>9}",
                page.name,
                ms(lat.p50),
                ms(lat.p95),
                ms(lat.max)
            ));
            rows.push((page.name, n, lat));
        }
        manager.process.check_alive("the manager", &manager_log)?;
    }
    drop(rt);
    drop(dispatcher);
    drop(manager);
    report(opts, ids.len(), &rows);
    ui::info(&format!("the services' output: {}", logs.display()));
    let slow: Vec<&str> = rows
        .iter()
        .filter(|(_, n, lat)| *n == 1 && lat.p95 >= TARGET)
        .map(|(name, _, _)| *name)
        .collect();
    if slow.is_empty() && opts.connections.contains(&1) {
        ui::step(&format!(
            "MET: every page's p95 with one browser is under {} ms",
            TARGET.as_millis()
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        ui::step(&format!(
            "NOT MET: p95 with one browser at or over {} ms: {}",
            TARGET.as_millis(),
            if slow.is_empty() {
                "(no run with one connection)".to_owned()
            } else {
                slow.join(", ")
            }
        ));
        Ok(ExitCode::from(1))
    }
}

/// Release builds of the manager and the dispatcher.
fn build() -> Result<(PathBuf, PathBuf)> {
    let started = Instant::now();
    ui::step("building integration-manager and webhook-dispatcher (release)");
    let mut cmd = crate::cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "integration-manager",
        "-p",
        "webhook-dispatcher",
        "--bins",
    ]);
    ui::run_checked(&mut cmd, "the release build failed (see the errors above)")?;
    ui::info(&format!("built in {}", ui::secs(started.elapsed())));
    let release = crate::target_dir().join("release");
    Ok((
        release.join("integration-manager"),
        release.join("webhook-dispatcher"),
    ))
}

/// The bench's tenant and its API key.
struct Tenant {
    id: String,
    key: String,
}

/// Sends `req`, which must answer 2xx: its JSON body.
async fn send_ok(what: &str, req: reqwest::RequestBuilder) -> Result<Value> {
    let (status, body) = send(req).await.with_context(|| what.to_owned())?;
    ensure!((200..300).contains(&status), "{what}: {status} {body}");
    Ok(body)
}

impl Tenant {
    async fn create(client: &reqwest::Client, base: &str) -> Result<Self> {
        let slug = format!("bench-console-{}", std::process::id());
        let tenant = send_ok(
            "creating the tenant",
            client
                .post(format!("{base}/api/v1/admin/tenants"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "Console bench", "slug": slug})),
        )
        .await?;
        let id = tenant["id"].as_str().context("tenant id")?.to_owned();
        let key = send_ok(
            "creating the API key",
            client
                .post(format!("{base}/api/v1/admin/tenants/{id}/api-keys"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"name": "bench"})),
        )
        .await?;
        let key = key["key"].as_str().context("api key")?.to_owned();
        Ok(Self { id, key })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(&self.key).header("x-tenant-id", &self.id)
    }

    /// Creates every integration the tenant may have: one per provider of
    /// the catalog and environment (the API allows no more; a provider whose
    /// config has required fields is skipped); their ids.
    async fn integrations(&self, client: &reqwest::Client, base: &str) -> Result<Vec<String>> {
        ui::step("creating one integration per provider and environment through the API");
        let started = Instant::now();
        let catalog = send_ok(
            "listing the providers",
            self.auth(client.get(format!("{base}/api/v1/integrations/providers?limit=200"))),
        )
        .await?;
        let mut ids = Vec::new();
        let mut skipped = 0;
        for p in catalog["data"].as_array().context("providers")? {
            let code = p["code"].as_str().context("provider code")?;
            for env in ["PRODUCTION", "SANDBOX", "TEST"] {
                let body = json!({
                    "provider_code": code, "environment": env, "config": {},
                    "name": format!("Customer account {code} {env}"),
                });
                let (status, created) = send(
                    self.auth(client.post(format!("{base}/api/v1/integrations")))
                        .json(&body),
                )
                .await?;
                match status {
                    201 => ids.push(created["id"].as_str().context("integration id")?.to_owned()),
                    422 => skipped += 1,
                    _ => bail!("creating an integration: {status} {created}"),
                }
            }
        }
        ensure!(!ids.is_empty(), "no integration could be created");
        ui::info(&format!(
            "{} integrations ({} provider/environment pairs need config and were skipped) in {}",
            ids.len(),
            skipped,
            ui::secs(started.elapsed())
        ));
        Ok(ids)
    }

    /// Subscribes `url` to `order.*`, sends `n` events in batches of 1,000
    /// and waits until the manager lists `n` delivered deliveries; the
    /// subscription's id.
    async fn deliveries(
        &self,
        client: &reqwest::Client,
        manager: &str,
        dispatcher: &str,
        url: &str,
        n: usize,
    ) -> Result<String> {
        let sub = send_ok(
            "creating the subscription",
            self.auth(client.post(format!("{manager}/api/v1/webhooks/subscriptions")))
                .json(&json!({"name": "bench", "url": url, "event_types": ["order.*"]})),
        )
        .await?;
        let sub = sub["id"].as_str().context("subscription id")?.to_owned();
        ui::step(&format!(
            "sending {} events in batches of 1,000 and waiting for their deliveries",
            thousands(n as u64)
        ));
        let started = Instant::now();
        for start in (0..n).step_by(1000) {
            let batch: Vec<Value> = (start..n.min(start + 1000))
                .map(|i| {
                    json!({"specversion": "1.0", "id": format!("bench-{i}"), "source": "/bench/console",
                           "type": "order.created", "data": {"order": i, "status": "created"}})
                })
                .collect();
            send_ok(
                "sending events",
                self.auth(client.post(format!("{dispatcher}/api/v1/events")))
                    .header("content-type", "application/cloudevents-batch+json")
                    .json(&batch),
            )
            .await?;
        }
        // Delivered ones, counted through the API's own paging.
        let mut dots = ui::Dots::new();
        loop {
            let mut delivered = 0;
            let mut cursor = String::new();
            loop {
                let page = send_ok(
                    "listing deliveries",
                    self.auth(client.get(format!(
                        "{manager}/api/v1/webhooks/subscriptions/{sub}/deliveries?status=DELIVERED&limit=100{cursor}"
                    ))),
                )
                .await?;
                delivered += page["data"].as_array().map_or(0, Vec::len);
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => break,
                }
            }
            if delivered >= n {
                dots.done(&format!(
                    "{} delivered in {}",
                    thousands(delivered as u64),
                    ui::secs(started.elapsed())
                ));
                return Ok(sub);
            }
            ensure!(
                started.elapsed() < Duration::from_secs(600),
                "only {delivered} of {n} deliveries were delivered after 10 minutes"
            );
            dots.tick(&format!("{} delivered", thousands(delivered as u64)));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// A signed-in browser: its session cookie.
struct Browser {
    cookie: String,
}

/// The `name=value` of a `Set-Cookie` named `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Signs in through the form, as a browser does: the form page sets the
/// pre-session cookie and holds the same CSRF token.
async fn sign_in(client: &reqwest::Client, base: &str, tenant: &Tenant) -> Result<Browser> {
    let form = client.get(format!("{base}/console/sign-in")).send().await?;
    let pre = set_cookie(&form, "hub_console_signin").context("no sign-in cookie")?;
    let html = form.text().await?;
    let token = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no CSRF token in the sign-in form")?;
    let res = client
        .post(format!("{base}/console/sign-in"))
        .header("cookie", pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("_csrf", token)
                .append_pair("tenant", &tenant.id)
                .append_pair("api_key", &tenant.key)
                .finish(),
        )
        .send()
        .await?;
    let cookie = set_cookie(&res, "hub_console")
        .with_context(|| format!("signing in answered {} without a session", res.status()))?;
    Ok(Browser { cookie })
}

async fn sign_in_all(
    client: &reqwest::Client,
    base: &str,
    tenant: &Tenant,
    n: usize,
) -> Result<Vec<Browser>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(sign_in(client, base, tenant).await?);
    }
    Ok(out)
}

/// One page of the console and what its data must hold.
struct Page {
    name: &'static str,
    path: String,
    /// Text the htmx answer must contain.
    expect: &'static str,
}

fn pages(integration: &str, sub: &str) -> Vec<Page> {
    let page = |name, path: String, expect| Page { name, path, expect };
    vec![
        page(
            "Integration List",
            "/console/integrations".into(),
            "Customer account",
        ),
        page(
            "Integration List, filtered",
            "/console/integrations?environment=SANDBOX".into(),
            "Customer account",
        ),
        page(
            "Integration Details",
            format!("/console/integrations/{integration}"),
            "Customer account",
        ),
        page(
            "Health Dashboard",
            "/console/health".into(),
            "Customer account",
        ),
        page(
            "Webhook Deliveries",
            format!("/console/deliveries?subscription={sub}"),
            "order.created",
        ),
        page(
            "Deliveries, failed only",
            format!("/console/deliveries?subscription={sub}&status=FAILED"),
            "No deliveries",
        ),
        page("Webhook Configuration", "/console/webhooks".into(), "bench"),
        page("Marketplace", "/console/marketplace".into(), "HubSpot"),
        page("API Logs", "/console/api-logs".into(), "<"),
        page("Sync Job History", "/console/sync-jobs".into(), "<"),
    ]
}

/// `views` views of `page`, spread over the browsers, each browser one
/// view at a time; each view's time.
async fn views(
    client: &reqwest::Client,
    base: &str,
    browsers: &[Browser],
    page: &Page,
    views: usize,
) -> Result<Vec<Duration>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for b in browsers {
        let (client, next, cookie) = (client.clone(), next.clone(), b.cookie.clone());
        let url = format!("{base}{}", page.path);
        let (name, expect) = (page.name, page.expect);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < views {
                let started = Instant::now();
                let shell = client.get(&url).header("cookie", &cookie).send().await?;
                ensure!(
                    shell.status() == 200,
                    "{name}: the page answered {}",
                    shell.status()
                );
                shell.bytes().await?;
                let data = client
                    .get(&url)
                    .header("cookie", &cookie)
                    .header("hx-request", "true")
                    .send()
                    .await?;
                ensure!(
                    data.status() == 200,
                    "{name}: its data answered {}",
                    data.status()
                );
                let text = data.text().await?;
                out.push(started.elapsed());
                ensure!(
                    text.contains(expect),
                    "{name}: its data does not show {expect:?}: {}",
                    text.chars().take(400).collect::<String>()
                );
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn report(opts: &Options, integrations: usize, rows: &[(&str, usize, Latency)]) {
    println!();
    println!(
        "console pages, {} integrations (all the API allows a tenant) and {} deliveries; a view = the page + its htmx data request",
        integrations,
        thousands(opts.rows as u64)
    );
    println!();
    println!("| page | browsers | p50 | p95 | max |");
    println!("|---|---|---|---|---|");
    for (name, n, lat) in rows {
        println!(
            "| {name} | {n} | {} | {} | {} |",
            ms(lat.p50),
            ms(lat.p95),
            ms(lat.max)
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        let opts = parse_args(&["console", "--rows", "500", "--connections", "1,8"]).unwrap();
        assert_eq!(opts.rows, 500);
        assert_eq!(opts.views, 50);
        assert_eq!(opts.connections, vec![1, 8]);
        assert!(parse_args(&["console", "--rows", "0"]).is_err());
        assert!(parse_args(&["console", "--connections", "65"]).is_err());
        assert!(parse_args(&["console", "--views"]).is_err());
        assert!(parse_args(&["sync"]).is_err());
    }
}
