//! The catalog: every `providers/*.json` embedded at build time, parsed and
//! checked. A manifest that breaks a rule stops the load with a message
//! naming its file, its code and the field.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::manifest::{
    AuthType, BASE_URL_FIELD, GrantType, KeyLocation, OAUTH_AUTHORIZE_URL_FIELD,
    OAUTH_TOKEN_URL_FIELD, ProviderManifest,
};
use crate::schema_errors::{self, Echo};
use crate::template::{self, Syntax};

include!(concat!(env!("OUT_DIR"), "/providers.rs"));

/// The JSON Schema every manifest file must satisfy (draft 2020-12). Rules
/// it cannot express are checked in code; see [`parse_manifest`].
pub const MANIFEST_SCHEMA: &str = include_str!("../manifest.schema.json");

/// The draft every config schema is written in.
pub const CONFIG_SCHEMA_DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// One broken rule in one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// Dotted path of the field in the manifest (`oauth.token_url`,
    /// `config_schema.properties.base_url`).
    pub field: String,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why the catalog could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// A file is not JSON.
    #[error("providers/{file}: not valid JSON: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A file is JSON but breaks manifest rules; every problem is listed.
    #[error("providers/{file} (code {}): {}", code.as_deref().unwrap_or("unknown"), join(problems))]
    Invalid {
        /// File name.
        file: String,
        /// The manifest's `code`, when it has a readable one.
        code: Option<String>,
        /// Every broken rule, sorted by field.
        problems: Vec<ManifestProblem>,
    },
    /// Two files declare the same code.
    #[error("provider code {code} is declared twice: in providers/{first} and providers/{second}")]
    DuplicateCode {
        /// The repeated code.
        code: String,
        /// The first file declaring it.
        first: String,
        /// The second file declaring it.
        second: String,
    },
    /// The manifest schema shipped with the crate does not compile (a bug in
    /// this crate, caught by its tests).
    #[error("manifest.schema.json does not compile: {0}")]
    MetaSchema(String),
}

fn join(problems: &[ManifestProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every provider shipped with the crate, checked, sorted by code.
pub fn catalog() -> Result<Vec<ProviderManifest>, CatalogError> {
    load(EMBEDDED.iter().copied())
}

/// The embedded manifest of provider `code`, parsed and checked once per
/// process; `None` for an unknown code or a catalog that does not load.
pub fn manifest(code: &str) -> Option<&'static ProviderManifest> {
    static BY_CODE: std::sync::OnceLock<BTreeMap<String, ProviderManifest>> =
        std::sync::OnceLock::new();
    BY_CODE
        .get_or_init(|| {
            catalog()
                .map(|all| all.into_iter().map(|m| (m.code.clone(), m)).collect())
                .unwrap_or_default()
        })
        .get(code)
}

/// Names of the embedded manifest files, sorted.
pub fn embedded_files() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(name, _)| *name).collect()
}

/// Parses and checks `(file name, contents)` pairs as [`catalog`] does, and
/// refuses duplicate codes. Sorted by code.
pub fn load<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<ProviderManifest>, CatalogError> {
    let checker = Checker::new()?;
    let mut by_code: BTreeMap<String, (String, ProviderManifest)> = BTreeMap::new();
    for (file, text) in files {
        let manifest = checker.parse(file, text)?;
        if let Some((first, _)) = by_code.get(&manifest.code) {
            return Err(CatalogError::DuplicateCode {
                code: manifest.code.clone(),
                first: first.clone(),
                second: file.to_owned(),
            });
        }
        by_code.insert(manifest.code.clone(), (file.to_owned(), manifest));
    }
    Ok(by_code.into_values().map(|(_, m)| m).collect())
}

/// Parses one manifest file and checks every rule: the manifest schema
/// (fields, types, known categories, auth types and statuses, code format),
/// the file name (`<code in lower case>.json`), `oauth` present if and only
/// if `auth_type` is `OAUTH2` and `api_key` if and only if `API_KEY`, https
/// URLs, a config schema that compiles as draft 2020-12 with
/// `additionalProperties: false` and an optional `base_url` (string, format
/// uri), and test-call placeholders that name required config fields.
pub fn parse_manifest(file: &str, text: &str) -> Result<ProviderManifest, CatalogError> {
    Checker::new()?.parse(file, text)
}

struct Checker {
    meta: jsonschema::Validator,
}

impl Checker {
    fn new() -> Result<Self, CatalogError> {
        let schema: Value = serde_json::from_str(MANIFEST_SCHEMA)
            .map_err(|e| CatalogError::MetaSchema(e.to_string()))?;
        let meta = jsonschema::draft202012::new(&schema)
            .map_err(|e| CatalogError::MetaSchema(e.to_string()))?;
        Ok(Self { meta })
    }

    fn parse(&self, file: &str, text: &str) -> Result<ProviderManifest, CatalogError> {
        let value: Value = serde_json::from_str(text).map_err(|e| CatalogError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        let code = value.get("code").and_then(Value::as_str).map(str::to_owned);
        let invalid = |problems: Vec<ManifestProblem>| CatalogError::Invalid {
            file: file.to_owned(),
            code: code.clone(),
            problems,
        };
        let structural: Vec<ManifestProblem> =
            schema_errors::issues(self.meta.iter_errors(&value), "", "manifest", Echo::Values)
                .into_iter()
                .map(|i| ManifestProblem {
                    field: i.field,
                    message: i.message,
                })
                .collect();
        if !structural.is_empty() {
            return Err(invalid(structural));
        }
        let manifest: ProviderManifest = serde_json::from_value(value).map_err(|e| {
            invalid(vec![ManifestProblem {
                field: "manifest".to_owned(),
                message: e.to_string(),
            }])
        })?;
        let mut problems = rules(file, &manifest);
        if problems.is_empty() {
            Ok(manifest)
        } else {
            problems.sort_by(|a, b| a.field.cmp(&b.field));
            Err(invalid(problems))
        }
    }
}

fn problem(field: &str, message: impl Into<String>) -> ManifestProblem {
    ManifestProblem {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// An absolute https URL with a host and nothing a template would fill.
fn is_https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty()
        && !host.starts_with(':')
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The rules the manifest schema cannot express.
fn rules(file: &str, m: &ProviderManifest) -> Vec<ManifestProblem> {
    let mut out = Vec::new();
    file_name_rules(file, m, &mut out);
    auth_rules(m, &mut out);
    url_rules(m, &mut out);
    let mut required = config_schema_rules(&m.config_schema, &mut out);
    oauth_rules(m, &mut out);
    // Fields the OAuth connection fills in may be used like required ones.
    required.extend(m.oauth.iter().flat_map(|o| o.provides.iter().cloned()));
    template_rules(m, &required, &mut out);
    header_name_rules(m, &mut out);
    api_key_body_rules(m, &mut out);
    sync_rules(m, &mut out);
    out
}

/// Each synced entity's section is well formed, and the config fields its
/// calls use are declared in `config_schema`.
fn sync_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    let declared = m.config_fields();
    for (name, e) in m.sync.iter().flat_map(|s| &s.entities) {
        if let Err(message) = e.check() {
            out.push(problem(&format!("sync.entities.{name}"), message));
        }
        for field in e.config_fields() {
            if !declared.contains(&field) {
                out.push(problem(
                    &format!("sync.entities.{name}"),
                    format!("uses {{config.{field}}}, which config_schema does not declare in properties"),
                ));
            }
        }
    }
}

/// A manifest is in `<code>.json`.
fn file_name_rules(file: &str, m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    let expected_file = format!("{}.json", m.code.to_ascii_lowercase());
    let base_name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    if base_name != expected_file {
        out.push(problem(
            "code",
            format!(
                "the file declaring {} must be named {expected_file} (it is {base_name})",
                m.code
            ),
        ));
    }
}

/// `oauth` exactly for OAUTH2 providers, `api_key` exactly for API_KEY ones.
fn auth_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    match (m.auth_type, &m.oauth) {
        (AuthType::OAuth2, None) => out.push(problem(
            "oauth",
            "is required when auth_type is OAUTH2 (authorize_url, token_url, scopes, refresh_token_rotates)",
        )),
        (AuthType::OAuth2, Some(_)) | (_, None) => {}
        (other, Some(_)) => out.push(problem(
            "oauth",
            format!("must be null or absent when auth_type is {other}"),
        )),
    }
    match (m.auth_type, &m.api_key) {
        (AuthType::ApiKey, None) => out.push(problem(
            "api_key",
            r#"is required when auth_type is API_KEY, e.g. {"in": "header", "name": "X-Api-Key"}"#,
        )),
        (AuthType::ApiKey, Some(_)) | (_, None) => {}
        (other, Some(_)) => out.push(problem(
            "api_key",
            format!("must be null or absent when auth_type is {other}"),
        )),
    }
}

/// Every URL is absolute https; the authorization-code grant has an
/// authorize URL.
fn url_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    for (field, url) in [
        ("base_url", Some(&m.base_url)),
        ("documentation_url", Some(&m.documentation_url)),
    ]
    .into_iter()
    .chain(m.oauth.iter().flat_map(|o| {
        [
            ("oauth.authorize_url", o.authorize_url.as_ref()),
            ("oauth.token_url", Some(&o.token_url)),
            ("oauth.revoke_url", o.revoke_url.as_ref()),
            (
                "oauth.tenant_discovery_url",
                o.tenant_discovery_url.as_ref(),
            ),
        ]
    })) {
        if let Some(url) = url
            && !is_https_url(url)
        {
            out.push(problem(
                field,
                format!("must be an absolute https URL without placeholders (got {url:?})"),
            ));
        }
    }
    if let Some(oauth) = &m.oauth
        && oauth.grant_type == GrantType::AuthorizationCode
        && oauth.authorize_url.is_none()
    {
        out.push(problem(
            "oauth.authorize_url",
            "is required for the AUTHORIZATION_CODE grant",
        ));
    }
}

/// An OAUTH2 manifest's config schema declares the OAuth URL overrides
/// (string, format uri), and every field its connection `provides` is a
/// declared config field.
fn oauth_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    let Some(oauth) = &m.oauth else {
        return;
    };
    let properties = m.config_schema.get("properties").and_then(Value::as_object);
    for field in [OAUTH_AUTHORIZE_URL_FIELD, OAUTH_TOKEN_URL_FIELD] {
        let ok = properties.and_then(|p| p.get(field)).is_some_and(|b| {
            b.get("type").and_then(Value::as_str) == Some("string")
                && b.get("format").and_then(Value::as_str) == Some("uri")
        });
        if !ok {
            out.push(problem(
                &format!("config_schema.properties.{field}"),
                r#"must be declared as {"type": "string", "format": "uri"} on OAUTH2 providers, so every integration can override the OAuth URLs"#,
            ));
        }
    }
    for name in &oauth.provides {
        if !properties.is_some_and(|p| p.contains_key(name)) {
            out.push(problem(
                "oauth.provides",
                format!("names {name:?}, which config_schema does not declare in properties"),
            ));
        }
    }
}

/// Templates parse, and every `{config.x}` they use is a required config
/// field or one the OAuth connection provides.
fn template_rules(m: &ProviderManifest, required: &[String], out: &mut Vec<ManifestProblem>) {
    let mut check_template = |field: String, text: &str, syntax: Syntax| {
        match template::config_fields(text, syntax) {
            Err(message) => out.push(problem(&field, message)),
            Ok(names) => {
                for name in names {
                    if !required.iter().any(|r| r == name) {
                        out.push(problem(
                            &field,
                            format!(
                                "uses {{config.{name}}}, so config_schema must list {name:?} in properties and required (or oauth.provides must name it)"
                            ),
                        ));
                    }
                }
            }
        }
    };
    check_template(
        "test_call.path".to_owned(),
        &m.test_call.path,
        Syntax::Strict,
    );
    for (name, value) in &m.default_headers {
        check_template(format!("default_headers.{name}"), value, Syntax::Strict);
    }
    for (name, value) in &m.test_call.headers {
        check_template(format!("test_call.headers.{name}"), value, Syntax::Strict);
    }
    if let Some(body) = &m.test_call.body {
        check_template("test_call.body".to_owned(), body, Syntax::Body);
    }
}

/// Header names are valid HTTP header names.
fn header_name_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    for (prefix, headers) in [
        ("default_headers", &m.default_headers),
        ("test_call.headers", &m.test_call.headers),
    ] {
        for name in headers.keys().filter(|n| !is_header_name(n)) {
            out.push(problem(
                &format!("{prefix}.{name}"),
                "is not a valid HTTP header name",
            ));
        }
    }
}

/// The test call's body holds `{api_key}` exactly when the key goes in the body.
fn api_key_body_rules(m: &ProviderManifest, out: &mut Vec<ManifestProblem>) {
    let body_has_key = m
        .test_call
        .body
        .as_deref()
        .and_then(|b| template::parse(b, Syntax::Body).ok())
        .is_some_and(|segs| segs.contains(&template::Segment::ApiKey));
    let key_in_body = m
        .api_key
        .as_ref()
        .is_some_and(|k| k.location == KeyLocation::Body);
    if key_in_body && !body_has_key {
        out.push(problem(
            "test_call.body",
            "must contain {api_key} because api_key.in is \"body\"",
        ));
    }
    if body_has_key && !key_in_body {
        out.push(problem(
            "test_call.body",
            "may contain {api_key} only when api_key.in is \"body\"",
        ));
    }
}

/// Checks the shape every config schema must have; returns its required
/// field names.
fn config_schema_rules(schema: &Value, out: &mut Vec<ManifestProblem>) -> Vec<String> {
    const AT: &str = "config_schema";
    if let Some(draft) = schema.get("$schema")
        && draft.as_str() != Some(CONFIG_SCHEMA_DRAFT)
    {
        out.push(problem(
            &format!("{AT}.$schema"),
            format!("must be {CONFIG_SCHEMA_DRAFT:?} or absent (got {draft})"),
        ));
    }
    if let Err(message) = crate::manifest::compile_config_schema(schema) {
        out.push(problem(
            AT,
            format!("is not a valid JSON Schema (draft 2020-12): {message}"),
        ));
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        out.push(problem(&format!("{AT}.type"), "must be \"object\""));
    }
    if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        out.push(problem(
            &format!("{AT}.additionalProperties"),
            "must be false, so a mistyped config field is an error rather than ignored",
        ));
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let base_url = properties.and_then(|p| p.get(BASE_URL_FIELD));
    let base_ok = base_url.is_some_and(|b| {
        b.get("type").and_then(Value::as_str) == Some("string")
            && b.get("format").and_then(Value::as_str) == Some("uri")
    });
    if !base_ok {
        out.push(problem(
            &format!("{AT}.properties.{BASE_URL_FIELD}"),
            r#"must be declared as {"type": "string", "format": "uri"} so every integration can override the base URL"#,
        ));
    }
    let required: Vec<String> = match schema.get("required") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => Vec::new(), // the compile check above reports it
    };
    for name in &required {
        if name == BASE_URL_FIELD {
            out.push(problem(
                &format!("{AT}.required"),
                "must not list base_url: the override is optional",
            ));
        } else if !properties.is_some_and(|p| p.contains_key(name)) {
            out.push(problem(
                &format!("{AT}.required"),
                format!("lists {name:?}, which is not declared in properties"),
            ));
        }
    }
    required
}
