//! Integration tests of webhook-dispatcher through its public interfaces.

use hub_testkit::TestEnv;

mod cloudevents;
mod idempotency;
mod outbound;
mod schema;
mod transforms;

hub_testkit::binary_tests!(env!("CARGO_BIN_EXE_webhook-dispatcher"));

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

#[tokio::test]
async fn docs_are_served_with_no_request_to_another_host() {
    let env = TestEnv::new().await;
    let s = env.start(webhook_dispatcher::build, env.config()).await;
    hub_testkit::docs::check_docs_offline(&env.http, &s.url("")).await;
    s.stop().await;
}
