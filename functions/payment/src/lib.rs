//! payment: capture and refund order payments from customer wallets (the saga's
//! commands), and the caller's wallet over HTTP (`GET /v1/wallet`, `POST /v1/wallet/top-ups`).

pub mod handlers;
pub mod payments;
pub mod routes;
pub mod wallets;

#[cfg(test)]
mod tests;

use dishpatch::aws::publisher::{Destinations, Publisher, SnsSqsPublisher};
use dishpatch::config::{ConfigError, Env};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::MessageError;
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

pub use payments::{Capture, DynamoPaymentStore, Payment, PaymentStatus, PaymentStore};
pub use wallets::{DynamoWalletStore, TopUp, Wallet, WalletStore};

/// The ports payment needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub payments: Arc<dyn PaymentStore>,
    pub wallets: Arc<dyn WalletStore>,
    pub publisher: Arc<dyn Publisher>,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = env.require("WALLETS_TABLE")?;
    let to = Destinations {
        order_events_topic: Some(env.require("ORDER_EVENTS_TOPIC_ARN")?),
        ..Default::default()
    };
    Ok(App {
        payments: Arc::new(DynamoPaymentStore::new(ddb.clone(), table.clone())),
        wallets: Arc::new(DynamoWalletStore::new(ddb, table)),
        publisher: Arc::new(SnsSqsPublisher::new(sdk, to)),
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
            MessageType::CapturePayment => handlers::capture(self, &envelope).await,
            MessageType::RefundPayment => handlers::refund(self, &envelope).await,
            _ => Err(MessageError::Unsupported),
        }
    }
}
