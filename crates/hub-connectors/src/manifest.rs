//! What a provider manifest says, and what it can do with an integration's
//! `config`: validate it against the provider's JSON Schema and fill the
//! test call's placeholders from it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema_errors::{self, Echo};
use crate::template::{self, RenderError, Segment, Syntax};

/// One provider of the catalog, as written in `providers/<code>.json`.
///
/// Field names match the `integration_providers` columns where there is one
/// (`oauth` is the `oauth_config` column; `capabilities.*` and `rate_limit.*`
/// are the flattened `supports_*` and `rate_limit_*` columns). A manifest
/// returned by [`crate::catalog()`] has passed every check of the catalog, so
/// its URLs are https, its `config_schema` compiles and its placeholders name
/// required config fields or fields its OAuth connection provides
/// (`oauth.provides`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderManifest {
    /// Stable upper-case code (`QUICKBOOKS`), at most 50 characters; the
    /// manifest's file is `providers/<code in lower case>.json`.
    pub code: String,
    /// Display name (`KeepTruckin (Motive)`).
    pub name: String,
    /// Marketplace category.
    pub category: Category,
    /// One-paragraph description for the marketplace.
    pub description: String,
    /// How requests are authenticated.
    pub auth_type: AuthType,
    /// OAuth 2.0 endpoints and behaviour; present if and only if
    /// `auth_type` is `OAUTH2`.
    #[serde(default)]
    pub oauth: Option<OAuthConfig>,
    /// Where the API key goes; present if and only if `auth_type` is `API_KEY`.
    #[serde(default)]
    pub api_key: Option<ApiKeyPlacement>,
    /// Default https base URL; paths of calls are relative to it. An
    /// integration's `config.base_url` replaces it (see [`Self::base_url_for`]).
    pub base_url: String,
    /// Version of the provider API the manifest was written against.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Public documentation of the provider's API.
    pub documentation_url: String,
    /// Headers sent with every call; values may hold `{config.<field>}`
    /// placeholders (Xero's `xero-tenant-id`), filled by [`Self::render_headers`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_headers: BTreeMap<String, String>,
    /// What the connector can do.
    pub capabilities: Capabilities,
    /// The provider's documented limit for one integration.
    pub rate_limit: RateLimit,
    /// Whether tenants may create integrations for it.
    pub status: ProviderStatus,
    /// JSON Schema (draft 2020-12) for the integration's `config`. Always an
    /// object schema with `additionalProperties: false` and an optional
    /// `base_url` (string, format uri).
    pub config_schema: Value,
    /// The call that tests a connection.
    pub test_call: TestCall,
    /// Notes for engineers (what is approximate, what to correct); not shown
    /// to tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// How its entities are synced (`crate::sync`), when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::sync::SyncSpec>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and database form (`LOAD_BOARD`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownValue {
                        what: stringify!($name),
                        got: s.to_owned(),
                        allowed: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

/// A string that is not one of an enum's wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {got:?} is not one of {}", allowed.join(", "))]
pub struct UnknownValue {
    /// The enum's name.
    pub what: &'static str,
    /// The value given.
    pub got: String,
    /// The values allowed.
    pub allowed: Vec<&'static str>,
}

wire_enum! {
    /// Marketplace category (`integration_providers.category`).
    Category {
        /// Load boards (DAT, Truckstop, 123Loadboard).
        LoadBoard = "LOAD_BOARD",
        /// Accounting (QuickBooks, Xero, Sage).
        Accounting = "ACCOUNTING",
        /// ELD and telematics (KeepTruckin, Samsara, Omnitracs).
        Eld = "ELD",
        /// CRM (HubSpot, Salesforce, Zoho).
        Crm = "CRM",
        /// Rating engines (in the spec's column comment; none shipped yet).
        Rating = "RATING",
        /// Market and news intelligence (NewsAPI, Alpha Vantage).
        Intel = "INTEL",
    }
}

wire_enum! {
    /// How requests are authenticated (`integration_providers.auth_type`).
    AuthType {
        /// A static key placed as [`ApiKeyPlacement`] says.
        ApiKey = "API_KEY",
        /// OAuth 2.0 access tokens, per [`OAuthConfig`].
        OAuth2 = "OAUTH2",
        /// HTTP basic user and password.
        Basic = "BASIC",
        /// No credentials.
        None = "NONE",
    }
}

wire_enum! {
    /// Whether tenants may use a provider (`integration_providers.status`).
    ProviderStatus {
        /// Available.
        Active = "ACTIVE",
        /// Still works for existing integrations; not offered for new ones.
        Deprecated = "DEPRECATED",
        /// Listed in the marketplace, not yet usable.
        ComingSoon = "COMING_SOON",
    }
}

wire_enum! {
    /// OAuth 2.0 grant used to obtain the first token.
    GrantType {
        /// Browser redirect to `authorize_url`, then a code exchange.
        AuthorizationCode = "AUTHORIZATION_CODE",
        /// Client id and secret only.
        ClientCredentials = "CLIENT_CREDENTIALS",
        /// User name and password (DAT's organization token).
        Password = "PASSWORD",
    }
}

wire_enum! {
    /// Where an API key goes.
    KeyLocation {
        /// A request header named `name`.
        Header = "header",
        /// A query parameter named `name`.
        Query = "query",
        /// Inside the request body, where the body template says `{api_key}`
        /// (XML gateways such as Sage Intacct).
        Body = "body",
    }
}

wire_enum! {
    /// HTTP method of a test call (each variant is the method it names).
    Method {
        Get = "GET", Post = "POST", Put = "PUT", Patch = "PATCH", Delete = "DELETE", Head = "HEAD",
    }
}

/// OAuth 2.0 endpoints and the provider's token behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The grant used to obtain the first token.
    pub grant_type: GrantType,
    /// Consent page (authorization code grant only).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Token endpoint (code exchange and refresh).
    pub token_url: String,
    /// Token revocation endpoint, if the provider has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// How scopes are joined in the `scope` parameter (default one space).
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    /// Extra query parameters for the consent page (Zoho's
    /// `access_type=offline`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorize_params: BTreeMap<String, String>,
    /// What precedes the access token in `Authorization` (default
    /// `"Bearer "`; Zoho wants `"Zoho-oauthtoken "`).
    #[serde(default = "default_token_prefix")]
    pub token_prefix: String,
    /// Each refresh returns a new refresh token and retires the old one: the
    /// new one must be stored before it is used, or the integration is
    /// locked out.
    pub refresh_token_rotates: bool,
    /// Lifetime of an access token, when the provider documents one.
    #[serde(default)]
    pub access_token_ttl_seconds: Option<u64>,
    /// Lifetime of a refresh token, when it has one.
    #[serde(default)]
    pub refresh_token_ttl_seconds: Option<u64>,
    /// Name of a token-response field that holds the API base URL for this
    /// connection (Salesforce `instance_url`, Zoho `api_domain`); it replaces
    /// `base_url` unless `config.base_url` is set.
    #[serde(default)]
    pub api_base_from_token: Option<String>,
    /// Where the tenants (organisations) a token may act for are listed
    /// (Xero's `GET /connections`).
    #[serde(default)]
    pub tenant_discovery_url: Option<String>,
    /// The provider documents PKCE (RFC 7636, `S256`) for the authorization
    /// code grant; the hub sends a challenge and its verifier. (Sending one
    /// to a provider that ignores it is harmless; this marks the ones known
    /// to check it.)
    #[serde(default)]
    pub pkce: bool,
    /// How the client (the OAuth app) authenticates to the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Config fields the OAuth connection fills in (QuickBooks `realm_id`
    /// from the redirect, Xero `xero_tenant_id` from the tenant discovery,
    /// Salesforce `instance_url` from the token answer): templates may use
    /// them although the config schema does not require them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<String>,
    /// The provider's token step is not a standard RFC 6749 grant (DAT's
    /// two-step organization then user token): the hub cannot connect it
    /// until a provider-specific step is written, and says so (409) rather
    /// than sending a generic grant it would refuse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nonstandard_token_flow: bool,
}

wire_enum! {
    /// How the OAuth client authenticates to the token endpoint (RFC 6749 §2.3.1).
    ClientAuth {
        /// HTTP Basic with the client id and secret (QuickBooks, Xero).
        Basic = "basic",
        /// `client_id` and `client_secret` form fields (HubSpot, Salesforce, Zoho).
        Body = "body",
    }
}

// The wire_enum macro fixes the derive list, so no `#[derive(Default)]`.
#[allow(clippy::derivable_impls)]
impl Default for ClientAuth {
    fn default() -> Self {
        Self::Body
    }
}

/// The config field that overrides a provider's OAuth consent page.
pub const OAUTH_AUTHORIZE_URL_FIELD: &str = "oauth_authorize_url";
/// The config field that overrides a provider's OAuth token endpoint.
pub const OAUTH_TOKEN_URL_FIELD: &str = "oauth_token_url";

impl OAuthConfig {
    /// The consent page for an integration with this `config`
    /// (`config.oauth_authorize_url` wins over the manifest's).
    pub fn authorize_url_for<'a>(&'a self, config: &'a Value) -> Option<&'a str> {
        non_empty(config, OAUTH_AUTHORIZE_URL_FIELD).or(self.authorize_url.as_deref())
    }

    /// The token endpoint for an integration with this `config`
    /// (`config.oauth_token_url` wins over the manifest's).
    pub fn token_url_for<'a>(&'a self, config: &'a Value) -> &'a str {
        non_empty(config, OAUTH_TOKEN_URL_FIELD).unwrap_or(&self.token_url)
    }

    /// The tenant discovery URL for an integration with this `config`: with
    /// `config.base_url` set, the base URL's origin with the discovery URL's
    /// path (so a sandbox or fake answers it), else the manifest's.
    pub fn tenant_discovery_url_for(&self, config: &Value) -> Option<String> {
        let discovery = self.tenant_discovery_url.as_deref()?;
        let Some(base) = non_empty(config, BASE_URL_FIELD) else {
            return Some(discovery.to_owned());
        };
        let (Ok(base), Ok(d)) = (url::Url::parse(base), url::Url::parse(discovery)) else {
            return Some(discovery.to_owned());
        };
        let mut out = base;
        out.set_path(d.path());
        out.set_query(d.query());
        Some(out.to_string())
    }
}

fn non_empty<'a>(config: &'a Value, field: &str) -> Option<&'a str> {
    config
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn default_scope_separator() -> String {
    " ".to_owned()
}

fn default_token_prefix() -> String {
    "Bearer ".to_owned()
}

/// Where an API key goes (`{"in": "header", "name": "X-Api-Key"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyPlacement {
    /// Header, query parameter or body.
    #[serde(rename = "in")]
    pub location: KeyLocation,
    /// Header or parameter name (`Authorization`, `X-Api-Key`, `apikey`).
    pub name: String,
    /// Text before the key (`"Bearer "`), if any.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl ApiKeyPlacement {
    /// The value to send: prefix then key.
    pub fn value(&self, key: &str) -> String {
        format!("{}{key}", self.prefix.as_deref().unwrap_or(""))
    }
}

/// What a connector can do (`supports_*` columns, plus the entities it syncs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// The provider can push events to us.
    pub supports_webhooks: bool,
    /// The provider has batch or bulk endpoints.
    pub supports_batch: bool,
    /// Near-real-time data (positions, feeds).
    pub supports_realtime: bool,
    /// Provider object names the connector reads or writes, as the provider
    /// spells them (`Invoice`, `contacts`, `vehicle_locations`).
    pub entities: Vec<String>,
}

/// The provider's documented limit: `requests` per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_seconds: u32,
}

/// The call that tests a connection, relative to the base URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCall {
    /// HTTP method.
    pub method: Method,
    /// Path and query, starting with `/`; may hold `{config.<field>}`
    /// placeholders, filled URL-encoded by [`ProviderManifest::render_test_path`].
    pub path: String,
    /// Statuses that mean the connection works.
    pub expect_status: Vec<u16>,
    /// Headers for this call on top of `default_headers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body template (`{config.<field>}`, and `{api_key}` when the key
    /// goes in the body), filled by [`ProviderManifest::render_test_body`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Top-level JSON fields whose presence in a success body still means
    /// failure (Alpha Vantage answers 200 with `"Note"` when throttled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_fields: Vec<String>,
}

/// One problem with one field of an integration's `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFieldError {
    /// Path of the field, from `config` (`config.realm_id`, `config.a[0].b`,
    /// or `config` for the whole value).
    pub field: String,
    /// Stable machine code: `required`, `type`, `unknown_property`,
    /// `format`, `pattern`, `enum`, `min_length`, … (the JSON Schema keyword
    /// in snake case when no better name applies).
    pub code: String,
    /// What is wrong, for a person. Never quotes the submitted value.
    pub message: String,
}

impl fmt::Display for ConfigFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The config field that overrides a provider's base URL.
pub const BASE_URL_FIELD: &str = "base_url";

/// Options every config schema is compiled with.
pub(crate) fn compile_config_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

impl ProviderManifest {
    /// Checks `config` against [`Self::config_schema`]; one error per
    /// offending field, sorted by field. An unknown field's message lists the
    /// allowed ones.
    pub fn validate_config(&self, config: &Value) -> Result<(), Vec<ConfigFieldError>> {
        let validator = match compile_config_schema(&self.config_schema) {
            Ok(v) => v,
            Err(message) => {
                // Only reachable for a manifest that did not come from the catalog.
                return Err(vec![ConfigFieldError {
                    field: "config".to_owned(),
                    code: "schema_invalid".to_owned(),
                    message: format!(
                        "the {} provider's config schema does not compile: {message}",
                        self.code
                    ),
                }]);
            }
        };
        let issues = schema_errors::issues(
            validator.iter_errors(config),
            "config",
            "config",
            Echo::NoValues,
        );
        if issues.is_empty() {
            return Ok(());
        }
        let allowed = self.config_fields();
        Err(issues
            .into_iter()
            .map(|issue| {
                let top_level = issue.field.matches('.').count() == 1 && !issue.field.contains('[');
                let message = if issue.code == "unknown_property" && top_level {
                    format!("{}; allowed: {}", issue.message, allowed.join(", "))
                } else {
                    issue.message
                };
                ConfigFieldError {
                    field: issue.field,
                    code: issue.code,
                    message,
                }
            })
            .collect())
    }

    /// Names of the top-level config fields the schema declares, sorted.
    pub fn config_fields(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Names of the config fields the schema requires.
    pub fn required_config_fields(&self) -> Vec<String> {
        self.config_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The base URL for an integration with this `config`, without a trailing
    /// `/`: `config.base_url` if set, else the config field named by
    /// `oauth.api_base_from_token` (Salesforce `instance_url`, Zoho
    /// `api_domain`) if set, else the manifest's `base_url`. A base taken
    /// from a token response sits between the last two and is the HTTP
    /// client's business.
    pub fn base_url_for<'a>(&'a self, config: &'a Value) -> &'a str {
        let from_config = |field: &str| {
            config
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let token_field = self
            .oauth
            .as_ref()
            .and_then(|o| o.api_base_from_token.as_deref());
        from_config(BASE_URL_FIELD)
            .or_else(|| token_field.and_then(from_config))
            .unwrap_or(&self.base_url)
            .trim_end_matches('/')
    }

    /// The test call's path and query with every `{config.<field>}` filled,
    /// each value percent-encoded (RFC 3986 unreserved characters kept).
    pub fn render_test_path(&self, config: &Value) -> Result<String, RenderError> {
        render(
            &self.test_call.path,
            Syntax::Strict,
            config,
            "path",
            template::percent_encode,
        )
    }

    /// `default_headers` then `test_call.headers` (which win), with
    /// placeholders filled. A value with a control character is refused, so
    /// config cannot smuggle a header in.
    pub fn render_headers(&self, config: &Value) -> Result<BTreeMap<String, String>, RenderError> {
        let mut out = BTreeMap::new();
        for (name, value) in self.default_headers.iter().chain(&self.test_call.headers) {
            let place = format!("header {name}");
            let rendered = render(value, Syntax::Strict, config, &place, |text| {
                text.to_owned()
            })?;
            if rendered.chars().any(char::is_control) {
                let field = template::config_fields(value, Syntax::Strict)
                    .ok()
                    .and_then(|f| f.first().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                return Err(RenderError::ControlCharacter { field, place });
            }
            out.insert(name.clone(), rendered);
        }
        Ok(out)
    }

    /// The test call's body, if it has one, with `{config.<field>}` and
    /// `{api_key}` filled. Values are escaped for the body's `Content-Type`
    /// (XML or JSON string content); other types get them verbatim.
    pub fn render_test_body(
        &self,
        config: &Value,
        api_key: Option<&str>,
    ) -> Result<Option<String>, RenderError> {
        let Some(body) = &self.test_call.body else {
            return Ok(None);
        };
        let content_type = self
            .test_call
            .headers
            .iter()
            .chain(&self.default_headers)
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let escape = |text: &str| -> String {
            if content_type.contains("xml") {
                template::xml_escape(text)
            } else if content_type.contains("json") {
                template::json_escape(text)
            } else {
                text.to_owned()
            }
        };
        let segments =
            template::parse(body, Syntax::Body).map_err(|message| RenderError::Template {
                template: body.clone(),
                message,
            })?;
        let mut out = String::with_capacity(body.len());
        for segment in segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Config(field) => {
                    out.push_str(&escape(&template::scalar_text(config, field, "body")?));
                }
                Segment::ApiKey => {
                    out.push_str(&escape(api_key.ok_or(RenderError::MissingApiKey)?))
                }
            }
        }
        Ok(Some(out))
    }
}

fn render(
    text: &str,
    syntax: Syntax,
    config: &Value,
    place: &str,
    encode: impl Fn(&str) -> String,
) -> Result<String, RenderError> {
    let segments = template::parse(text, syntax).map_err(|message| RenderError::Template {
        template: text.to_owned(),
        message,
    })?;
    let mut out = String::with_capacity(text.len());
    for segment in segments {
        match segment {
            Segment::Literal(t) => out.push_str(t),
            Segment::Config(field) => {
                out.push_str(&encode(&template::scalar_text(config, field, place)?));
            }
            Segment::ApiKey => {
                return Err(RenderError::Template {
                    template: text.to_owned(),
                    message: "{api_key} is only allowed in a body".to_owned(),
                });
            }
        }
    }
    Ok(out)
}
