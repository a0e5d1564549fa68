//! The binary as an operator runs it: configured only by environment variables.

hub_testkit::binary_tests!(env!("CARGO_BIN_EXE_integration-manager"));
