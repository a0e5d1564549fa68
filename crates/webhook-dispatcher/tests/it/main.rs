//! Integration tests of webhook-dispatcher through its public interfaces.

use hub_testkit::TestEnv;

mod cloudevents;
mod outbound;
use hub_testkit::binary::{check_rejects_invalid_configuration, check_runs_from_environment};

const BIN: &str = env!("CARGO_BIN_EXE_webhook-dispatcher");

#[tokio::test]
async fn starts_from_environment_variables_alone_and_stops_on_sigterm() {
    let env = TestEnv::new().await;
    check_runs_from_environment(BIN, &env).await;
}

#[test]
fn invalid_configuration_stops_the_binary_naming_the_key() {
    check_rejects_invalid_configuration(BIN);
}

#[tokio::test]
async fn two_replicas_start_at_once_on_one_fresh_database() {
    // Migrations run under an advisory lock: concurrent starts are safe.
    let env = TestEnv::new().await;
    let fresh = hub_testkit::TestDb::empty().await;
    let mut config = env.config();
    config.database_url = fresh.url.clone();
    let (a, b) = tokio::join!(
        env.start(webhook_dispatcher::build, config.clone()),
        env.start(webhook_dispatcher::build, config),
    );
    for s in [&a, &b] {
        assert_eq!(
            env.http.get(s.url("/ready")).send().await.unwrap().status(),
            200
        );
    }
    a.stop().await;
    b.stop().await;
}

#[test]
fn committed_openapi_document_is_current() {
    use utoipa::OpenApi;
    hub_testkit::check_openapi(
        webhook_dispatcher::NAME,
        webhook_dispatcher::ApiDoc::openapi(),
    );
}
