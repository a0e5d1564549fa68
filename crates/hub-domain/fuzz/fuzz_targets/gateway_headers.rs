//! Fuzz target `gateway_headers`: see [`hub_domain_fuzz::gateway_headers`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_domain_fuzz::gateway_headers(data));
