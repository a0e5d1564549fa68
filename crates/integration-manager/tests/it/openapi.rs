//! The committed OpenAPI documents match the code (`cargo xtask openapi`
//! regenerates them).

use utoipa::OpenApi;

fn check(name: &str, doc: utoipa::openapi::OpenApi) {
    let path = format!("{}/../../openapi/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = hub_platform::server::document(name, doc)
        .to_pretty_json()
        .unwrap();
    assert!(
        committed.trim_end() == current.trim_end(),
        "openapi/{name}.json is stale: run `cargo xtask openapi` and commit the result"
    );
}

#[test]
fn committed_openapi_documents_are_current() {
    check(
        integration_manager::NAME,
        integration_manager::routes::ApiDoc::openapi(),
    );
    check(integration_sync::NAME, integration_sync::ApiDoc::openapi());
    check(
        webhook_dispatcher::NAME,
        webhook_dispatcher::ApiDoc::openapi(),
    );
}
