//! Secrets at rest: AES-256-GCM with a key id, so keys can rotate.
//!
//! A sealed value is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The
//! key id is derived from the key (first 8 hex digits of its SHA-256), so
//! configuration only lists keys. Each value is bound to a context string
//! (associated data, e.g. `integration:<id>:credentials`), so a ciphertext
//! copied into another row does not decrypt there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

const VERSION: &str = "v1";

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not a value this module sealed.
    #[error("not a sealed secret")]
    Malformed,
    /// Sealed with a key that is neither current nor listed as old.
    #[error("sealed with unknown key {0}; add it to INTEGRATION_ENCRYPTION_KEYS_OLD")]
    UnknownKey(String),
    /// Tampered with, or sealed for another context.
    #[error("secret failed authentication")]
    Tampered,
}

/// The keys: one current (seals and opens), older ones (open only).
#[derive(Clone)]
pub struct Keyring {
    current: (String, Aes256Gcm),
    old: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keyring(current {}, {} old)",
            self.current.0,
            self.old.len()
        )
    }
}

/// The id of a key: first 8 hex digits of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest(key);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Keyring {
    /// A keyring with `current` and older `old` keys.
    pub fn new(current: &[u8; 32], old: &[[u8; 32]]) -> Self {
        let make = |k: &[u8; 32]| (key_id(k), Aes256Gcm::new(k.into()));
        Self {
            current: make(current),
            old: old.iter().map(make).collect(),
        }
    }

    /// The current key's id.
    pub fn current_id(&self) -> &str {
        &self.current.0
    }

    /// Seals `plaintext` for `context` under the current key.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .current
            .1
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!(
            "{VERSION}.{}.{}",
            self.current.0,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// Opens a value sealed for `context` with any known key.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretError::Malformed);
        };
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SecretError::Malformed);
        }
        let cipher = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|(k, _)| k == id)
            .map(|(_, c)| c)
            .ok_or_else(|| SecretError::UnknownKey(id.to_owned()))?;
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered)
    }

    /// Whether `sealed` was sealed with an older key (and should be re-sealed).
    pub fn needs_rotation(&self, sealed: &str) -> bool {
        sealed
            .split('.')
            .nth(1)
            .is_some_and(|id| id != self.current.0)
    }
}

/// The last four characters of a secret, the only part ever shown.
pub fn last_four(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    #[test]
    fn seal_open_roundtrip_and_context_binding() {
        let k = Keyring::new(&A, &[]);
        let s = k.seal("integration:1:credentials", b"sk_live_123");
        assert!(s.starts_with(&format!("v1.{}.", key_id(&A))));
        assert!(!s.contains("sk_live_123"));
        assert_eq!(
            k.open("integration:1:credentials", &s).unwrap(),
            b"sk_live_123"
        );
        assert_eq!(
            k.open("integration:2:credentials", &s),
            Err(SecretError::Tampered)
        );
        assert_ne!(k.seal("c", b"x"), k.seal("c", b"x"), "fresh nonce per seal");
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::new(&A, &[]);
        let sealed = old.seal("c", b"secret");
        let rotated = Keyring::new(&B, &[A]);
        assert!(rotated.needs_rotation(&sealed));
        assert_eq!(rotated.open("c", &sealed).unwrap(), b"secret");
        let resealed = rotated.seal("c", &rotated.open("c", &sealed).unwrap());
        assert!(!rotated.needs_rotation(&resealed));
        let only_new = Keyring::new(&B, &[]);
        assert_eq!(
            only_new.open("c", &sealed),
            Err(SecretError::UnknownKey(key_id(&A)))
        );
    }

    #[test]
    fn tampering_is_detected() {
        let k = Keyring::new(&A, &[]);
        let s = k.seal("c", b"secret");
        let mut bytes = s.into_bytes();
        let i = bytes.len() - 3;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert!(k.open("c", &String::from_utf8(bytes).unwrap()).is_err());
        for bad in ["", "v1", "v1.x", "v2.abc.def", "v1.abc.!!!"] {
            assert!(k.open("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_and_last_four() {
        assert!(!format!("{:?}", Keyring::new(&A, &[])).contains("1, 1"));
        assert_eq!(last_four("sk_live_123456"), "3456");
        assert_eq!(last_four("ab"), "ab");
    }

    proptest! {
        #[test]
        fn roundtrip_any(bytes in proptest::collection::vec(any::<u8>(), 0..200), ctx in "\\PC{0,30}") {
            let k = Keyring::new(&A, &[B]);
            prop_assert_eq!(k.open(&ctx, &k.seal(&ctx, &bytes)).unwrap(), bytes);
        }
        #[test]
        fn open_never_panics(s in "\\PC{0,120}") {
            let _ = Keyring::new(&A, &[]).open("c", &s);
        }
    }
}
