//! Tenant name and slug, validated once.

use crate::FieldError;
use serde::Serialize;

/// A tenant's display name: 1–200 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// Parses a name, trimming surrounding whitespace.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        if s.chars().count() > 200 {
            return Err(FieldError::new("name", "must be at most 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's slug, used in public URLs (`/webhooks/{tenant}/{path}`):
/// 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`,
/// and not a UUID (so a slug and an id can never be confused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw;
        let err = |m: &str| Err(FieldError::new("slug", m));
        if s.is_empty() || s.len() > 63 {
            return err("must be 1 to 63 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return err(
                "may contain only lowercase letters, digits and '-' (e.g. \"acme-freight\")",
            );
        }
        if s.starts_with('-') || s.ends_with('-') {
            return err("must not start or end with '-'");
        }
        if uuid::Uuid::parse_str(s).is_ok() {
            return err("must not be a UUID");
        }
        Ok(Self(s.to_owned()))
    }
    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slug_rules() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-freight-2").is_ok());
        for bad in [
            "",
            "-acme",
            "acme-",
            "Acme",
            "acme freight",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(
                TenantSlug::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(TenantSlug::parse(&uuid::Uuid::nil().to_string()).is_err());
    }

    #[test]
    fn name_rules() {
        assert_eq!(TenantName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(201)).is_err());
        assert!(TenantName::parse("a\u{0}b").is_err());
    }

    proptest! {
        #[test]
        fn valid_slugs_roundtrip(s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?") {
            prop_assume!(uuid::Uuid::parse_str(&s).is_err());
            let slug = TenantSlug::parse(&s).unwrap();
            prop_assert_eq!(slug.as_str(), s.as_str());
        }

        #[test]
        fn slug_parse_never_panics(s in "\\PC{0,80}") {
            let _ = TenantSlug::parse(&s);
        }
    }
}
