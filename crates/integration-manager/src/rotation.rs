//! `rotate-key`: re-seals every stored secret not under the keyring's current
//! key (integration credentials, webhook subscription secrets, inbound
//! endpoint secrets). Safe while the services run.

use hub_domain::secret::{Keyring, SecretError};
use hub_storage::StorageError;
use uuid::Uuid;

/// What [`rotate_all`] did: (re-sealed, already current) per kind of secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// Integrations' credentials and webhook subscriptions' secrets.
    pub credentials: (u64, u64),
    /// Inbound webhook endpoints' signing secrets.
    pub endpoints: (u64, u64),
}

/// Re-seals every integration, subscription and endpoint secret not under the
/// current key.
pub async fn rotate_all(pool: &sqlx::PgPool, keyring: &Keyring) -> Result<Rotated, String> {
    use hub_storage::{integrations, webhook_endpoints};
    let (rotated, current) = rotate_pages(
        "integration",
        async |after| integrations::with_secrets(pool, after, PAGE).await,
        |id, old| crate::credentials::reseal(id, old, keyring),
        async |id, old, new| integrations::reseal(pool, id, old, new).await,
    )
    .await?;
    let (r, c) = rotate_subscriptions(pool, keyring).await?;
    let endpoints = rotate_pages(
        "webhook endpoint",
        async |after| webhook_endpoints::with_secrets(pool, after, PAGE).await,
        |id, old| crate::inbound::secrets::reseal(id, old, keyring),
        async |id, old, new| webhook_endpoints::reseal(pool, id, old, new).await,
    )
    .await?;
    Ok(Rotated {
        credentials: (rotated + r, current + c),
        endpoints,
    })
}

/// Seals values again under the keyring's current key, remembering whether
/// any needed it (what each kind of row's `reseal` uses).
pub(crate) struct Resealer<'k> {
    keyring: &'k Keyring,
    /// Whether a value was sealed again.
    pub changed: bool,
}

impl<'k> Resealer<'k> {
    /// A re-sealer with `keyring`.
    pub fn new(keyring: &'k Keyring) -> Self {
        Self {
            keyring,
            changed: false,
        }
    }

    /// `sealed` (bound to `context`) under the current key: sealed again
    /// if it was under another, else as it is.
    pub fn again(&mut self, context: &str, sealed: &str) -> Result<String, SecretError> {
        if !self.keyring.needs_rotation(sealed) {
            return Ok(sealed.to_owned());
        }
        self.changed = true;
        let plain = self.keyring.open(context, sealed)?;
        Ok(self.keyring.seal(context, &plain))
    }
}

/// Rows read per page.
const PAGE: i64 = 500;

/// Re-seals the secrets of one kind of row, page by page: `page(after)` reads
/// the rows after `after`, `reseal` seals a row's secrets again (`None` when
/// they already are under the current key) and `swap` stores them only if the
/// row is unchanged since it was read. Returns (re-sealed, already current).
async fn rotate_pages<S>(
    kind: &str,
    page: impl AsyncFn(Option<Uuid>) -> Result<Vec<(Uuid, S)>, StorageError>,
    reseal: impl Fn(Uuid, &S) -> Result<Option<S>, SecretError>,
    swap: impl AsyncFn(Uuid, &S, &S) -> Result<bool, StorageError>,
) -> Result<(u64, u64), String> {
    let (mut rotated, mut current) = (0, 0);
    let mut after = None;
    loop {
        let rows = page(after).await.map_err(|e| e.to_string())?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(*last);
        for (id, old) in &rows {
            match reseal(*id, old).map_err(|e| format!("{kind} {id}: {e}"))? {
                Some(new) => {
                    if swap(*id, old, &new).await.map_err(|e| e.to_string())? {
                        rotated += 1;
                    }
                    // else: changed concurrently, so already sealed with the current key.
                }
                None => current += 1,
            }
        }
    }
    Ok((rotated, current))
}

/// Re-seals webhook subscription secrets (signing, previous signing, auth)
/// under the current key, in one transaction that locks the rows.
async fn rotate_subscriptions(
    pool: &sqlx::PgPool,
    keyring: &Keyring,
) -> Result<(u64, u64), String> {
    use hub_connectors::webhook::secret_context;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let rows = hub_storage::subscriptions::sealed_for_update(&mut tx)
        .await
        .map_err(|e| e.to_string())?;
    let (mut rotated, mut current) = (0, 0);
    for mut row in rows {
        let id = row.id.to_string();
        let mut again = Resealer::new(keyring);
        for (what, slot) in [
            ("secret", &mut row.secret_key),
            ("previous", &mut row.previous_secret_key),
            ("auth", &mut row.auth_secret_encrypted),
        ] {
            if let Some(sealed) = slot.as_deref() {
                let resealed = again
                    .again(&secret_context(&id, what), sealed)
                    .map_err(|e| format!("subscription {id} {what} secret: {e}"))?;
                *slot = Some(resealed);
            }
        }
        if again.changed {
            hub_storage::subscriptions::reseal(&mut tx, &row)
                .await
                .map_err(|e| e.to_string())?;
            rotated += 1;
        } else {
            current += 1;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok((rotated, current))
}
