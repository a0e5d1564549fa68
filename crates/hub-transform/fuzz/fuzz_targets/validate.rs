//! Fuzz target `validate`: see [`hub_transform_fuzz::validate`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::validate(data));
