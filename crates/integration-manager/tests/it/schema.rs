//! Schemathesis against the manager's committed OpenAPI document
//! (`openapi/integration-manager.json`): generated requests to every
//! operation, as a tenant with a valid key (tenant routes, with a few objects
//! of each kind so lists answer items) and as the operator (admin routes).
//! No server error, and every status, content type, body and header as the
//! document says.

use crate::started;
use hub_testkit::TenantApi;
use hub_testkit::schemathesis::{Excluded, Run};
use hub_testkit::service::ADMIN_TOKEN;
use serde_json::json;

/// Test cases per operation and phase: the three services' runs together
/// stay within a few minutes on two cores.
const EXAMPLES: u32 = 8;

/// Operations left out, and why (none: providers behind integrations are
/// absent, so calls through them fail as the document says they may).
const EXCLUDED: &[Excluded] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_committed_document_says() {
    let (env, m) = started().await;
    let (tenant, key) = env.tenant(&m, "schema").await;
    let api = TenantApi::new(&env, &m, &tenant, &key);
    // Something to list: an integration, an inbound endpoint, a subscription
    // and a template.
    let integration = api
        .post(
            "/api/v1/integrations",
            json!({"provider_code": "HUBSPOT", "name": "crm",
                   "credentials": {"access_token": "schema-test-token"}}),
        )
        .await;
    let integration = integration.ok(201)["id"].as_str().unwrap().to_owned();
    api.post(
        "/api/v1/webhooks/endpoints",
        json!({"endpoint_path": "hs", "signature_algorithm": "hmac-sha256",
               "secret_key": "whsec-schema-12345678", "integration_id": integration}),
    )
    .await
    .ok(201);
    api.post(
        "/api/v1/webhooks/subscriptions",
        json!({"name": "orders", "url": "http://127.0.0.1:9/h", "event_types": ["order.*"]}),
    )
    .await
    .ok(201);
    api.post(
        "/api/v1/transformations",
        json!({"code": "t1", "name": "T1", "source_format": "JSON", "target_format": "JSON",
               "mapping_rules": {"rules": [{"target": "id", "source": "Id"}]}}),
    )
    .await
    .ok(201);

    // Found by schemathesis: a NUL in a text filter failed the query (500).
    api.get("/api/v1/integrations/providers?q=a%00b")
        .await
        .problem(400, "invalid_parameter");

    let admin = "^/api/v1/admin/";
    let as_tenant = Run::new(integration_manager::NAME, &m.base)
        .header("Authorization", &format!("Bearer {key}"))
        .header("X-Tenant-ID", &tenant)
        .other_paths(admin)
        .excluding(EXCLUDED)
        .max_examples(EXAMPLES);
    let as_operator = Run::new(integration_manager::NAME, &m.base)
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .only_paths(admin)
        .max_examples(EXAMPLES);
    let (t, o) = tokio::join!(as_tenant.run(), as_operator.run());
    t.assert_clean(55);
    o.assert_clean(7);
}
