//! The webhook-dispatcher binary: configuration from the environment, then
//! [`webhook_dispatcher::service`] served until SIGTERM.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hub_platform::server::main(webhook_dispatcher::PORT, webhook_dispatcher::service).await
}
