//! Fuzz target `schedule`: see [`hub_domain_fuzz::schedule`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_domain_fuzz::schedule(data));
