//! delivery: claim a courier for an order (DispatchDelivery, waiting for one when none
//! is free: RetryDispatch), release it (CancelDelivery), let the courier mark the order
//! delivered (`POST /v1/deliveries/{orderId}/complete`), go on and off shift
//! (`PUT /v1/couriers/{courierId}/shift`) and list their deliveries
//! (`GET /v1/couriers/{courierId}/deliveries`).
//!
//! The delivery record and its port are in [`deliveries`], the courier pool and shifts in
//! [`couriers`], their DynamoDB adapter in [`dynamo`]; the saga's commands in
//! [`handlers`], the HTTP routes in [`routes`].
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod couriers;
pub mod deliveries;
pub mod dynamo;
pub mod handlers;
pub mod routes;

#[cfg(test)]
mod tests;

use dishpatch::aws::publisher::Destinations;
use dishpatch::config::{ConfigError, Env};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::dead_letters::DeadLetters;
use dishpatch::runtime::MessageError;
use dishpatch::worker::{order_events, Outlets};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

pub use couriers::{Courier, CourierStatus, CourierStore, OffShift};
pub use deliveries::{Claim, Delivery, DeliveryPage, DeliveryStatus, DeliveryStore};
pub use dynamo::DynamoDeliveryStore;
pub use handlers::Waiting;

/// The ports delivery needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub deliveries: Arc<dyn DeliveryStore>,
    pub couriers: Arc<dyn CourierStore>,
    pub waiting: Waiting,
    pub outlets: Outlets,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoDeliveryStore::new(
        ddb,
        env.require("DELIVERY_TABLE")?,
    ));
    let to = Destinations {
        // Its own queue: a dispatch that found no courier is retried from it, delayed.
        delivery_queue: env.require("DELIVERY_QUEUE_URL").ok(),
        ..order_events(env)?
    };
    Ok(App {
        deliveries: store.clone(),
        couriers: store,
        waiting: Waiting::from_env(env),
        outlets: Outlets::from_env(sdk, env, to)?,
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
            MessageType::RetryDispatch => handlers::retry(self, &envelope).await,
            _ => Err(MessageError::Unsupported),
        }
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.outlets.dead_letters.as_deref()
    }
}
