//! Codecs: each format read into and written from the neutral tree.

pub mod csv;
pub mod json;
pub mod x12;
pub mod xml;
