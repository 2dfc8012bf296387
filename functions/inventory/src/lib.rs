//! inventory: reserve, release and commit stock for orders (the saga's commands), and
//! the menu over HTTP (`GET .../menu` public, `PUT .../menu/items/{id}` for managers).
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod handlers;
pub mod menu;
pub mod reservations;
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

pub use menu::{Created, DynamoMenuStore, MenuStore};
pub use reservations::{
    DynamoReservationStore, Reservation, ReservationStatus, ReservationStore, Reserve,
};

/// The ports inventory needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub reservations: Arc<dyn ReservationStore>,
    pub menu: Arc<dyn MenuStore>,
    pub outlets: Outlets,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = env.require("INVENTORY_TABLE")?;
    Ok(App {
        reservations: Arc::new(DynamoReservationStore::new(ddb.clone(), table.clone())),
        menu: Arc::new(DynamoMenuStore::new(ddb, table)),
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
            MessageType::ReserveInventory => handlers::reserve(self, &envelope).await,
            MessageType::ReleaseInventory => handlers::release(self, &envelope).await,
            MessageType::CommitInventory => handlers::commit(self, &envelope).await,
            _ => Err(MessageError::Unsupported),
        }
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.outlets.dead_letters.as_deref()
    }
}
