//! Integration tests of the manager and of the platform every service shares,
//! through the public HTTP and AMQP interfaces, against real Postgres and
//! RabbitMQ. Each test has its own database and bus prefix.

mod admin;
mod auth;
mod bus;
mod cli;
mod inbound;
mod openapi;
mod resilience;
mod rotation;

use hub_testkit::{Running, TestEnv};

/// Starts a manager for `env`.
pub async fn manager(env: &TestEnv) -> Running {
    env.start(integration_manager::build, env.config()).await
}
mod integrations;
mod logs;
