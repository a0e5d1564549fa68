//! Local infrastructure: Postgres, RabbitMQ, docker-compose, databases.

use crate::ui;
use anyhow::{Context, Result, anyhow, bail};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

pub const DEFAULT_DATABASE_URL: &str =
    "postgres://postgres@127.0.0.1:5432/integration_hub?sslmode=disable";
pub const DEFAULT_RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_TEST_DATABASE_URL: &str =
    "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/// `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    env_or("DATABASE_URL", DEFAULT_DATABASE_URL)
}

/// `RABBITMQ_URL`, or the local default.
pub fn rabbitmq_url() -> String {
    env_or("RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
}

/// The variable's value if set and non-empty, else `default`.
pub fn env_or(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default.to_owned(),
    }
}

/// Host and port of a server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Endpoint {
    /// Parses `scheme://user:pass@host:port/...`; `None` when the URL names no TCP host
    /// (a Unix socket, say).
    pub fn parse(url: &str, var: &str, default_port: u16) -> Result<Option<Self>> {
        let parsed = url::Url::parse(url).with_context(|| format!("{var} is not a valid URL"))?;
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            host: host.to_owned(),
            port: parsed.port().unwrap_or(default_port),
        }))
    }

    /// Whether a TCP connection can be opened within a second.
    pub fn reachable(&self) -> bool {
        let Ok(addrs) = (self.host.as_str(), self.port).to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
    }

    /// Whether this is this machine (so xtask may start the server itself).
    pub fn is_local(&self) -> bool {
        self.host == "localhost" || self.host == "::1" || self.host.starts_with("127.")
    }

    /// Polls until reachable, printing dots; fails after `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration) -> Result<()> {
        let mut dots = ui::Dots::new();
        loop {
            if self.reachable() {
                dots.done("up");
                return Ok(());
            }
            if dots.elapsed() > timeout {
                dots.done("gave up");
                bail!(
                    "{what} did not come up on {self} within {}s",
                    timeout.as_secs()
                );
            }
            dots.tick(what);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// How a Postgres URL is reached: over TCP or a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTransport {
    Tcp(Endpoint),
    /// The socket file (`<directory>/.s.PGSQL.<port>`).
    Unix(PathBuf),
}

impl std::fmt::Display for PgTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(ep) => write!(f, "TCP {ep}"),
            Self::Unix(path) => write!(f, "Unix socket {}", path.display()),
        }
    }
}

/// How the services (sqlx) reach the Postgres of `url`. Read by sqlx
/// itself, because a URL says it in several ways that a plain URL parser
/// misreads: a percent-encoded directory as the host
/// (`postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres`), a `host=`
/// query parameter (`postgres:///postgres?host=/var/run/postgresql`), or no
/// host at all (then `PGHOST`, else the first of sqlx's usual socket
/// directories that has one, else `localhost`).
pub fn postgres_transport(url: &str, var: &str) -> Result<PgTransport> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("{var} is not a valid Postgres URL"))?;
    let socket_file = |dir: &Path| dir.join(format!(".s.PGSQL.{}", options.get_port()));
    let host = options.get_host();
    Ok(match options.get_socket() {
        Some(dir) => PgTransport::Unix(socket_file(dir)),
        None if host.starts_with('/') => PgTransport::Unix(socket_file(Path::new(host))),
        None => PgTransport::Tcp(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: options.get_port(),
        }),
    })
}

/// Makes sure Postgres answers where the URL points. Over TCP, starts (or
/// installs) a local server when it does not; a Unix socket is only probed.
pub fn ensure_postgres(url: &str, var: &str) -> Result<()> {
    let ep = match postgres_transport(url, var)? {
        PgTransport::Tcp(ep) => ep,
        PgTransport::Unix(path) => {
            ui::step(&format!(
                "checking Postgres at the Unix socket {}",
                path.display()
            ));
            if let Err(e) = std::os::unix::net::UnixStream::connect(&path) {
                bail!(
                    "Postgres is not reachable at the Unix socket {} ({e}): start it, or point {var} \
                     at a running server (`pg_lsclusters` shows the local clusters and their ports)",
                    path.display()
                );
            }
            ui::info("reachable");
            return Ok(());
        }
    };
    ui::step(&format!("checking Postgres at {ep}"));
    if ep.reachable() {
        ui::info("reachable");
        return Ok(());
    }
    if !ep.is_local() {
        bail!("Postgres at {ep} is not reachable: start it, or point {var} at a running server");
    }
    ui::info("not reachable; starting a local server");
    start_local_postgres(&ep)?;
    ep.wait("Postgres", Duration::from_secs(60))
        .map_err(|e| anyhow!("{e}; see `pg_lsclusters` and the logs in /var/log/postgresql/"))
}

fn start_local_postgres(ep: &Endpoint) -> Result<()> {
    let ctl = find_program("pg_ctlcluster");
    if let (Some(ctl), Some(version)) = (&ctl, main_cluster()) {
        return pg_start(ctl, &version, ep);
    }
    if !(is_root() && is_debian()) {
        let sudo = if is_root() { "" } else { "sudo " };
        bail!(
            "Postgres is not reachable at {ep} and no local cluster was found. Install and start it, \
             e.g. on Debian/Ubuntu:\n    {sudo}apt-get install -y postgresql && {sudo}pg_ctlcluster \
             --skip-systemctl-redirect <version> main start\nthen run this again"
        );
    }
    apt_install(&["postgresql"])?;
    let ctl = find_program("pg_ctlcluster")
        .context("pg_ctlcluster missing after installing postgresql")?;
    if main_cluster().is_none() {
        let version =
            installed_pg_version().context("no PostgreSQL version found in /usr/lib/postgresql")?;
        ui::run_checked(
            Command::new("pg_createcluster").args([&version, "main"]),
            "could not create the Postgres cluster",
        )?;
    }
    let version =
        main_cluster().context("no Postgres cluster in /etc/postgresql after installing")?;
    trust_local_tcp(&version)?;
    if ep.reachable() {
        // The package started it already: make it re-read pg_hba.conf.
        return ui::run_checked(
            Command::new(ctl).args(["--skip-systemctl-redirect", &version, "main", "reload"]),
            "could not reload Postgres",
        );
    }
    pg_start(&ctl, &version, ep)
}

fn pg_start(ctl: &Path, version: &str, ep: &Endpoint) -> Result<()> {
    let running = ui::succeeds(Command::new(ctl).args([
        "--skip-systemctl-redirect",
        version,
        "main",
        "status",
    ]));
    if running {
        bail!(
            "the local Postgres cluster {version}/main is running but nothing answers at {ep}: check the \
             host and port in the URL (`pg_lsclusters` shows the cluster's port)"
        );
    }
    let mut cmd = Command::new(ctl);
    cmd.args(["--skip-systemctl-redirect", version, "main", "start"]);
    ui::info(&format!("$ {}", ui::show(&cmd)));
    let status = cmd
        .status()
        .with_context(|| format!("could not run {}", ctl.display()))?;
    if !status.success() && !is_root() {
        bail!(
            "could not start Postgres; run:\n    sudo pg_ctlcluster --skip-systemctl-redirect {version} main start"
        );
    }
    // A failure as root may mean "already running"; waiting for the port tells.
    Ok(())
}

/// The newest version with a `main` cluster in /etc/postgresql.
fn main_cluster() -> Option<String> {
    newest_version_dir("/etc/postgresql", |dir| {
        dir.join("main/postgresql.conf").exists()
    })
}

fn installed_pg_version() -> Option<String> {
    newest_version_dir("/usr/lib/postgresql", |dir| {
        dir.join("bin/postgres").exists()
    })
}

fn newest_version_dir(parent: &str, ok: impl Fn(&Path) -> bool) -> Option<String> {
    let mut versions: Vec<(f64, String)> = std::fs::read_dir(parent)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| ok(&e.path()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.parse::<f64>().ok().map(|v| (v, name))
        })
        .collect();
    versions.sort_by(|a, b| a.0.total_cmp(&b.0));
    versions.pop().map(|(_, name)| name)
}

/// A freshly installed Debian cluster asks for passwords over TCP; the dev URLs carry
/// none, so trust loopback connections (this is a dev machine xtask just set up).
fn trust_local_tcp(version: &str) -> Result<()> {
    let path = PathBuf::from(format!("/etc/postgresql/{version}/main/pg_hba.conf"));
    let current =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let marker = "# cargo xtask up:";
    if current.contains(marker) {
        return Ok(());
    }
    let head = format!(
        "{marker} trust loopback TCP connections on this dev machine\n\
         host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n\n"
    );
    std::fs::write(&path, head + &current)
        .with_context(|| format!("writing {}", path.display()))?;
    ui::info(&format!(
        "set loopback connections to trust in {}",
        path.display()
    ));
    Ok(())
}

/// Makes sure RabbitMQ answers at the URL's host and port, starting (or installing)
/// a local broker when it does not.
pub fn ensure_rabbitmq(url: &str, var: &str) -> Result<()> {
    let Some(ep) = Endpoint::parse(url, var, 5672)? else {
        bail!("{var} names no host");
    };
    ui::step(&format!("checking RabbitMQ at {ep}"));
    if ep.reachable() {
        ui::info("reachable");
        return Ok(());
    }
    if !ep.is_local() {
        bail!("RabbitMQ at {ep} is not reachable: start it, or point {var} at a running broker");
    }
    ui::info("not reachable; starting a local broker");
    let server = match find_program("rabbitmq-server") {
        Some(server) => server,
        None if is_root() && is_debian() => {
            apt_install(&["rabbitmq-server"])?;
            if ep.reachable() {
                return Ok(());
            }
            find_program("rabbitmq-server")
                .context("rabbitmq-server missing after installing it")?
        }
        None => {
            let sudo = if is_root() { "" } else { "sudo " };
            bail!(
                "RabbitMQ is not reachable at {ep} and is not installed. Install and start it, e.g. on \
                 Debian/Ubuntu:\n    {sudo}apt-get install -y rabbitmq-server && {sudo}rabbitmq-server -detached\n\
                 then run this again"
            );
        }
    };
    let mut cmd = Command::new(&server);
    cmd.arg("-detached");
    ui::info(&format!("$ {}", ui::show(&cmd)));
    let status = cmd
        .status()
        .with_context(|| format!("could not run {}", server.display()))?;
    if !status.success() && !is_root() {
        bail!("could not start RabbitMQ; run:\n    sudo rabbitmq-server -detached");
    }
    ep.wait("RabbitMQ", Duration::from_secs(90))
        .map_err(|e| anyhow!("{e}; see the logs in /var/log/rabbitmq/"))
}

/// Makes sure the `docker-compose` command exists, installing the Debian package when root.
pub fn ensure_docker_compose() -> Result<()> {
    ui::step("checking docker-compose");
    if ui::succeeds(Command::new("docker-compose").arg("version")) {
        ui::info("installed");
        return Ok(());
    }
    if !(is_root() && is_debian()) {
        bail!(
            "docker-compose is not installed (the tests validate docker-compose.yml with it); run:\n    \
             sudo apt-get install -y docker-compose"
        );
    }
    ui::info("not installed; installing the Debian package");
    ui::run_checked(
        Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update failed",
    )?;
    ui::run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "docker-compose"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "could not install docker-compose",
    )?;
    if !ui::succeeds(Command::new("docker-compose").arg("version")) {
        bail!("docker-compose still does not run after installing it");
    }
    Ok(())
}

/// Makes sure headless Chromium and its WebDriver (the Debian packages
/// `chromium` and `chromium-driver`) are installed for the console's browser
/// tests, installing them with apt-get when root on Debian. The tests fail
/// (never skip) without them.
pub fn ensure_chromium() -> Result<()> {
    ui::step("checking chromium and chromium-driver (console browser tests)");
    let present = || {
        find_program("chromedriver").is_some()
            && (find_program("chromium").is_some() || find_program("chromium-browser").is_some())
    };
    if present() {
        ui::info("installed");
        return Ok(());
    }
    if !(is_root() && is_debian()) {
        bail!(
            "chromium and chromedriver are needed by the console's browser tests; install them:\n    \
             sudo apt-get install -y chromium chromium-driver"
        );
    }
    ui::info(
        "not installed; installing the Debian packages chromium and chromium-driver (about 100 MB)",
    );
    ui::run_checked(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update failed (is a Debian mirror reachable?)",
    )?;
    ui::run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "could not install chromium and chromium-driver with apt-get; install them by hand and run again",
    )?;
    if !present() {
        bail!("chromium or chromedriver is still missing after apt-get install");
    }
    Ok(())
}

/// Makes sure each `(program, Debian package)` is installed, installing the
/// missing packages with apt-get when root on Debian; `why` says what for.
pub fn ensure_programs(wanted: &[(&str, &str)], why: &str) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| find_program(program).is_none())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !(is_root() && is_debian()) {
        bail!(
            "{} needed {why}; install:\n    sudo apt-get install -y {}",
            missing.join(" and "),
            missing.join(" ")
        );
    }
    apt_install(&missing)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let packages_text = packages.join(" ");
    ui::info(&format!("installing {packages_text} with apt-get"));
    ui::run_checked(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get update failed",
    )?;
    ui::run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("could not install {packages_text}"),
    )
}

/// Finds a program on PATH or in the sbin directories (often not on a user's PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && find_program("apt-get").is_some()
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Connects, retrying for a while: a server that just opened its port may still be
/// starting up.
async fn connect(options: &PgConnectOptions) -> Result<PgConnection> {
    let start = Instant::now();
    loop {
        match PgConnection::connect_with(options).await {
            Ok(conn) => return Ok(conn),
            Err(e) if start.elapsed() < Duration::from_secs(20) && retryable(&e) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        // cannot_connect_now: the database system is starting up
        sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the URL's database unless it exists (no migration).
pub fn create_database(url: &str) -> Result<()> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid Postgres URL")?;
    let database = options.get_database().map(str::to_owned);
    runtime()?.block_on(async {
        if let Some(db) = database.as_deref().filter(|db| *db != "postgres") {
            ui::step(&format!("ensuring database `{db}` exists"));
            let mut conn = connect(&options.clone().database("postgres"))
                .await
                .context("could not connect to the `postgres` maintenance database")?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(db)
                    .fetch_one(&mut conn)
                    .await?;
            if exists {
                ui::info("exists");
            } else {
                match sqlx::query(AssertSqlSafe(format!(
                    "CREATE DATABASE {}",
                    quote_ident(db)
                )))
                .execute(&mut conn)
                .await
                {
                    Ok(_) => ui::info("created"),
                    // duplicate_database: created concurrently, fine
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {
                        ui::info("exists")
                    }
                    Err(e) => {
                        return Err(anyhow!(e).context(format!("could not create database `{db}`")));
                    }
                }
            }
            conn.close().await.ok();
        }
        Ok(())
    })
}

/// Creates the URL's database if it does not exist, then applies the migrations.
pub fn create_database_and_migrate(url: &str) -> Result<()> {
    create_database(url)?;
    runtime()?.block_on(async {
        ui::step("applying migrations");
        let started = Instant::now();
        let pool = hub_storage::pool(url, &hub_storage::PoolSettings::default())?;
        hub_storage::migrate(&pool)
            .await
            .context("migrations failed")?;
        pool.close().await;
        ui::info(&format!(
            "schema up to date ({} migrations, {})",
            hub_storage::MIGRATOR.iter().count(),
            ui::secs(started.elapsed())
        ));
        Ok(())
    })
}

/// Drops the `hubtest_*` databases that earlier (interrupted) test runs left behind,
/// keeping the newest migrated template (`hubtest_tpl_*`, which the testkit reuses).
pub fn drop_stale_test_databases(url: &str) -> Result<()> {
    let options = PgConnectOptions::from_str(url)
        .context("HUB_TEST_DATABASE_URL is not a valid Postgres URL")?;
    runtime()?.block_on(async {
        let mut conn = connect(&options)
            .await
            .context("could not connect to the test server")?;
        // Oldest first: oids grow with creation (a rename keeps the oid).
        let names: Vec<String> = sqlx::query_scalar(
            r"SELECT datname::text FROM pg_database WHERE datname LIKE 'hubtest\_%' ORDER BY oid",
        )
        .fetch_all(&mut conn)
        .await?;
        let mut dropped = 0;
        for name in stale_test_databases(&names) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
            match sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
                Ok(_) => dropped += 1,
                Err(e) => ui::warn(&format!("could not drop {name}: {e}")),
            }
        }
        ui::info(&format!("dropped {dropped} stale test database(s)"));
        conn.close().await.ok();
        Ok(())
    })
}

/// Of the `hubtest_*` databases, oldest first, those to drop: all but the newest
/// complete template.
fn stale_test_databases(names: &[String]) -> Vec<&String> {
    let is_template = |n: &str| n.starts_with("hubtest_tpl_") && !n.ends_with("_building");
    let keep = names.iter().rposition(|n| is_template(n));
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != keep)
        .map(|(_, n)| n)
        .collect()
}

/// Makes sure the schemathesis CLI pinned in
/// `crates/hub-testkit/schemathesis.txt` is installed in a virtualenv under
/// the target directory (`target/schemathesis`), where the schema tests look
/// for it (`hub_testkit::schemathesis`). Installs it with `python3 -m venv`
/// and pip when it is missing or another version, showing pip's progress.
pub fn ensure_schemathesis() -> Result<()> {
    ui::step("checking schemathesis (the services' schema tests)");
    let pinned_file = crate::workspace_root().join("crates/hub-testkit/schemathesis.txt");
    let pinned = std::fs::read_to_string(&pinned_file)
        .with_context(|| format!("reading {}", pinned_file.display()))?;
    let venv = crate::target_dir().join("schemathesis");
    let marker = venv.join("installed.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == pinned) {
        ui::info(&format!("installed ({})", pinned.trim()));
        return Ok(());
    }
    let python = find_program("python3").ok_or_else(|| {
        anyhow!(
            "python3 is needed to install schemathesis for the schema tests; install it:\n    \
             sudo apt-get install -y python3 python3-venv"
        )
    })?;
    ui::info(&format!(
        "installing {} into {} (about 60 MB)",
        pinned.trim(),
        venv.display()
    ));
    let _ = std::fs::remove_dir_all(&venv);
    ui::run_checked(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "could not create a virtualenv (on Debian: sudo apt-get install -y python3-venv)",
    )?;
    ui::run_checked(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "on",
                "-r",
            ])
            .arg(&pinned_file),
        "pip could not install schemathesis (is PyPI reachable?)",
    )?;
    std::fs::write(&marker, &pinned).with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_complete_template() {
        let names: Vec<String> = [
            "hubtest_tpl_aaaa",
            "hubtest_0f1e",
            "hubtest_tpl_bbbb",
            "hubtest_tpl_cccc_building",
            "hubtest_77ab",
        ]
        .map(String::from)
        .to_vec();
        let stale = stale_test_databases(&names);
        assert_eq!(
            stale,
            [
                "hubtest_tpl_aaaa",
                "hubtest_0f1e",
                "hubtest_tpl_cccc_building",
                "hubtest_77ab"
            ]
        );
        assert!(stale_test_databases(&[]).is_empty());
    }

    #[test]
    fn endpoints_parse_with_defaults() {
        let ep = Endpoint::parse(DEFAULT_RABBITMQ_URL, "X", 5672)
            .unwrap()
            .unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("127.0.0.1", 5672));
        assert!(ep.is_local());
        let ep = Endpoint::parse("postgres://u:p@db.example:6543/x", "X", 5432)
            .unwrap()
            .unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.is_local()),
            ("db.example", 6543, false)
        );
        let ep = Endpoint::parse("postgres://[::1]/x", "X", 5432)
            .unwrap()
            .unwrap();
        assert_eq!(
            (ep.to_string().as_str(), ep.is_local()),
            ("[::1]:5432", true)
        );
        assert!(
            Endpoint::parse("postgres:///x?host=/run/postgresql", "X", 5432)
                .unwrap()
                .is_none()
        );
        assert!(Endpoint::parse("nonsense", "X", 5432).is_err());
    }

    #[test]
    fn postgres_urls_name_tcp_or_a_unix_socket_as_sqlx_reads_them() {
        let transport = |url| postgres_transport(url, "X").unwrap().to_string();
        assert_eq!(transport(DEFAULT_DATABASE_URL), "TCP 127.0.0.1:5432");
        assert_eq!(
            transport("postgres://u:p@db.example:6543/x"),
            "TCP db.example:6543"
        );
        let socket = "Unix socket /var/run/postgresql/.s.PGSQL.5432";
        assert_eq!(
            transport("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres"),
            socket
        );
        assert_eq!(
            transport("postgres:///postgres?host=/var/run/postgresql&user=postgres"),
            socket
        );
        // The query parameter wins over the URL's host, as in sqlx.
        assert_eq!(
            transport("postgres://localhost:6000/x?host=/tmp"),
            "Unix socket /tmp/.s.PGSQL.6000"
        );
        assert!(postgres_transport("not a url", "X").is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("integration_hub"), "\"integration_hub\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
