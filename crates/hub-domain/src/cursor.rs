//! Opaque list cursors. A cursor encodes the last id of a page; lists are
//! ordered by UUIDv7 id, so "after this id" is a stable keyset position.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// Default and maximum page sizes of every list (design section 6).
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 200;

/// Encodes the position after `last_id`.
pub fn encode(last_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(last_id.as_bytes())
}

/// Decodes a cursor; `None` when it was not made by [`encode`].
pub fn decode(cursor: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Uuid::from_slice(&bytes).ok()
}

/// Validates a requested page size.
pub fn limit(requested: Option<u32>) -> Result<u32, crate::FieldError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(crate::FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(bytes in any::<[u8; 16]>()) {
            let id = Uuid::from_bytes(bytes);
            prop_assert_eq!(decode(&encode(id)), Some(id));
        }
        #[test]
        fn decode_never_panics(s in "\\PC{0,60}") {
            let _ = decode(&s);
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
    }
}
