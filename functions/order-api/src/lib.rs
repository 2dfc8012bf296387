//! order-api: place, read, list and cancel orders; the order timeline; health.

pub mod menu;
pub mod routes;
pub mod timeline;

use dishpatch::config::{ConfigError, Env};
use dishpatch::orders::{DynamoOrderStore, OrderStore};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

pub use menu::{DynamoMenuReader, MenuReader};
pub use timeline::{DynamoNotificationReader, NotificationReader};

/// The ports order-api needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub orders: Arc<dyn OrderStore>,
    pub menu: Arc<dyn MenuReader>,
    pub notifications: Arc<dyn NotificationReader>,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    Ok(App {
        orders: Arc::new(DynamoOrderStore::new(
            ddb.clone(),
            env.require("ORDERS_TABLE")?,
        )),
        menu: Arc::new(DynamoMenuReader::new(
            ddb.clone(),
            env.require("INVENTORY_TABLE")?,
        )),
        notifications: Arc::new(DynamoNotificationReader::new(
            ddb,
            env.require("NOTIFICATIONS_TABLE")?,
        )),
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
