//! `{config.<field>}` placeholders in test-call paths, header values and
//! bodies, and the encodings applied when they are filled.

use serde_json::Value;

/// Why a placeholder could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The config has no value for a field the template names.
    #[error(
        "config.{field}: missing, but the provider's {place} needs it; set it in the integration's config"
    )]
    MissingField {
        /// Config field name (without the `config.` prefix).
        field: String,
        /// Where the placeholder sits: `path`, `header <name>` or `body`.
        place: String,
    },
    /// The config value is an object, array or null, which has no text form.
    #[error("config.{field}: must be a string, number or boolean to be used in the {place}")]
    NotScalar {
        /// Config field name.
        field: String,
        /// Where the placeholder sits.
        place: String,
    },
    /// A header value would contain CR, LF or another control character.
    #[error("config.{field}: must not contain control characters when used in the {place}")]
    ControlCharacter {
        /// Config field name.
        field: String,
        /// Where the placeholder sits.
        place: String,
    },
    /// The body needs `{api_key}` but no key was given.
    #[error("the request body needs the API key, but none was given")]
    MissingApiKey,
    /// The template itself is malformed (caught when the catalog loads, so
    /// only seen for manifests built by hand).
    #[error("malformed template {template:?}: {message}")]
    Template {
        /// The template text.
        template: String,
        /// What is wrong with it.
        message: String,
    },
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text copied as is.
    Literal(&'a str),
    /// `{config.<name>}`.
    Config(&'a str),
    /// `{api_key}` (bodies only).
    ApiKey,
}

/// How strictly braces are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Paths and header values: every `{` must open a `{config.<name>}`.
    Strict,
    /// Bodies (XML, JSON): only `{config.<name>}` and `{api_key}` are
    /// placeholders; other braces are text.
    Body,
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `template` into literal text and placeholders.
pub(crate) fn parse(template: &str, syntax: Syntax) -> Result<Vec<Segment<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut literal_start = 0usize;
    let mut pos = 0usize;
    while let Some(open) = rest.find('{') {
        let at = pos + open;
        let after = &template[at + 1..];
        let close = after.find('}');
        let inner = close.map(|c| &after[..c]);
        let segment = match inner {
            Some("api_key") if syntax == Syntax::Body => Some(Segment::ApiKey),
            Some(inner) => match inner.strip_prefix("config.") {
                Some(name) if is_field_name(name) => Some(Segment::Config(name)),
                Some(name) => {
                    return Err(format!(
                        "placeholder {{config.{name}}} must name a config field (letters, digits, _)"
                    ));
                }
                None if syntax == Syntax::Strict => {
                    return Err(format!(
                        "unknown placeholder {{{inner}}}; only {{config.<field>}} is allowed here"
                    ));
                }
                None => None,
            },
            None if syntax == Syntax::Strict => {
                return Err("'{' without a closing '}'".to_owned());
            }
            None => None,
        };
        match (segment, close) {
            (Some(segment), Some(c)) => {
                if literal_start < at {
                    out.push(Segment::Literal(&template[literal_start..at]));
                }
                out.push(segment);
                pos = at + 1 + c + 1;
                literal_start = pos;
            }
            _ => pos = at + 1,
        }
        rest = &template[pos..];
    }
    if literal_start < template.len() {
        out.push(Segment::Literal(&template[literal_start..]));
    }
    let stray_close = out
        .iter()
        .any(|s| matches!(s, Segment::Literal(text) if text.contains('}')));
    if syntax == Syntax::Strict && stray_close {
        return Err("'}' without an opening '{'".to_owned());
    }
    Ok(out)
}

/// The config field names a template refers to, in order of appearance.
pub(crate) fn config_fields(template: &str, syntax: Syntax) -> Result<Vec<&str>, String> {
    Ok(parse(template, syntax)?
        .into_iter()
        .filter_map(|s| match s {
            Segment::Config(name) => Some(name),
            _ => None,
        })
        .collect())
}

/// Text form of a scalar config value.
pub(crate) fn scalar_text(config: &Value, field: &str, place: &str) -> Result<String, RenderError> {
    match config.get(field) {
        None => Err(RenderError::MissingField {
            field: field.to_owned(),
            place: place.to_owned(),
        }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(RenderError::NotScalar {
            field: field.to_owned(),
            place: place.to_owned(),
        }),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value
/// is safe in any path segment or query parameter.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes the five XML special characters.
pub(crate) fn xml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for use inside a JSON string literal (without the quotes).
pub(crate) fn json_escape(value: &str) -> String {
    let quoted = Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_templates_find_config_placeholders() {
        let segs = parse(
            "/v3/company/{config.realm_id}/x?y={config.n}",
            Syntax::Strict,
        )
        .unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Literal("/v3/company/"),
                Segment::Config("realm_id"),
                Segment::Literal("/x?y="),
                Segment::Config("n"),
            ]
        );
    }

    #[test]
    fn strict_templates_reject_stray_braces_and_unknown_placeholders() {
        assert!(parse("/a/{realm}", Syntax::Strict).is_err());
        assert!(parse("/a/{config.realm", Syntax::Strict).is_err());
        assert!(parse("/a/}", Syntax::Strict).is_err());
        assert!(parse("/a}/{config.x}", Syntax::Strict).is_err());
        assert!(parse("/a/{config.}", Syntax::Strict).is_err());
        assert!(parse("/a/{config.a-b}", Syntax::Strict).is_err());
    }

    #[test]
    fn body_templates_leave_other_braces_alone() {
        let segs = parse(r#"{"k":"{config.a}","s":"{api_key}"}"#, Syntax::Body).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Literal(r#"{"k":""#),
                Segment::Config("a"),
                Segment::Literal(r#"","s":""#),
                Segment::ApiKey,
                Segment::Literal(r#""}"#),
            ]
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(percent_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(xml_escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
        assert_eq!(json_escape("a\"b\n"), "a\\\"b\\n");
    }
}
