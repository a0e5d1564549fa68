//! Fuzz target `codec_csv`: see [`hub_transform_fuzz::codec_csv`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::codec_csv(data));
