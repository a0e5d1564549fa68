use std::collections::BTreeSet;

use hub_connectors::{
    AuthType, CatalogError, Category, KeyLocation, ProviderStatus, catalog, embedded_files, load,
    parse_manifest,
};
use serde_json::{Value, json};

#[test]
fn catalog_loads_the_fourteen_providers_with_unique_codes() {
    let all = catalog().expect("every shipped manifest is valid");
    let codes: Vec<&str> = all.iter().map(|m| m.code.as_str()).collect();
    // Today exactly the fourteen; a new provider is one more file, and
    // `load` already refuses duplicate codes.
    assert_eq!(codes, hub_testkit::SHIPPED_PROVIDERS);
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), codes.len());
    assert_eq!(embedded_files().len(), all.len(), "one manifest per file");
    for m in &all {
        assert!(m.code.len() <= 50);
        assert!(m.base_url.starts_with("https://"), "{}", m.code);
    }
}

#[test]
fn auth_types_follow_the_spec_table() {
    let expected = [
        ("DAT", AuthType::OAuth2),
        ("TRUCKSTOP", AuthType::ApiKey),
        ("LOADBOARD_123", AuthType::ApiKey),
        ("QUICKBOOKS", AuthType::OAuth2),
        ("XERO", AuthType::OAuth2),
        ("SAGE", AuthType::ApiKey),
        ("KEEPTRUCKIN", AuthType::OAuth2),
        ("SAMSARA", AuthType::ApiKey),
        ("OMNITRACS", AuthType::ApiKey),
        ("HUBSPOT", AuthType::OAuth2),
        ("SALESFORCE", AuthType::OAuth2),
        ("ZOHO", AuthType::OAuth2),
        ("NEWSAPI", AuthType::ApiKey),
        ("ALPHA_VANTAGE", AuthType::ApiKey),
    ];
    let all = catalog().unwrap();
    for (code, auth) in expected {
        let m = all.iter().find(|m| m.code == code).unwrap();
        assert_eq!(m.auth_type, auth, "{code}");
        assert_eq!(m.oauth.is_some(), auth == AuthType::OAuth2, "{code}");
        assert_eq!(m.api_key.is_some(), auth == AuthType::ApiKey, "{code}");
    }
    assert_eq!(super::provider("LOADBOARD_123").name, "123Loadboard");
    assert_eq!(super::provider("KEEPTRUCKIN").name, "KeepTruckin (Motive)");
    assert_eq!(super::provider("NEWSAPI").category, Category::Intel);
    assert_eq!(super::provider("SAMSARA").category, Category::Eld);
}

#[test]
fn faked_providers_are_active() {
    for code in hub_testkit::fakes::Kind::ALL.map(|k| k.code()) {
        assert_eq!(
            super::provider(code).status,
            ProviderStatus::Active,
            "{code}"
        );
    }
}

#[test]
fn provider_specific_auth_details_match_providers_md() {
    let qb = super::provider("QUICKBOOKS");
    let oauth = qb.oauth.as_ref().unwrap();
    assert!(oauth.refresh_token_rotates);
    assert_eq!(
        oauth.token_url,
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    );
    assert!(super::provider("XERO").oauth.unwrap().refresh_token_rotates);
    assert_eq!(
        super::provider("ZOHO").oauth.unwrap().token_prefix,
        "Zoho-oauthtoken "
    );
    assert_eq!(
        super::provider("HUBSPOT").oauth.unwrap().token_prefix,
        "Bearer "
    );
    assert_eq!(
        super::provider("SALESFORCE")
            .oauth
            .unwrap()
            .api_base_from_token
            .as_deref(),
        Some("instance_url")
    );
    let av = super::provider("ALPHA_VANTAGE").api_key.unwrap();
    assert_eq!(
        (av.location, av.name.as_str()),
        (KeyLocation::Query, "apikey")
    );
    let news = super::provider("NEWSAPI").api_key.unwrap();
    assert_eq!(
        (news.location, news.name.as_str()),
        (KeyLocation::Header, "X-Api-Key")
    );
    let samsara = super::provider("SAMSARA").api_key.unwrap();
    assert_eq!(samsara.value("k"), "Bearer k");
}

#[test]
fn every_config_schema_compiles_and_accepts_a_base_url_override() {
    for m in catalog().unwrap() {
        jsonschema::draft202012::new(&m.config_schema)
            .unwrap_or_else(|e| panic!("{}: {e}", m.code));
        let errors = m
            .validate_config(&json!({"base_url": "https://sandbox.example.com"}))
            .err()
            .unwrap_or_default();
        // Only the provider's own required fields may be missing.
        let required = m.required_config_fields();
        for e in &errors {
            assert_eq!(e.code, "required", "{}: {e}", m.code);
            assert!(
                required.iter().any(|r| e.field == format!("config.{r}")),
                "{}: {e}",
                m.code
            );
        }
        let bad = m.validate_config(&json!({"base_url": 7})).unwrap_err();
        assert!(
            bad.iter()
                .any(|e| e.field == "config.base_url" && e.code == "type"),
            "{}",
            m.code
        );
    }
}

#[test]
fn manifests_round_trip_through_serde() {
    for m in catalog().unwrap() {
        let text = serde_json::to_string(&m).unwrap();
        let again = parse_manifest(&format!("{}.json", m.code.to_lowercase()), &text).unwrap();
        assert_eq!(again, m);
    }
}

fn hubspot_json() -> Value {
    let text = include_str!("../../providers/hubspot.json");
    serde_json::from_str(text).unwrap()
}

fn reject(file: &str, manifest: &Value) -> CatalogError {
    parse_manifest(file, &manifest.to_string()).expect_err("manifest must be rejected")
}

#[test]
fn a_manifest_with_an_unknown_category_is_rejected_naming_file_code_and_field() {
    let mut m = hubspot_json();
    m["category"] = json!("MARKETING");
    let err = reject("hubspot.json", &m);
    let text = err.to_string();
    assert!(text.contains("providers/hubspot.json"), "{text}");
    assert!(text.contains("HUBSPOT"), "{text}");
    assert!(text.contains("category: must be one of"), "{text}");
    assert!(text.contains("MARKETING"), "{text}");
    let CatalogError::Invalid {
        file,
        code,
        problems,
    } = err
    else {
        panic!("expected Invalid, got {err:?}");
    };
    assert_eq!(
        (file.as_str(), code.as_deref()),
        ("hubspot.json", Some("HUBSPOT"))
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "category");
}

#[test]
fn structural_problems_are_all_listed_by_field() {
    let mut m = hubspot_json();
    m["auth_type"] = json!("TOKEN");
    m["code"] = json!("hub spot");
    m["test_call"].as_object_mut().unwrap().remove("path");
    m["rate_limit"]["requests"] = json!(0);
    m["colour"] = json!("orange");
    let CatalogError::Invalid { problems, .. } = reject("hubspot.json", &m) else {
        panic!("expected Invalid");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "auth_type",
            "code",
            "colour",
            "rate_limit.requests",
            "test_call.path"
        ]
    );
}

#[test]
fn rules_beyond_the_schema_are_enforced() {
    let mut m = hubspot_json();
    m["oauth"] = Value::Null;
    m["base_url"] = json!("http://api.hubapi.com");
    m["config_schema"]["additionalProperties"] = json!(true);
    m["config_schema"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("base_url");
    m["test_call"]["path"] = json!("/crm/v3/objects/{config.object}?limit=1");
    let err = reject("hubspot.json", &m);
    let CatalogError::Invalid { problems, .. } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "base_url",
            "config_schema.additionalProperties",
            "config_schema.properties.base_url",
            "oauth",
            "test_call.path"
        ],
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("oauth: is required when auth_type is OAUTH2"),
        "{err}"
    );
    assert!(err.to_string().contains("{config.object}"), "{err}");
}

#[test]
fn a_config_schema_that_does_not_compile_is_rejected() {
    let mut m = hubspot_json();
    m["config_schema"]["properties"]["portal_id"]["type"] = json!("integr");
    let text = reject("hubspot.json", &m).to_string();
    assert!(
        text.contains("config_schema: is not a valid JSON Schema"),
        "{text}"
    );
}

#[test]
fn the_file_name_must_match_the_code() {
    let text = reject("hub_spot.json", &hubspot_json()).to_string();
    assert!(text.contains("must be named hubspot.json"), "{text}");
}

#[test]
fn oauth_on_an_api_key_provider_and_key_placement_are_checked() {
    let mut m = hubspot_json();
    m["auth_type"] = json!("API_KEY");
    let text = reject("hubspot.json", &m).to_string();
    assert!(
        text.contains("oauth: must be null or absent when auth_type is API_KEY"),
        "{text}"
    );
    assert!(
        text.contains("api_key: is required when auth_type is API_KEY"),
        "{text}"
    );
}

#[test]
fn bad_json_and_duplicate_codes_are_rejected() {
    let err = parse_manifest("broken.json", "{\"code\": ").unwrap_err();
    assert!(matches!(err, CatalogError::Syntax { .. }));
    assert!(
        err.to_string()
            .starts_with("providers/broken.json: not valid JSON"),
        "{err}"
    );

    let text = include_str!("../../providers/hubspot.json");
    let err = load([("hubspot.json", text), ("hubspot.json", text)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider code HUBSPOT is declared twice: in providers/hubspot.json and providers/hubspot.json"
    );
}

#[test]
fn wire_enums_parse_and_print() {
    assert_eq!(
        "LOAD_BOARD".parse::<Category>().unwrap(),
        Category::LoadBoard
    );
    assert_eq!(AuthType::OAuth2.to_string(), "OAUTH2");
    assert_eq!(ProviderStatus::ComingSoon.as_str(), "COMING_SOON");
    let err = "SPACE".parse::<Category>().unwrap_err();
    assert!(
        err.to_string()
            .contains("\"SPACE\" is not one of LOAD_BOARD"),
        "{err}"
    );
}

#[test]
fn oauth_providers_declare_url_overrides_and_what_their_connection_provides() {
    for m in hub_connectors::catalog().unwrap() {
        let Some(oauth) = &m.oauth else { continue };
        let fields = m.config_fields();
        for f in ["oauth_authorize_url", "oauth_token_url"] {
            assert!(fields.iter().any(|x| x == f), "{}: {f}", m.code);
        }
        for p in &oauth.provides {
            assert!(!m.required_config_fields().contains(p), "{}: {p}", m.code);
        }
    }
    let qb = super::provider("QUICKBOOKS").oauth.unwrap();
    assert_eq!(qb.provides, ["realm_id"]);
    assert_eq!(qb.client_auth, hub_connectors::ClientAuth::Basic);
    let xero = super::provider("XERO").oauth.unwrap();
    assert!(xero.pkce);
    assert_eq!(xero.provides, ["xero_tenant_id"]);
    assert_eq!(
        super::provider("HUBSPOT").oauth.unwrap().client_auth,
        hub_connectors::ClientAuth::Body
    );
    assert!(super::provider("DAT").oauth.unwrap().nonstandard_token_flow);
}

#[test]
fn a_placeholder_may_name_a_field_the_oauth_connection_provides_but_not_an_undeclared_one() {
    let mut m: Value =
        serde_json::from_str(include_str!("../../providers/quickbooks.json")).unwrap();
    assert!(hub_connectors::parse_manifest("quickbooks.json", &m.to_string()).is_ok());
    m["oauth"]["provides"] = json!([]);
    let err = hub_connectors::parse_manifest("quickbooks.json", &m.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("uses {config.realm_id}"), "{err}");
    m["oauth"]["provides"] = json!(["realm_id", "nope"]);
    let err = hub_connectors::parse_manifest("quickbooks.json", &m.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("oauth.provides: names \"nope\""), "{err}");
}
