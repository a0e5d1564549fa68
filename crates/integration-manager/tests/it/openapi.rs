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
