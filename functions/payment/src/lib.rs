//! payment: capture and refund order payments (the saga's commands) from customer
//! wallets or by card through an external provider, and the caller's wallet over HTTP
//! (`GET /v1/wallet`, its paid top-ups and ledger, and the ADMIN credit).
//!
//! Configuration (environment): `WALLETS_TABLE`, `ORDER_EVENTS_TOPIC_ARN`; for cards
//! `PSP_BASE_URL`, the API key as `PSP_API_KEY` or the SSM parameter named by
//! `PSP_API_KEY_PARAMETER`, and the breaker's open period `PSP_BREAKER_OPEN_SECONDS`
//! (30; see [`psp`]). Without `PSP_BASE_URL` card payments wait (their commands are
//! retried) and everything else works.
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime, the AWS SDK clients it calls (DynamoDB, SNS, SQS, SSM) and an HTTPS
//! client for the provider; never on another function crate or on anything under
//! `local/`, so it deploys as one small binary.

pub mod admin;
pub mod handlers;
pub mod ledger;
pub mod payments;
pub mod provider;
pub mod psp;
pub mod requests;
pub mod routes;
pub mod top_up;
pub mod topups;
pub mod wallet_metrics;
pub mod wallets;

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

pub use ledger::{DynamoLedgerStore, EntryKind, LedgerEntry, LedgerPage, LedgerStore};
pub use payments::{Capture, DynamoPaymentStore, Payment, PaymentStatus, PaymentStore};
pub use provider::{
    Charge, ChargeOutcome, PaymentProvider, ProviderError, RefundOutcome, UnconfiguredProvider,
};
pub use psp::{ApiKey, HttpPaymentProvider, PspConfig};
pub use topups::{DynamoTopUpStore, TopUp, TopUpStatus, TopUpStore};
pub use wallets::{AdminCredit, Credit, DynamoWalletStore, Wallet, WalletStore};

/// The ports payment needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub payments: Arc<dyn PaymentStore>,
    pub wallets: Arc<dyn WalletStore>,
    pub top_ups: Arc<dyn TopUpStore>,
    pub ledger: Arc<dyn LedgerStore>,
    /// The card payment provider, built once per container: its circuit breaker is
    /// shared by every invocation the container serves.
    pub provider: Arc<dyn PaymentProvider>,
    pub outlets: Outlets,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = env.require("WALLETS_TABLE")?;
    let to = Destinations {
        // Its own queue: top-ups left PENDING by an outage are settled from it.
        payment_queue: env.require("PAYMENT_QUEUE_URL").ok(),
        ..order_events(env)?
    };
    Ok(App {
        payments: Arc::new(DynamoPaymentStore::new(ddb.clone(), table.clone())),
        wallets: Arc::new(DynamoWalletStore::new(ddb.clone(), table.clone())),
        top_ups: Arc::new(DynamoTopUpStore::new(ddb.clone(), table.clone())),
        ledger: Arc::new(DynamoLedgerStore::new(ddb, table)),
        provider: card_provider(sdk, env),
        outlets: Outlets::from_env(sdk, env, to)?,
    })
}

/// The HTTP provider from `PSP_BASE_URL` and the API key settings; a provider that
/// answers "not configured" (card commands retried, nothing declined) when the URL is
/// missing or unusable, so wallets and the HTTP routes never depend on it.
pub fn card_provider(sdk: &aws_config::SdkConfig, env: &Env) -> Arc<dyn PaymentProvider> {
    let Ok(base_url) = env.require("PSP_BASE_URL") else {
        tracing::warn!("PSP_BASE_URL is not set: card payments wait until it is");
        return Arc::new(UnconfiguredProvider("PSP_BASE_URL is not set".into()));
    };
    match HttpPaymentProvider::new(
        PspConfig::from_env(base_url, env),
        ApiKey::from_env(sdk, env),
    ) {
        Ok(provider) => Arc::new(provider),
        Err(e) => {
            tracing::error!(error = %e, "card payment provider unusable: card payments wait");
            Arc::new(UnconfiguredProvider(e))
        }
    }
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
            MessageType::SettleTopUp => top_up::settle_queued(self, &envelope).await,
            _ => Err(MessageError::Unsupported),
        }
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.outlets.dead_letters.as_deref()
    }
}
