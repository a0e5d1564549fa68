//! API keys: random secrets shown once, stored as a SHA-256 hash.
//!
//! A key looks like `hub_<43 base64url chars>` (32 random bytes). The keys are
//! high-entropy, so a fast hash is the right tool: it cannot be brute-forced,
//! and lookups stay a single indexed equality.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

const PREFIX: &str = "hub_";
const SECRET_BYTES: usize = 32;

/// An API key secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

/// The SHA-256 of an API key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeySecret {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Parses a presented key; `None` when it cannot be one of ours (so the
    /// database is not asked about arbitrary strings).
    pub fn parse(raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(PREFIX)?;
        let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
        (decoded.len() == SECRET_BYTES).then(|| Self(raw.to_owned()))
    }

    /// The secret itself: only for showing once at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters, safe to show and log, to recognise a key.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(PREFIX.len() + 8).collect()
    }

    /// The hash stored in place of the key.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let k = ApiKeySecret::generate();
        let parsed = ApiKeySecret::parse(k.expose()).expect("own keys parse");
        assert_eq!(parsed.hash(), k.hash());
        assert_ne!(ApiKeySecret::generate().hash(), k.hash());
        assert!(k.display_prefix().starts_with("hub_"));
        assert_eq!(k.display_prefix().len(), 12);
    }

    #[test]
    fn debug_redacts() {
        let k = ApiKeySecret::generate();
        assert!(!format!("{k:?}").contains(&k.expose()[4..]));
    }

    #[test]
    fn foreign_strings_are_not_keys() {
        for bad in ["", "hub_", "hub_abc", "sk_live_123", "hub_!!!!"] {
            assert!(ApiKeySecret::parse(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = ApiKeySecret::parse(&s);
        }
    }
}
