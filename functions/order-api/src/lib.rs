//! order-api: place, read, list and cancel orders; the order timeline; a restaurant's
//! orders for its kitchen; health.
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod menu;
pub mod restaurant_orders;
pub mod routes;
pub mod timeline;

use dishpatch::config::{ConfigError, Env};
use dishpatch::idempotency::{DynamoIdempotencyStore, Idempotency, IdempotencyConfig};
use dishpatch::orders::{DynamoOrderStore, OrderStore};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

pub use menu::{DynamoMenuReader, MenuReader};
pub use restaurant_orders::{DynamoRestaurantOrders, RestaurantOrderIndex};
pub use timeline::{DynamoNotificationReader, NotificationReader};

/// The ports order-api needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    /// Step deadlines for the commands this function's writes send.
    pub timings: dishpatch::orchestration::Timings,
    pub orders: Arc<dyn OrderStore>,
    /// A restaurant's orders by placement time, for its kitchen.
    pub restaurant_orders: Arc<dyn RestaurantOrderIndex>,
    pub menu: Arc<dyn MenuReader>,
    pub notifications: Arc<dyn NotificationReader>,
    /// `Idempotency-Key` on `POST /v1/orders`: its store (an `Arc<dyn IdempotencyStore>`
    /// port inside) under the key prefix [`IDEMPOTENCY_KEY_PREFIX`].
    pub idempotency: Idempotency,
}

/// Idempotency record ids of this function start `order-api.{operation}#`.
pub const IDEMPOTENCY_KEY_PREFIX: &str = "order-api";

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let orders_table = env.require("ORDERS_TABLE")?;
    Ok(App {
        timings: dishpatch::orchestration::Timings::from_env(env),
        orders: Arc::new(DynamoOrderStore::new(ddb.clone(), orders_table.clone())),
        restaurant_orders: Arc::new(DynamoRestaurantOrders::new(ddb.clone(), orders_table)),
        menu: Arc::new(DynamoMenuReader::new(
            ddb.clone(),
            env.require("INVENTORY_TABLE")?,
        )),
        notifications: Arc::new(DynamoNotificationReader::new(
            ddb.clone(),
            env.require("NOTIFICATIONS_TABLE")?,
        )),
        idempotency: Idempotency::new(
            Arc::new(DynamoIdempotencyStore::new(
                ddb,
                env.require("IDEMPOTENCY_TABLE")?,
            )),
            IdempotencyConfig::new(IDEMPOTENCY_KEY_PREFIX),
        ),
    })
}

#[async_trait::async_trait]
impl dishpatch::runtime::Function for App {
    async fn http(&self, req: Request) -> Response<Body> {
        let result = routes::route(self, &req).await;
        dishpatch::http::respond(&req, result)
    }
}

#[cfg(test)]
mod tests;
