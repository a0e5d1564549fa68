//! The screens, one module each; none uses another's items (what they
//! share is in [`crate::layout`], [`crate::api`] and [`crate::session`]).

pub mod api_logs;
pub mod deliveries;
pub mod details;
pub mod health;
pub mod integrations;
pub mod marketplace;
pub mod not_built;
pub mod operator;
pub mod sign_in;
pub mod sync_jobs;
pub mod transformations;
pub mod webhooks;
pub mod wizard;
