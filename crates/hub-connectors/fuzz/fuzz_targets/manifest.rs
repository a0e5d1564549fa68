//! Fuzz target `manifest`: see [`hub_connectors_fuzz::manifest`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_connectors_fuzz::manifest(data));
