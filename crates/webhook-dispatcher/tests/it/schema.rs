//! Schemathesis against webhook-dispatcher's committed OpenAPI document
//! (`openapi/webhook-dispatcher.json`), as a tenant with a valid key (made
//! through the manager's binary): no server error, and every status, content
//! type, body and header as the document says.

use hub_testkit::TestEnv;
use hub_testkit::schemathesis::Run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_committed_document_says() {
    let env = TestEnv::new().await;
    let m = env.spawn("integration-manager", env.config()).await;
    let d = env.start(webhook_dispatcher::build, env.config()).await;
    let (tenant, key) = env.tenant(&m, "schema").await;
    Run::new(webhook_dispatcher::NAME, &d.base)
        .header("Authorization", &format!("Bearer {key}"))
        .header("X-Tenant-ID", &tenant)
        .max_examples(8)
        .run()
        .await
        .assert_clean(4);
}
