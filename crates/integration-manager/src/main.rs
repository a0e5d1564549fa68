//! The integration-manager binary: configuration from the environment, then
//! [`integration_manager::service`] served until SIGTERM. `rotate-key`
//! re-seals stored secrets under the current key and exits.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("rotate-key") {
        return integration_manager::rotate_key_command().await;
    }
    hub_platform::server::main(integration_manager::PORT, integration_manager::service).await
}
