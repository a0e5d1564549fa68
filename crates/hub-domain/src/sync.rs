//! Sync rules, pure: what a version of a record pulled from a provider does
//! to the copy the hub holds (`sync_records`), who wins a conflict and why,
//! and the content hash that tells a changed record from an unchanged one.
//!
//! The hub holds, per record, the provider's version it last took (its
//! content hash and the provider's timestamp of it, `source_updated_at`) and,
//! when the platform changed the record since, when it did
//! (`local_changed_at`, a change not yet exported). A pulled version:
//!
//! - of a record the hub does not hold (or holds deleted) is created;
//! - with the held content is unchanged: nothing is written, no event;
//! - of a record without a local change is an update, unless it is older
//!   than the held version (a late page after a webhook brought a newer
//!   one): then the held version stays and the pulled one is recorded as
//!   the loser of a conflict;
//! - of a record with a local change is a conflict: the newer timestamp wins
//!   (the provider's `source_updated_at` against `local_changed_at`). Ties
//!   go to the provider (the system of record for its own data); a pulled
//!   version without a timestamp loses to a local change (which has one).
//!
//! Every conflict names the rule that decided it, so an operator reading
//! `sync_conflicts` knows why, and can re-resolve it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The content hash of a mapped record: SHA-256 of its JSON text (object
/// keys are sorted, so equal content hashes equally whatever the provider's
/// key order).
pub fn content_hash(record: &Value) -> [u8; 32] {
    let text = serde_json::to_vec(record).unwrap_or_default();
    Sha256::digest(&text).into()
}

/// What the hub holds of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held<'a> {
    /// Content hash of the held version.
    pub hash: &'a [u8],
    /// The provider's timestamp of the held version, if it had one.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// When the platform changed the record, if that change is not yet
    /// exported.
    pub local_changed_at: Option<DateTime<Utc>>,
    /// Soft-deleted (not seen in a complete run, or deleted at the
    /// provider).
    pub deleted: bool,
}

/// A version pulled from the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulled<'a> {
    /// Content hash of the mapped version.
    pub hash: &'a [u8],
    /// The provider's timestamp of it (`LastModifiedDate`,
    /// `hs_lastmodifieddate`, …), if the record has one.
    pub source_updated_at: Option<DateTime<Utc>>,
}

/// Which version wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Winner {
    /// The hub's version (a local change, or a newer held version).
    Local,
    /// The provider's version.
    Remote,
}

impl Winner {
    /// `LOCAL` or `REMOTE`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::Local => "LOCAL",
            Winner::Remote => "REMOTE",
        }
    }
}

/// Why a conflict went the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The newer timestamp won.
    NewestTimestamp,
    /// Both timestamps were equal: the provider's version won.
    TieRemoteWins,
    /// The pulled version had no timestamp: the local change won.
    RemoteTimestampMissing,
    /// An operator chose (re-resolution).
    Operator,
}

impl Rule {
    /// The stored text (`newest_timestamp`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NewestTimestamp => "newest_timestamp",
            Rule::TieRemoteWins => "tie_remote_wins",
            Rule::RemoteTimestampMissing => "remote_timestamp_missing",
            Rule::Operator => "operator",
        }
    }
}

/// What a pulled version does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A new record (or one held deleted): store it.
    Create,
    /// Same content as held: write nothing, publish nothing.
    Unchanged,
    /// A newer provider version, no local change: store it.
    Update,
    /// Both sides changed (or the pulled version is older than the held
    /// one): the winner is kept, the loser recorded.
    Conflict {
        /// Who won.
        winner: Winner,
        /// Why.
        rule: Rule,
    },
}

/// Decides what `pulled` does to `held`.
pub fn decide(held: Option<&Held<'_>>, pulled: &Pulled<'_>) -> Decision {
    let Some(held) = held.filter(|h| !h.deleted) else {
        return Decision::Create;
    };
    if held.hash == pulled.hash {
        return Decision::Unchanged;
    }
    match held.local_changed_at {
        Some(local) => {
            let (winner, rule) = match pulled.source_updated_at {
                None => (Winner::Local, Rule::RemoteTimestampMissing),
                Some(remote) if remote > local => (Winner::Remote, Rule::NewestTimestamp),
                Some(remote) if remote < local => (Winner::Local, Rule::NewestTimestamp),
                Some(_) => (Winner::Remote, Rule::TieRemoteWins),
            };
            Decision::Conflict { winner, rule }
        }
        None => match (held.source_updated_at, pulled.source_updated_at) {
            (Some(h), Some(p)) if p < h => Decision::Conflict {
                winner: Winner::Local,
                rule: Rule::NewestTimestamp,
            },
            _ => Decision::Update,
        },
    }
}

/// The share of held records a complete run did not see, as a fraction of
/// those held, and whether deleting them is allowed: at most `max_share`
/// (0.2 by default) unless the job was confirmed. An empty provider answer
/// with records held is a 100 % share: a wiped account or a broken filter
/// must not delete everything silently.
pub fn deletion_allowed(unseen: u64, held: u64, max_share: f64, confirmed: bool) -> (f64, bool) {
    if held == 0 || unseen == 0 {
        return (0.0, true);
    }
    #[allow(clippy::cast_precision_loss)]
    let share = unseen as f64 / held as f64;
    (share, confirmed || share <= max_share)
}

/// The prefix of the key a record created by the platform is held under
/// until the provider gives it an id (`local:<the platform's id>`): a pull
/// never lists it (nor deletes it as unseen), and its export re-keys it to
/// the provider's id.
pub const PLACEHOLDER_PREFIX: &str = "local:";

/// The key a record the provider does not have yet is held under.
pub fn placeholder(local_key: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{local_key}")
}

/// Whether `external_id` is a placeholder (the record is not at the
/// provider yet: its export creates it).
pub fn is_placeholder(external_id: &str) -> bool {
    external_id.starts_with(PLACEHOLDER_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(s: i64) -> Option<DateTime<Utc>> {
        Some(Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap())
    }

    #[test]
    fn the_hash_ignores_key_order_and_sees_any_change() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"b": 1, "a": {"y": 2, "x": 4}}))
        );
    }

    #[test]
    fn every_case_decides_one_way_and_says_why() {
        static NEW: [u8; 32] = [2u8; 32];
        static OLD: [u8; 32] = [1u8; 32];
        let held = |local: Option<DateTime<Utc>>, deleted: bool| Held {
            hash: &OLD,
            source_updated_at: t(10),
            local_changed_at: local,
            deleted,
        };
        let pulled = |hash: &'static [u8; 32], at| Pulled {
            hash,
            source_updated_at: at,
        };
        let conflict = |winner, rule| Decision::Conflict { winner, rule };
        let cases = [
            (None, pulled(&NEW, t(20)), Decision::Create),
            (
                Some(held(None, true)),
                pulled(&NEW, t(20)),
                Decision::Create,
            ),
            (
                Some(held(None, false)),
                pulled(&OLD, t(99)),
                Decision::Unchanged,
            ),
            (
                Some(held(t(5), false)),
                pulled(&OLD, t(1)),
                Decision::Unchanged,
            ),
            (
                Some(held(None, false)),
                pulled(&NEW, t(20)),
                Decision::Update,
            ),
            (
                Some(held(None, false)),
                pulled(&NEW, None),
                Decision::Update,
            ),
            (
                Some(held(None, false)),
                pulled(&NEW, t(5)),
                conflict(Winner::Local, Rule::NewestTimestamp),
            ),
            (
                Some(held(t(30), false)),
                pulled(&NEW, t(40)),
                conflict(Winner::Remote, Rule::NewestTimestamp),
            ),
            (
                Some(held(t(30), false)),
                pulled(&NEW, t(20)),
                conflict(Winner::Local, Rule::NewestTimestamp),
            ),
            (
                Some(held(t(30), false)),
                pulled(&NEW, t(30)),
                conflict(Winner::Remote, Rule::TieRemoteWins),
            ),
            (
                Some(held(t(30), false)),
                pulled(&NEW, None),
                conflict(Winner::Local, Rule::RemoteTimestampMissing),
            ),
        ];
        for (i, (h, p, want)) in cases.iter().enumerate() {
            assert_eq!(decide(h.as_ref(), p), *want, "case {i}");
        }
    }

    #[test]
    fn deleting_more_than_the_share_needs_confirmation() {
        assert_eq!(deletion_allowed(0, 0, 0.2, false), (0.0, true));
        assert_eq!(deletion_allowed(20, 100, 0.2, false), (0.2, true));
        assert!(!deletion_allowed(21, 100, 0.2, false).1);
        assert!(deletion_allowed(21, 100, 0.2, true).1);
        assert_eq!(deletion_allowed(5, 5, 0.2, false), (1.0, false));
    }
}
