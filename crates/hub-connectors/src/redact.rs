//! Redaction of HTTP exchanges before they are logged (pure: no I/O).
//!
//! What is secret is decided by name (headers, query and form parameters,
//! JSON keys at any depth: [`sensitive_name`]) and by value (the secret
//! values the caller used in the exchange, scrubbed wherever they still
//! appear, also percent-encoded, JSON-escaped and base64-encoded). Every
//! replaced value becomes [`REDACTED`].

use base64::Engine;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secret values shorter than this are not scrubbed by value (they would
/// match everywhere); they are still redacted by name.
pub const MIN_SECRET_LEN: usize = 4;

/// Names that are secret wherever they appear (headers, query, forms, JSON).
const EXACT: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "api_key",
    "x-auth-key",
    "credentials",
    "private_key",
    "client_assertion",
    "assertion",
];

/// Parts of names that make them secret (`x-hub-signature`, `refresh_token`,
/// `client_secret`, `jsessionid`, …).
const CONTAINS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "session",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "credential",
];

/// Names secret only as query or form parameters, where they are OAuth
/// codes and keys (`code=…`, `key=…`); in JSON bodies they are ordinary
/// fields (`"code": "invalid_grant"`).
const PARAM_ONLY: &[&str] = &["key", "code", "sig", "auth", "pass", "pwd"];

/// Whether a header, parameter or JSON key called `name` holds a secret by
/// the built-in rules.
pub fn sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    EXACT.contains(&n.as_str()) || CONTAINS.iter().any(|c| n.contains(c))
}

/// Redacts one exchange's parts: built from the secret values used in it
/// and the extra names that hold secrets (a provider's API-key header or
/// query parameter).
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Every form of every secret value, longest first.
    values: Vec<String>,
    /// Extra secret names, lower case.
    names: Vec<String>,
}

impl Redactor {
    /// A redactor for `secrets` (values; shorter than [`MIN_SECRET_LEN`]
    /// are ignored) and `secret_names` (header/parameter names).
    pub fn new(secrets: &[String], secret_names: &[String]) -> Self {
        let mut values: Vec<String> = Vec::new();
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            values.push(s.clone());
            values.push(url::form_urlencoded::byte_serialize(s.as_bytes()).collect());
            values.push(s.replace(' ', "%20"));
            if let Ok(json) = serde_json::to_string(s) {
                values.push(json[1..json.len() - 1].to_owned());
            }
            values.push(base64::engine::general_purpose::STANDARD.encode(s));
            values.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s));
        }
        values.retain(|v| v.len() >= MIN_SECRET_LEN);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self {
            values,
            names: secret_names
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a header or JSON key called `name` is secret.
    pub fn is_secret(&self, name: &str) -> bool {
        sensitive_name(name) || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether a query or form parameter called `name` is secret.
    pub fn is_secret_param(&self, name: &str) -> bool {
        self.is_secret(name) || PARAM_ONLY.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// `text` with every secret value replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = None::<String>;
        for v in &self.values {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(v.as_str()) {
                out = Some(current.replace(v.as_str(), REDACTED));
            }
        }
        out.unwrap_or_else(|| text.to_owned())
    }

    /// A header's value as logged: [`REDACTED`] for a secret header, else
    /// the value scrubbed.
    pub fn header(&self, name: &str, value: &str) -> String {
        if self.is_secret(name) {
            REDACTED.to_owned()
        } else {
            self.scrub(value)
        }
    }

    /// `url` with its secret query parameters' values and its user info
    /// replaced, then scrubbed.
    pub fn url(&self, url: &str) -> String {
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (url, None),
        };
        let mut out = match before_fragment.split_once('?') {
            Some((base, query)) => format!("{}?{}", strip_userinfo(base), self.params(query)),
            None => strip_userinfo(before_fragment),
        };
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(&self.params(f));
        }
        self.scrub(&out)
    }

    /// `a=1&token=2` with the secret parameters' values replaced (the text
    /// otherwise kept as it was).
    pub fn params(&self, query: &str) -> String {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if self.is_secret_param(&decode(k)) => format!("{k}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A text body as logged: secret fields of a JSON or form body replaced
    /// (by its `content_type`, or by its look when that says nothing), then
    /// scrubbed. Works on a cut body too (the JSON is scanned, not parsed).
    pub fn body(&self, content_type: Option<&str>, body: &str) -> String {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let trimmed = body.trim_start();
        let redacted =
            if ct.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
                self.json(body)
            } else if ct.contains("x-www-form-urlencoded") {
                self.params(body)
            } else {
                body.to_owned()
            };
        self.scrub(&redacted)
    }

    /// JSON text with the string (or scalar) values of secret keys replaced,
    /// at any depth. A token scanner, so invalid or cut JSON is handled as
    /// far as it goes and its formatting is kept.
    pub fn json(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < b.len() {
            if b[i] != b'"' {
                i += 1;
                continue;
            }
            let end = string_end(b, i);
            // A key: the string is followed by `:`.
            let mut j = end;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b':' && self.is_secret(&key_name(&text[i..end])) {
                j += 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let value_end = if j < b.len() && b[j] == b'"' {
                    string_end(b, j)
                } else {
                    scalar_end(b, j)
                };
                if value_end > j {
                    out.push_str(&text[copied..j]);
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                    copied = value_end;
                }
                i = value_end.max(j);
            } else {
                i = end;
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// The name a JSON key (`text`, with its quotes) stands for: its escapes
/// decoded (`"tok\u0065n"` is `token`), or as written when it does not
/// decode (a key cut short).
fn key_name(text: &str) -> std::borrow::Cow<'_, str> {
    let inner = text.strip_prefix('"').unwrap_or(text);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    if !inner.contains('\\') {
        return inner.into();
    }
    serde_json::from_str::<String>(text).map_or(inner.into(), Into::into)
}

/// The index just past the JSON string starting at `start` (a `"`), or the
/// end of the text when it is cut.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The index just past a scalar (number, `true`, `null`) or, for an object
/// or array, the index of its start (left alone: its keys are scanned).
fn scalar_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b'{' | b'[') {
        i += 1;
    }
    if i < b.len() && matches!(b[i], b'{' | b'[') && i == start {
        return start;
    }
    // Trailing whitespace stays outside the replaced value.
    while i > start && b[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    i
}

/// `scheme://user:password@host/…` without the user info.
fn strip_userinfo(base: &str) -> String {
    if let Some((scheme, rest)) = base.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]);
        }
    }
    base.to_owned()
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// The text of a body as stored: `None` when it is not text (not UTF-8,
/// except for a multi-byte character cut at its end, which is dropped).
pub fn text_of(body: &[u8]) -> Option<&str> {
    match std::str::from_utf8(body) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

/// `text` cut to at most `max` bytes on a character boundary; the second
/// value is how many bytes were cut.
pub fn cap(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str], names: &[&str]) -> Redactor {
        Redactor::new(
            &secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn secret_headers_are_replaced_by_name() {
        let r = r(&[], &["X-Custom-Key"]);
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "x-api-key",
            "api-key",
            "apikey",
            "x-csrf-token",
            "x-hub-signature-256",
            "x-session-id",
            "x-client-secret",
            "x-custom-key",
        ] {
            assert_eq!(r.header(name, "value-1"), REDACTED, "{name}");
        }
        assert_eq!(r.header("content-type", "text/plain"), "text/plain");
        assert_eq!(
            r.header("x-key", "k"),
            "k",
            "`key` alone is a parameter rule"
        );
    }

    #[test]
    fn query_parameters_and_user_info_are_replaced() {
        let r = r(&[], &["hapikey"]);
        let u = r.url(
            "https://u:pw@api.example.com/v1/x?q=1&api_key=A1&key=B2&access_token=C3&code=D4&client_secret=E5&hapikey=F6&page=2#access_token=G7",
        );
        for v in ["pw", "A1", "B2", "C3", "D4", "E5", "F6", "G7"] {
            assert!(!u.contains(v), "{v} in {u}");
        }
        assert!(u.starts_with("https://[redacted]@api.example.com/v1/x?q=1&"));
        assert!(u.contains("page=2"));
        assert!(r.url("/p?Refresh%5FToken=abc").ends_with("=[redacted]"));
    }

    #[test]
    fn json_secret_keys_are_replaced_at_any_depth() {
        let r = r(&[], &[]);
        let body = r#"{"a":1,"access_token":"t1","nested":{"refresh_token" : "t2","list":[{"password":"p3"},{"client_secret":12345}]},"id_token":null,"code":"invalid_grant","api_key":"k\"4"}"#;
        let out = r.json(body);
        for v in ["t1", "t2", "p3", "12345", "k\\\"4"] {
            assert!(!out.contains(v), "{v} in {out}");
        }
        assert!(out.contains(r#""code":"invalid_grant""#), "{out}");
        assert!(out.contains(r#""a":1"#));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["nested"]["list"][0]["password"], REDACTED);
        // A cut body is handled as far as it goes.
        let cut = r.json(r#"{"x":"1","token":"abcdef"#);
        assert!(!cut.contains("abcdef"), "{cut}");
    }

    #[test]
    fn form_bodies_are_redacted_by_parameter_name() {
        let r = r(&[], &[]);
        let out = r.body(
            Some("application/x-www-form-urlencoded"),
            "grant_type=authorization_code&code=C0DE&client_secret=S3CR3T&redirect_uri=x",
        );
        assert_eq!(
            out,
            "grant_type=authorization_code&code=[redacted]&client_secret=[redacted]&redirect_uri=x"
        );
    }

    #[test]
    fn secret_values_are_scrubbed_in_every_form() {
        let r = r(&["s3cr et/val", "abc"], &[]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("s3cr et/val");
        let text =
            format!("raw s3cr et/val enc s3cr+et%2Fval pct s3cr%20et/val b64 {b64} short abc");
        let out = r.scrub(&text);
        assert!(!out.contains("s3cr"), "{out}");
        assert!(!out.contains(&b64));
        assert!(out.contains("abc"), "values under 4 characters are kept");
        assert_eq!(
            r.url("https://h/p?x=s3cr%20et/val"),
            "https://h/p?x=[redacted]"
        );
    }

    #[test]
    fn bodies_are_capped_on_a_character_boundary_and_binary_is_detected() {
        assert_eq!(cap("héllo", 2), ("h", 5));
        assert_eq!(cap("abc", 10), ("abc", 0));
        assert_eq!(text_of(&[0xff, 0x00, 0x01]), None);
        assert_eq!(text_of("hé".as_bytes()), Some("hé"));
        // A character cut at the end (a capped response) is still text.
        assert_eq!(text_of(&"hé".as_bytes()[..2]), Some("h"));
    }
}
