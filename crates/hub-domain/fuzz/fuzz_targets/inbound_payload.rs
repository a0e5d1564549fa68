//! Fuzz target `inbound_payload`: see [`hub_domain_fuzz::inbound_payload`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_domain_fuzz::inbound_payload(data));
