//! The integration-sync binary: configuration from the environment, then
//! [`integration_sync::service`] served until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hub_platform::server::main(integration_sync::PORT, integration_sync::service).await
}
