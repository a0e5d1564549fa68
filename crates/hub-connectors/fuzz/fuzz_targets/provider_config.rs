//! Fuzz target `provider_config`: see [`hub_connectors_fuzz::provider_config`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_connectors_fuzz::provider_config(data));
