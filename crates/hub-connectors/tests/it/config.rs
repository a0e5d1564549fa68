use hub_connectors::ConfigFieldError;
use serde_json::{Value, json};

/// What validating `config` against provider `code`'s schema finds wrong.
fn config_errors(code: &str, config: Value) -> Vec<ConfigFieldError> {
    super::provider(code).validate_config(&config).unwrap_err()
}

fn fields(errors: &[ConfigFieldError]) -> Vec<(&str, &str)> {
    errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_str()))
        .collect()
}

#[test]
fn a_valid_quickbooks_config_passes() {
    let qb = super::provider("QUICKBOOKS");
    qb.validate_config(&json!({"realm_id": "9130357766900456"}))
        .unwrap();
    qb.validate_config(&json!({
        "realm_id": "9130357766900456",
        "base_url": "https://sandbox-quickbooks.api.intuit.com"
    }))
    .unwrap();
}

#[test]
fn quickbooks_config_errors_are_reported_per_field() {
    // realm_id comes from the OAuth redirect, so it is not required...
    super::provider("QUICKBOOKS")
        .validate_config(&json!({}))
        .unwrap();
    // ...while a field nothing provides still is.
    let missing = config_errors("DAT", json!({}));
    assert_eq!(fields(&missing), [("config.user_email", "required")]);
    assert_eq!(missing[0].message, "is required");

    let wrong = config_errors(
        "QUICKBOOKS",
        json!({"realm_id": 9130357766900456u64, "base_url": "not a url", "relm": "x"}),
    );
    assert_eq!(
        fields(&wrong),
        [
            ("config.base_url", "format"),
            ("config.realm_id", "type"),
            ("config.relm", "unknown_property")
        ]
    );
    assert_eq!(wrong[1].message, "must be of type string");
    assert_eq!(
        wrong[2].message,
        "is not an allowed field; allowed: base_url, oauth_authorize_url, oauth_token_url, realm_id"
    );
    assert_eq!(
        wrong[2].to_string(),
        "config.relm: is not an allowed field; allowed: base_url, oauth_authorize_url, oauth_token_url, realm_id"
    );

    let pattern = config_errors("QUICKBOOKS", json!({"realm_id": "abc"}));
    assert_eq!(fields(&pattern), [("config.realm_id", "pattern")]);
}

#[test]
fn config_errors_never_quote_the_submitted_value() {
    let errors = config_errors("QUICKBOOKS", json!({"realm_id": "s3cr3t-looking-value"}));
    assert!(
        errors.iter().all(|e| !e.message.contains("s3cr3t")),
        "{errors:?}"
    );
}

#[test]
fn a_config_that_is_not_an_object_is_one_error_on_config() {
    let errors = config_errors("HUBSPOT", json!([1]));
    assert_eq!(fields(&errors), [("config", "type")]);
}

#[test]
fn xero_requires_a_uuid_tenant_id() {
    let xero = super::provider("XERO");
    xero.validate_config(&json!({"xero_tenant_id": "3d9a2b3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}))
        .unwrap();
    let errors = config_errors("XERO", json!({"xero_tenant_id": "acme"}));
    assert_eq!(fields(&errors), [("config.xero_tenant_id", "format")]);
}

#[test]
fn nested_errors_carry_indices() {
    let errors = config_errors(
        "ALPHA_VANTAGE",
        json!({"symbols": ["IBM", "no spaces allowed"]}),
    );
    assert_eq!(fields(&errors), [("config.symbols[1]", "pattern")]);
}
