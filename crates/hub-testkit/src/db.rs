//! A fresh database per test, copied from a migrated template.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};
use std::str::FromStr;

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    server: PgConnectOptions,
}

fn template_name() -> String {
    // The template is keyed by the migrations' content: a changed migration
    // gets a new template, never a stale one.
    let mut h = Sha256::new();
    for m in hub_storage::MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&*m.checksum);
    }
    format!("hubtest_tpl_{}", &hex::encode(h.finalize())[..16])
}

async fn admin_conn(server: &PgConnectOptions) -> PgConnection {
    server.clone().database("postgres").connect().await.expect(
        "cannot reach Postgres for tests: start it (cargo xtask up does) or set HUB_TEST_DATABASE_URL",
    )
}

impl TestDb {
    /// Creates a new database with no tables at all (to test migrating).
    pub async fn empty() -> Self {
        let server = PgConnectOptions::from_str(&crate::database_server_url())
            .expect("valid HUB_TEST_DATABASE_URL");
        let mut conn = admin_conn(&server).await;
        let name = format!("hubtest_{}", uuid::Uuid::new_v4().simple());
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create empty test database");
        let _ = conn.close().await;
        Self {
            url: url_for(&name),
            name,
            server,
        }
    }

    /// Creates a new migrated database.
    pub async fn new() -> Self {
        let server = PgConnectOptions::from_str(&crate::database_server_url())
            .expect("valid HUB_TEST_DATABASE_URL");
        let mut conn = admin_conn(&server).await;
        let template = template_name();
        ensure_template(&mut conn, &server, &template).await;
        let name = format!("hubtest_{}", uuid::Uuid::new_v4().simple());
        let mut tries = 0;
        loop {
            match conn
                .execute(AssertSqlSafe(format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                )))
                .await
            {
                Ok(_) => break,
                // Another process may be copying the template at this instant.
                Err(e) if tries < 50 && e.to_string().contains("being accessed by other users") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot create test database: {e}"),
            }
        }
        let _ = conn.close().await;
        let url = url_for(&name);
        Self { name, url, server }
    }
}

fn url_for(db: &str) -> String {
    let mut u = url::Url::parse(&crate::database_server_url()).expect("valid URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

async fn ensure_template(conn: &mut PgConnection, server: &PgConnectOptions, template: &str) {
    // One process builds the template; the others wait on the lock.
    conn.execute("SELECT pg_advisory_lock(727274)")
        .await
        .expect("advisory lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *conn)
            .await
            .expect("query pg_database");
    if !exists {
        let building = format!("{template}_building");
        conn.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{building}\""
        )))
        .await
        .expect("drop half-built template");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{building}\"")))
            .await
            .expect("create template");
        {
            let pool = sqlx::PgPool::connect_with(server.clone().database(&building))
                .await
                .expect("connect template");
            hub_storage::migrate(&pool).await.expect("migrate template");
            pool.close().await;
        }
        conn.execute(AssertSqlSafe(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
        )))
        .await
        .expect("publish template");
    }
    conn.execute("SELECT pg_advisory_unlock(727274)")
        .await
        .expect("advisory unlock");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server = self.server.clone();
        // Removes the database even when the test panicked.
        crate::run_detached(async move {
            if let Ok(mut c) = server.database("postgres").connect().await {
                let _ = c
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .await;
            }
        });
    }
}
