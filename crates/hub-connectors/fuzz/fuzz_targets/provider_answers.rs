//! Fuzz target `provider_answers`: see [`hub_connectors_fuzz::provider_answers`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_connectors_fuzz::provider_answers(data));
