//! Turns `jsonschema` errors into one issue per field, with a field path a
//! person can read (`config.realm_id`, `oauth.token_url`, `entities[2]`).

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use serde_json::Value;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// Dotted path from `root` (`config.realm_id`, `test_call.path`).
    pub field: String,
    /// Stable machine code (`required`, `type`, `unknown_property`, …).
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Whether a message may quote the offending value. Configs may hold data a
/// tenant would not want echoed into logs; manifests are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    Values,
    NoValues,
}

fn push_property(out: &mut String, name: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(name);
}

/// `root` + the instance location, as `root.a[0].b`; `fallback` when both
/// are empty.
pub(crate) fn field_path(root: &str, location: &Location, fallback: &str) -> String {
    let mut out = root.to_owned();
    for segment in location.iter() {
        match segment {
            LocationSegment::Property(name) => push_property(&mut out, &name),
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

fn child(parent: &str, name: &str) -> String {
    let mut out = parent.to_owned();
    push_property(&mut out, name);
    out
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn list(values: &Value) -> String {
    match values {
        Value::Array(items) => items.iter().map(short).collect::<Vec<_>>().join(", "),
        other => short(other),
    }
}

fn snake(keyword: &str) -> String {
    let mut out = String::with_capacity(keyword.len() + 4);
    for c in keyword.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        }
    }
    out
}

/// Maps every error of a validation run to issues, sorted by field then code.
pub(crate) fn issues<'a>(
    errors: impl Iterator<Item = ValidationError<'a>>,
    root: &str,
    fallback: &str,
    echo: Echo,
) -> Vec<Issue> {
    let mut out = Vec::new();
    for error in errors {
        let at = field_path(root, error.instance_path(), fallback);
        let got = match echo {
            Echo::Values => format!(" (got {})", short(error.instance())),
            Echo::NoValues => String::new(),
        };
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_owned);
                let field = if at == fallback {
                    child(root, &name)
                } else {
                    child(&at, &name)
                };
                out.push(Issue {
                    field,
                    code: "required".to_owned(),
                    message: "is required".to_owned(),
                });
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let parent = if at == fallback {
                    root.to_owned()
                } else {
                    at.clone()
                };
                for name in unexpected {
                    out.push(Issue {
                        field: child(&parent, name),
                        code: "unknown_property".to_owned(),
                        message: "is not an allowed field".to_owned(),
                    });
                }
            }
            kind => {
                let (code, message) = describe(kind, &got).unwrap_or_else(|| {
                    let message = match echo {
                        Echo::Values => error.to_string(),
                        Echo::NoValues => error.masked().to_string(),
                    };
                    (snake(kind.keyword()), message)
                });
                out.push(Issue {
                    field: at,
                    code,
                    message,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.field, &a.code).cmp(&(&b.field, &b.code)));
    out.dedup();
    out
}

/// The code and message of a keyword whose failure says all in a sentence
/// (`got` is the offending value's echo, or nothing); `None` for the others.
fn describe(kind: &ValidationErrorKind, got: &str) -> Option<(String, String)> {
    let (code, message) = match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            ("type", format!("must be of type {expected}{got}"))
        }
        ValidationErrorKind::Enum { options } => {
            ("enum", format!("must be one of {}{got}", list(options)))
        }
        ValidationErrorKind::Constant { expected_value } => {
            ("const", format!("must be {}{got}", short(expected_value)))
        }
        ValidationErrorKind::Format { format } => {
            ("format", format!("must be a valid {format}{got}"))
        }
        ValidationErrorKind::Pattern { pattern } => {
            ("pattern", format!("must match the pattern {pattern}{got}"))
        }
        ValidationErrorKind::MinLength { limit } => (
            "min_length",
            format!("must be at least {limit} characters long{got}"),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            "max_length",
            format!("must be at most {limit} characters long{got}"),
        ),
        ValidationErrorKind::Minimum { limit } => {
            ("minimum", format!("must be at least {limit}{got}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            ("maximum", format!("must be at most {limit}{got}"))
        }
        ValidationErrorKind::MinItems { limit } => {
            ("min_items", format!("must have at least {limit} items"))
        }
        ValidationErrorKind::MaxItems { limit } => {
            ("max_items", format!("must have at most {limit} items"))
        }
        ValidationErrorKind::UniqueItems => ("unique_items", "must not repeat items".to_owned()),
        _ => return None,
    };
    Some((code.to_owned(), message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, instance: Value) -> Vec<Issue> {
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        issues(
            validator.iter_errors(&instance),
            "config",
            "config",
            Echo::NoValues,
        )
    }

    #[test]
    fn nested_paths_and_indices_are_readable() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "string"}}}}}
        });
        let got = run(schema, json!({"a": [{"b": "x"}, {"b": 5}]}));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "config.a[1].b");
        assert_eq!(got[0].code, "type");
        assert_eq!(got[0].message, "must be of type string");
    }

    #[test]
    fn a_non_object_root_is_reported_on_the_root() {
        let got = run(json!({"type": "object"}), json!(3));
        assert_eq!(got[0].field, "config");
        assert_eq!(got[0].code, "type");
    }

    #[test]
    fn keywords_without_a_mapping_become_snake_case_codes() {
        assert_eq!(snake("multipleOf"), "multiple_of");
        assert_eq!(snake("$ref"), "ref");
    }
}
