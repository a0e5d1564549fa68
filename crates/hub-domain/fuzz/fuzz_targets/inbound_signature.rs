//! Fuzz target `inbound_signature`: see [`hub_domain_fuzz::inbound_signature`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_domain_fuzz::inbound_signature(data));
