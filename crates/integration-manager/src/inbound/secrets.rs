//! Endpoint signing secrets: sealed at rest with the platform keyring, bound
//! to their endpoint and field, re-sealed by `rotate-key`.

use hub_domain::secret::{Keyring, SecretError};
use hub_storage::webhook_endpoints::{Endpoint, SealedSecrets};
use uuid::Uuid;

fn ctx(id: Uuid, what: &str) -> String {
    format!("webhook_endpoint:{id}:{what}")
}

/// Seals `secret` as endpoint `id`'s current secret.
pub fn seal_current(id: Uuid, secret: &str, keyring: &Keyring) -> String {
    keyring.seal(&ctx(id, "secret"), secret.as_bytes())
}

/// Seals `secret` as endpoint `id`'s previous secret.
pub fn seal_previous(id: Uuid, secret: &str, keyring: &Keyring) -> String {
    keyring.seal(&ctx(id, "previous_secret"), secret.as_bytes())
}

fn open(id: Uuid, what: &str, sealed: &str, keyring: &Keyring) -> Result<String, String> {
    keyring
        .open(&ctx(id, what), sealed)
        .map_err(|e| format!("webhook endpoint {id}: {e}"))
        .and_then(|b| String::from_utf8(b).map_err(|_| "secret is not text".to_owned()))
}

/// Opens the current secret.
pub fn open_current(row: &Endpoint, keyring: &Keyring) -> Result<String, String> {
    open(row.id, "secret", &row.secret_sealed, keyring)
}

/// Opens the previous secret (empty if none).
pub fn open_previous(row: &Endpoint, keyring: &Keyring) -> Result<String, String> {
    match &row.secret_previous {
        Some(s) => open(row.id, "previous_secret", s, keyring),
        None => Ok(String::new()),
    }
}

/// Endpoint `id`'s secrets re-sealed under the current key; `None` when they
/// already were.
pub(crate) fn reseal(
    id: Uuid,
    old: &SealedSecrets,
    keyring: &Keyring,
) -> Result<Option<SealedSecrets>, SecretError> {
    let mut resealer = crate::rotation::Resealer::new(keyring);
    let mut again = |what: &str, sealed: &str| resealer.again(&ctx(id, what), sealed);
    let current = again("secret", &old.current)?;
    let previous = old
        .previous
        .as_deref()
        .map(|s| again("previous_secret", s))
        .transpose()?;
    Ok(resealer
        .changed
        .then_some(SealedSecrets { current, previous }))
}
