//! Fuzz target `redact`: see [`hub_connectors_fuzz::redact`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_connectors_fuzz::redact(data));
