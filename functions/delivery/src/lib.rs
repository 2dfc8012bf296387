//! delivery: claim a courier for an order (DispatchDelivery), release it (CancelDelivery),
//! and let the courier mark the order delivered (`POST /v1/deliveries/{orderId}/complete`).
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod deliveries;
pub mod handlers;
pub mod routes;

#[cfg(test)]
mod tests;

use dishpatch::config::{ConfigError, Env};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::dead_letters::DeadLetters;
use dishpatch::runtime::MessageError;
use dishpatch::worker::{order_events, Outlets};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

pub use deliveries::{Claim, Delivery, DeliveryStatus, DeliveryStore, DynamoDeliveryStore};

/// The ports delivery needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub deliveries: Arc<dyn DeliveryStore>,
    pub outlets: Outlets,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Ok(App {
        deliveries: Arc::new(DynamoDeliveryStore::new(
            ddb,
            env.require("DELIVERY_TABLE")?,
        )),
        outlets: Outlets::from_env(sdk, env, order_events(env)?)?,
    })
}

#[async_trait::async_trait]
impl dishpatch::runtime::Function for App {
    async fn http(&self, req: Request) -> Response<Body> {
        let result = routes::route(self, &req).await;
        dishpatch::http::respond(&req, result)
    }

    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        match kind {
            MessageType::DispatchDelivery => handlers::dispatch(self, &envelope).await,
            MessageType::CancelDelivery => handlers::cancel(self, &envelope).await,
            _ => Err(MessageError::Unsupported),
        }
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.outlets.dead_letters.as_deref()
    }
}
