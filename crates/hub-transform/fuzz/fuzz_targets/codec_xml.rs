//! Fuzz target `codec_xml`: see [`hub_transform_fuzz::codec_xml`] for what it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hub_transform_fuzz::codec_xml(data));
