//! Fuzz target `mapping`: see [`hub_transform_fuzz::mapping`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::mapping(data));
