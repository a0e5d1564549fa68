//! Fuzz target `codec_x12`: see [`hub_transform_fuzz::codec_x12`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::codec_x12(data));
