//! Schemathesis against integration-sync's committed OpenAPI document
//! (`openapi/integration-sync.json`: the platform routes; its jobs are
//! served by the manager's API): no server error, and every status, content
//! type, body and header as the document says.

use hub_testkit::TestEnv;
use hub_testkit::schemathesis::Run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_committed_document_says() {
    let env = TestEnv::new().await;
    let s = env.start(integration_sync::build, env.config()).await;
    Run::new(integration_sync::NAME, &s.base)
        .max_examples(8)
        .run()
        .await
        .assert_clean(3);
}
