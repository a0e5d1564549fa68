//! The binary as an operator runs it: configured only by environment variables.

use hub_testkit::TestEnv;
use hub_testkit::binary::{check_rejects_invalid_configuration, check_runs_from_environment};

const BIN: &str = env!("CARGO_BIN_EXE_integration-manager");

#[tokio::test]
async fn starts_from_environment_variables_alone_and_stops_on_sigterm() {
    let env = TestEnv::new().await;
    let logs = check_runs_from_environment(BIN, &env).await;
    assert!(logs.contains("\"listening\"") || logs.contains("listening"));
}

#[test]
fn invalid_configuration_stops_the_binary_naming_the_key() {
    check_rejects_invalid_configuration(BIN);
}
