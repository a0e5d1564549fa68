//! The fuzz targets' checks in the normal test suite: every input that once
//! crashed a target (`cargo xtask fuzz` files it under
//! `tests/fuzz-regressions/<target>/`) and every seed of the fuzz corpus
//! (`fuzz/seeds/<target>/`) runs through exactly the checks of its target,
//! which this file includes from the fuzz crate. Tests below that name a
//! crash also say what the parser now answers.

use proptest::prelude::*;

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[macro_use]
#[path = "../../hub-testkit/shared/fuzz_regressions.rs"]
mod runner;

fuzz_regression_tests!("hub-connectors-fuzz");

proptest! {
    /// Every target's check holds on generated input too: an option byte
    /// (the targets choose from the first bytes), then NUL-separated
    /// fields of text in the alphabet of JSON, URLs and headers.
    #[test]
    fn every_fuzz_check_holds_on_generated_input(
        head in any::<u8>(),
        parts in prop::collection::vec("\\PC{0,24}|[a-zA-Z0-9:=,.;/\\[\\]{}\"?&@%_ \n-]{0,48}", 0..4),
    ) {
        let mut data = vec![head];
        data.extend_from_slice(parts.join("\0").as_bytes());
        for (_, check) in checks::TARGETS {
            check(&data);
        }
    }
}

// ------------------------------------------------ crashes the fuzzer found

use hub_connectors::redact::{REDACTED, Redactor};

/// `redact/crash-272f81bd…` (the seed `json_escaped_key`): the JSON scanner matched
/// key names as written, so `"tok\u0065n"` (the key `token`, spelled with
/// an escape) kept its value in the logged body. Keys are now compared with
/// their escapes decoded.
#[test]
fn a_secret_key_spelled_with_escapes_is_redacted() {
    let r = Redactor::new(&[], &[]);
    let logged = r.body(
        Some("application/json"),
        r#"{"tok\u0065n": "hidden-by-name", "a\"b": "kept", "n": 1}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&logged).expect("still JSON");
    assert_eq!(v["token"], REDACTED, "{logged}");
    assert_eq!(v["a\"b"], "kept");
    assert_eq!(v["n"], 1);
}
