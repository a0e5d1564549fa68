use hub_connectors::RenderError;
use serde_json::{Value, json};

/// The test-call path of provider `code` for `config`.
fn test_path(code: &str, config: Value) -> String {
    super::provider(code).render_test_path(&config).unwrap()
}

#[test]
fn quickbooks_test_path_fills_the_realm_twice() {
    assert_eq!(
        test_path("QUICKBOOKS", json!({"realm_id": "9130357766900456"})),
        "/v3/company/9130357766900456/companyinfo/9130357766900456?minorversion=75"
    );
}

#[test]
fn placeholder_values_are_url_encoded() {
    assert_eq!(
        test_path("OMNITRACS", json!({"company_id": "a b&c=d/é"})),
        "/qtws/positions?companyId=a%20b%26c%3Dd%2F%C3%A9&sequence=0&maxCount=1"
    );
}

#[test]
fn numbers_render_and_missing_or_structured_values_are_errors() {
    let qb = super::provider("QUICKBOOKS");
    assert!(test_path("QUICKBOOKS", json!({"realm_id": 42})).starts_with("/v3/company/42/"));
    assert_eq!(
        qb.render_test_path(&json!({})).unwrap_err(),
        RenderError::MissingField {
            field: "realm_id".into(),
            place: "path".into()
        }
    );
    let err = qb
        .render_test_path(&json!({"realm_id": {"x": 1}}))
        .unwrap_err();
    assert!(matches!(err, RenderError::NotScalar { .. }), "{err}");
}

#[test]
fn paths_without_placeholders_are_unchanged() {
    assert_eq!(
        test_path("HUBSPOT", json!({})),
        "/crm/v3/objects/contacts?limit=1"
    );
}

#[test]
fn xero_headers_carry_the_tenant_id_and_refuse_header_injection() {
    let xero = super::provider("XERO");
    let headers = xero
        .render_headers(&json!({"xero_tenant_id": "3d9a2b3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}))
        .unwrap();
    assert_eq!(
        headers["xero-tenant-id"],
        "3d9a2b3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    );
    assert_eq!(headers["Accept"], "application/json");
    let err = xero
        .render_headers(&json!({"xero_tenant_id": "x\r\nX-Evil: 1"}))
        .unwrap_err();
    assert!(matches!(err, RenderError::ControlCharacter { .. }), "{err}");
}

#[test]
fn sage_body_escapes_xml_and_needs_the_key() {
    let sage = super::provider("SAGE");
    let config =
        json!({"sender_id": "acme<&>", "company_id": "c", "user_id": "u", "user_password": "p"});
    let body = sage
        .render_test_body(&config, Some("k&y"))
        .unwrap()
        .unwrap();
    assert!(
        body.contains("<senderid>acme&lt;&amp;&gt;</senderid>"),
        "{body}"
    );
    assert!(body.contains("<password>k&amp;y</password>"), "{body}");
    assert_eq!(
        sage.render_test_body(&config, None).unwrap_err(),
        RenderError::MissingApiKey
    );
    assert_eq!(
        super::provider("HUBSPOT")
            .render_test_body(&config, None)
            .unwrap(),
        None
    );
}

#[test]
fn base_url_comes_from_config_then_token_field_then_manifest() {
    let sf = super::provider("SALESFORCE");
    assert_eq!(sf.base_url_for(&json!({})), "https://login.salesforce.com");
    assert_eq!(
        sf.base_url_for(&json!({"instance_url": "https://acme.my.salesforce.com/"})),
        "https://acme.my.salesforce.com"
    );
    assert_eq!(
        sf.base_url_for(&json!({"instance_url": "https://acme.my.salesforce.com", "base_url": "http://127.0.0.1:9"})),
        "http://127.0.0.1:9"
    );
}
