//! Fuzz target `ip_allowlist`: see [`hub_domain_fuzz::ip_allowlist`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_domain_fuzz::ip_allowlist(data));
