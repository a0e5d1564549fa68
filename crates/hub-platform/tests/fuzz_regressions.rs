//! The fuzz target's checks in the normal test suite: every input that once
//! crashed the `config` target (`cargo xtask fuzz` files it under
//! `tests/fuzz-regressions/config/`) and every seed of the fuzz corpus
//! (`fuzz/seeds/config/`) runs through exactly the checks of the target,
//! which this file includes from the fuzz crate. Tests below that name a
//! crash also say what the loader now answers.

use proptest::prelude::*;

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[macro_use]
#[path = "../../hub-testkit/shared/fuzz_regressions.rs"]
mod runner;

fuzz_regression_tests!("hub-platform-fuzz");

proptest! {
    /// The check holds on generated input too: `KEY=VALUE` lines of real
    /// keys with values in the alphabet of numbers, URLs and keys, then
    /// perhaps a file.
    #[test]
    fn the_config_check_holds_on_generated_input(
        lines in prop::collection::vec(
            (prop::sample::select(hub_platform::config::KEYS), "[a-zA-Z0-9:/@.,=+ _-]{0,40}"),
            0..6,
        ),
        file in proptest::option::of("[a-z_]{1,30} = (\"[a-zA-Z0-9:/@. -]{0,30}\"|[0-9]{1,12}|true)"),
    ) {
        let mut data = String::from("INTEGRATION_ENCRYPTION_KEY=MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n");
        for (k, v) in lines {
            data.push_str(&format!("{k}={v}\n"));
        }
        if let Some(f) = file {
            data.push_str("---\n");
            data.push_str(&f);
        }
        for (_, check) in checks::TARGETS {
            check(data.as_bytes());
        }
    }
}
