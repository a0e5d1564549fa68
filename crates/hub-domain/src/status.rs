//! The statuses resources are stored and shown with, each with one string
//! mapping: the SCREAMING text below is what the database holds, what the API
//! sends and accepts (serde), what `Display` prints and what `FromStr` parses
//! (exact case).
//!
//! The circuit breaker's state is [`crate::webhook::BreakerState`];
//! a provider's status is the catalog's (`hub_connectors::manifest`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A text that is none of a status type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: unknown value {value:?} (expected one of {})", expected.join(", "))]
pub struct UnknownStatus {
    /// The status type, e.g. `IntegrationStatus`.
    pub kind: &'static str,
    /// The text given.
    pub value: String,
    /// The values the type has.
    pub expected: &'static [&'static str],
}

/// Defines a status enum from its variants and their texts, once: `as_str`,
/// `FromStr`, `TryFrom<&str>` and `TryFrom<String>`, `Display` and serde all
/// use that one table.
macro_rules! status {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// The texts of [`Self::ALL`].
            pub const TEXTS: &'static [&'static str] = &[$($text),+];

            /// The stored text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err(UnknownStatus {
                        kind: stringify!($name),
                        value: s.to_owned(),
                        expected: Self::TEXTS,
                    }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = UnknownStatus;

            fn try_from(s: &str) -> Result<Self, UnknownStatus> {
                s.parse()
            }
        }

        /// What storage reads a status column through
        /// (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = UnknownStatus;

            fn try_from(s: String) -> Result<Self, UnknownStatus> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

status! {
    /// A tenant's status (`tenants.status`): only an active tenant's API keys
    /// and inbound endpoints work.
    TenantStatus {
        /// Working.
        Active = "ACTIVE",
        /// Locked out by an operator.
        Suspended = "SUSPENDED",
    }
}

status! {
    /// An integration's status (`integrations.status`).
    IntegrationStatus {
        /// Configured and enabled.
        Active = "ACTIVE",
        /// Disabled by the tenant.
        Paused = "PAUSED",
        /// Its last test call failed.
        Error = "ERROR",
        /// Waiting for credentials.
        PendingAuth = "PENDING_AUTH",
    }
}

status! {
    /// An outbound webhook subscription's status (`webhook_subscriptions.status`).
    SubscriptionStatus {
        /// Deliveries are sent.
        Active = "ACTIVE",
        /// Deliveries are created and wait until it is resumed.
        Paused = "PAUSED",
        /// Disabled automatically after too many failed deliveries in a row.
        Failed = "FAILED",
    }
}

status! {
    /// An inbound webhook endpoint's status (`webhook_endpoints.status`).
    EndpointStatus {
        /// Accepts requests.
        Active = "ACTIVE",
        /// Paused by the tenant.
        Paused = "PAUSED",
        /// Disabled.
        Disabled = "DISABLED",
    }
}

status! {
    /// An outbound delivery's status (`webhook_deliveries.status`), also the
    /// status an attempt leaves its delivery in.
    DeliveryStatus {
        /// Due, never attempted (or replayed).
        Pending = "PENDING",
        /// Attempted and failed; the next attempt is due later.
        Retrying = "RETRYING",
        /// The receiver answered 2xx.
        Delivered = "DELIVERED",
        /// Out of attempts.
        Failed = "FAILED",
    }
}

status! {
    /// A received inbound event's status (`inbound_events.status`).
    InboundEventStatus {
        /// Waiting for (another) processing attempt.
        Pending = "PENDING",
        /// Processed: its typed event was published.
        Processed = "PROCESSED",
        /// Filtered out by the endpoint's `event_types`.
        Skipped = "SKIPPED",
        /// Out of attempts.
        Failed = "FAILED",
        /// A repeat of an event already received.
        Duplicate = "DUPLICATE",
    }
}

status! {
    /// A sync job's status (`sync_jobs.status`).
    SyncJobStatus {
        /// Waiting to be claimed (at `scheduled_at`).
        Pending = "PENDING",
        /// Claimed by a worker (under a lease).
        Running = "RUNNING",
        /// Done.
        Completed = "COMPLETED",
        /// Stopped by an error (`error_message`), or rolled back.
        Failed = "FAILED",
        /// Cancelled (between pages).
        Cancelled = "CANCELLED",
    }
}

status! {
    /// What a sync job does (`sync_jobs.job_type`).
    SyncJobType {
        /// Every record of the entity; detects deletions.
        FullSync = "FULL_SYNC",
        /// What changed since the last successful run's watermark.
        Incremental = "INCREMENTAL",
        /// Pushes local changes to the provider.
        Export = "EXPORT",
        /// Takes an uploaded file.
        Import = "IMPORT",
    }
}

status! {
    /// Which way a sync job moves data (`sync_jobs.direction`).
    SyncDirection {
        /// From the provider to the hub.
        Inbound = "INBOUND",
        /// From the hub to the provider.
        Outbound = "OUTBOUND",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `T` goes through text, `TryFrom`, `Display` and JSON
    /// and comes back the same; the text is SCREAMING_SNAKE_CASE.
    fn round_trips<T>(all: &[T], texts: &[&str])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownStatus>,
        T: for<'a> TryFrom<&'a str, Error = UnknownStatus> + TryFrom<String, Error = UnknownStatus>,
        T: Serialize + for<'de> Deserialize<'de>,
    {
        assert_eq!(all.len(), texts.len());
        for (v, text) in all.iter().zip(texts) {
            assert!(text.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert_eq!(v.to_string(), *text);
            assert_eq!(text.parse::<T>().unwrap(), *v);
            assert_eq!(T::try_from(*text).unwrap(), *v);
            assert_eq!(T::try_from(text.to_string()).unwrap(), *v);
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
        }
    }

    #[test]
    fn every_status_round_trips_through_its_one_text() {
        round_trips(TenantStatus::ALL, TenantStatus::TEXTS);
        round_trips(IntegrationStatus::ALL, IntegrationStatus::TEXTS);
        round_trips(SubscriptionStatus::ALL, SubscriptionStatus::TEXTS);
        round_trips(EndpointStatus::ALL, EndpointStatus::TEXTS);
        round_trips(DeliveryStatus::ALL, DeliveryStatus::TEXTS);
        round_trips(InboundEventStatus::ALL, InboundEventStatus::TEXTS);
        round_trips(SyncJobStatus::ALL, SyncJobStatus::TEXTS);
        round_trips(SyncJobType::ALL, SyncJobType::TEXTS);
        round_trips(SyncDirection::ALL, SyncDirection::TEXTS);
    }

    #[test]
    fn texts_are_the_stored_ones() {
        assert_eq!(
            IntegrationStatus::TEXTS,
            ["ACTIVE", "PAUSED", "ERROR", "PENDING_AUTH"]
        );
        assert_eq!(SubscriptionStatus::TEXTS, ["ACTIVE", "PAUSED", "FAILED"]);
        assert_eq!(EndpointStatus::TEXTS, ["ACTIVE", "PAUSED", "DISABLED"]);
        assert_eq!(
            DeliveryStatus::TEXTS,
            ["PENDING", "RETRYING", "DELIVERED", "FAILED"]
        );
        assert_eq!(
            InboundEventStatus::TEXTS,
            ["PENDING", "PROCESSED", "SKIPPED", "FAILED", "DUPLICATE"]
        );
        assert_eq!(TenantStatus::TEXTS, ["ACTIVE", "SUSPENDED"]);
    }

    #[test]
    fn unknown_or_lowercase_text_is_refused_with_the_values_it_may_be() {
        let e = "active".parse::<SubscriptionStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "SubscriptionStatus: unknown value \"active\" (expected one of ACTIVE, PAUSED, FAILED)"
        );
        assert!(serde_json::from_str::<DeliveryStatus>("\"DONE\"").is_err());
        assert!(IntegrationStatus::try_from("").is_err());
    }
}
