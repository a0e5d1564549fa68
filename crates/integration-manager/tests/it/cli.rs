//! The binary as an operator runs it: configured only by environment variables.

use hub_testkit::db::TestDb;
use std::process::{Command, Output, Stdio};

hub_testkit::binary_tests!(env!("CARGO_BIN_EXE_integration-manager"));

const BIN: &str = env!("CARGO_BIN_EXE_integration-manager");

/// `integration-manager <args>` against `url`, configured only by environment variables.
fn command(url: &str, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(args)
        .env("DATABASE_URL", url)
        .env(
            "INTEGRATION_ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
        )
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn run(url: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    command(url, args, vars).output().expect("run the binary")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Kubernetes migration Job runs `migrate`; the services' init containers
/// run `migrate --wait`, which must hold them back until the Job is done.
#[tokio::test]
async fn migrate_applies_the_migrations_and_exits_and_wait_holds_until_they_are_applied() {
    let db = TestDb::empty().await;
    let embedded = hub_storage::MIGRATOR.iter().count();

    // Nothing applied yet: `--wait` gives up after the start-up timeout, naming what is pending.
    let out = run(
        &db.url,
        &["migrate", "--wait"],
        &[("HUB_STARTUP_TIMEOUT_SECONDS", "1")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("{embedded} migration(s) pending")),
        "{}",
        text(&out)
    );

    // A waiter started before the migration returns once it is done.
    let waiter = command(
        &db.url,
        &["migrate", "--wait"],
        &[("HUB_STARTUP_TIMEOUT_SECONDS", "120")],
    )
    .spawn()
    .expect("start the waiter");
    let out = run(&db.url, &["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("applied {embedded} pending migration(s)")),
        "{}",
        text(&out)
    );
    let waited = waiter.wait_with_output().expect("the waiter exits");
    assert!(waited.status.success(), "{}", text(&waited));

    // The schema is there, and running it again changes nothing.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    assert!(
        hub_storage::pending_migrations(&pool)
            .await
            .expect("read migrations")
            .is_empty()
    );
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .expect("the tenants table exists");
    assert_eq!(tenants, 0);
    pool.close().await;
    let out = run(&db.url, &["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0 pending migration(s)"),
        "{}",
        text(&out)
    );

    // A mistyped option is refused with the usage, before touching anything.
    let out = run(&db.url, &["migrate", "--wiat"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrate [--wait]"));
}
