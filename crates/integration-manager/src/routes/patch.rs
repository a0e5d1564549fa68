//! Create and update bodies, one way for every resource: the body's fields
//! are [`Patch`]es (absent, `null` or a value), a resource's `input` module
//! turns the body into a validated value collecting every field's error
//! ([`FieldErrors`], one 422 listing them all), and that value is written to
//! the row field by field, recording what changed ([`Changes`]).

use hub_domain::FieldError;
use hub_platform::error::ApiError;
use serde::{Deserialize, Deserializer, Serialize};

/// One field of a create or update body. With `#[serde(default)]` on the
/// field, a field that is not sent is `Absent`, while one sent as `null` is
/// `Null`. (On the field rather than its struct: for a struct's default,
/// utoipa would document every field's default value.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Not sent: the stored value is kept.
    #[default]
    Absent,
    /// Sent as `null`.
    Null,
    /// Sent with a value.
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only called for a field that is present; absence is the default.
        Ok(match Option::<T>::deserialize(d)? {
            None => Self::Null,
            Some(v) => Self::Value(v),
        })
    }
}

impl<T> Patch<T> {
    /// The value sent. `null` keeps the stored value, as absence does:
    /// what every field of the API has done so far (a field is cleared with
    /// its empty value, such as `""`, `[]` or `{}`, where that is allowed).
    pub fn value(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Absent | Self::Null => None,
        }
    }

    /// [`Patch::value`], borrowed.
    pub fn get(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Absent | Self::Null => None,
        }
    }

    /// Whether a value was sent (see [`Patch::value`]).
    pub fn is_set(&self) -> bool {
        self.get().is_some()
    }
}

impl<T: std::ops::Deref> Patch<T> {
    /// [`Patch::get`] dereferenced (`&str` for a `Patch<String>`).
    pub fn as_deref(&self) -> Option<&T::Target> {
        self.get().map(|v| &**v)
    }
}

/// The names of the fields an update changed, in the order they were
/// applied (what the `*.updated` events list as `changed`).
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Changes(Vec<&'static str>);

impl Changes {
    /// Writes `value`, when there is one and it differs, to `slot` and
    /// records `field`; returns whether it did.
    pub fn set<T: PartialEq>(
        &mut self,
        field: &'static str,
        slot: &mut T,
        value: Option<T>,
    ) -> bool {
        match value {
            Some(v) if v != *slot => {
                *slot = v;
                self.0.push(field);
                true
            }
            _ => false,
        }
    }

    /// Records `field` as changed (a secret, which is not compared).
    pub fn push(&mut self, field: &'static str) {
        self.0.push(field);
    }

    /// Whether `field` changed.
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains(&field)
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The errors of a body's fields, in field order: a body is checked whole
/// and answered with one 422 listing every error.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records an error of `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records `e`.
    pub fn add(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// Records several errors.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    /// The value of `result`, or `None` with its error recorded for `field`.
    pub fn check<T, E: Into<String>>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(field, e)).ok()
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` when no error was recorded, else the 422 listing them.
    pub fn or_invalid<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        name: Patch<String>,
        count: Patch<u32>,
    }

    #[test]
    fn absent_null_and_values_are_told_apart() {
        let b: Body = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert_eq!(b.name, Patch::Null);
        assert_eq!(b.count, Patch::Absent);
        let b: Body = serde_json::from_str(r#"{"name": "a", "count": 3}"#).unwrap();
        assert_eq!(b.name, Patch::Value("a".to_owned()));
        assert_eq!(b.name.as_deref(), Some("a"));
        assert_eq!(b.count.value(), Some(3));
        assert!(serde_json::from_str::<Body>(r#"{"count": "x"}"#).is_err());
    }

    #[test]
    fn only_values_that_differ_are_changes() {
        let (mut name, mut count) = ("a".to_owned(), 1);
        let mut c = Changes::default();
        assert!(!c.set("name", &mut name, Some("a".to_owned())));
        assert!(!c.set("count", &mut count, None));
        assert!(c.set("count", &mut count, Some(2)));
        assert_eq!(
            (count, c.contains("count"), c.contains("name")),
            (2, true, false)
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!(["count"])
        );
    }
}
