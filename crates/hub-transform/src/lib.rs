//! The transformation engine (issue 28): pure functions, no I/O.
//!
//! Every format is read into and written from one neutral tree, a
//! `serde_json::Value` ([`codec`]); mapping rules turn one tree into another
//! ([`mapping`]); JSON Schema checks a tree ([`validate`]). Errors carry the
//! input location they come from ([`Location`]).

// `TransformError` carries its input location (about 150 bytes); errors are
// the rare path, so they are returned unboxed.
#![allow(clippy::result_large_err)]

pub mod codec;
pub mod error;
pub mod mapping;
pub mod pipeline;
pub mod records;
pub mod templates;
pub mod validate;

pub use error::{Location, TransformError};
