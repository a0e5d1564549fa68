//! Fuzz target `codec_json`: see [`hub_transform_fuzz::codec_json`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::codec_json(data));
