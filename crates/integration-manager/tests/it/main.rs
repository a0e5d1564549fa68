//! Integration tests of the manager and of the platform every service shares,
//! through the public HTTP and AMQP interfaces, against real Postgres and
//! RabbitMQ. Each test has its own database and bus prefix.

mod admin;
mod api_logs;
mod auth;
mod bus;
mod cli;
mod dead_letters;
mod gateway;
mod inbound;
mod inbound_more;
mod matrix;
mod openapi;
mod resilience;
mod rotation;
mod schema;
mod sockets;
mod transformations;

use hub_testkit::amqp::Amqp;
use hub_testkit::{Running, TestEnv};

/// Starts a manager for `env`.
pub async fn manager(env: &TestEnv) -> Running {
    env.start(integration_manager::build, env.config()).await
}

/// A new test world with a manager running in it.
pub async fn started() -> (TestEnv, Running) {
    let env = TestEnv::new().await;
    let m = manager(&env).await;
    (env, m)
}

/// A tap on the exchange every service queue is bound to: everything the
/// hub publishes, as the services receive it. Published rows leave the
/// outbox at once, so this is where a test reads the events; set it up
/// before they are produced. Waits for a manager's consumer first (it
/// declares the exchange).
pub async fn tap_routed(env: &TestEnv) -> (Amqp, String) {
    let amqp = Amqp::connect().await;
    amqp.wait_for_queue(&format!("{}integration-manager.events", env.prefix))
        .await;
    let queue = amqp.tap(&format!("{}hub.routed", env.prefix), "#").await;
    (amqp, queue)
}
mod integrations;
mod logs;
mod oauth;
