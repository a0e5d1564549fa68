//! The committed OpenAPI document matches the code (`cargo xtask openapi`
//! regenerates it).

use utoipa::OpenApi;

#[test]
fn committed_openapi_document_is_current() {
    hub_testkit::check_openapi(
        integration_manager::NAME,
        integration_manager::routes::ApiDoc::openapi(),
    );
}

#[tokio::test]
async fn docs_are_served_with_no_request_to_another_host() {
    let (env, m) = crate::started().await;
    hub_testkit::docs::check_docs_offline(&env.http, &m.url("")).await;
    m.stop().await;
}
