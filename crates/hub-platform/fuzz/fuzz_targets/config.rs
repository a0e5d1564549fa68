//! Fuzz target `config`: see [`hub_platform_fuzz::config`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_platform_fuzz::config(data));
