//! notification: tells customers about their orders. Consumes the order facts from the
//! order-events topic, renders a message, sends it to the customer-notifications topic
//! and records it (the order timeline shows it).
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod handler;
pub mod notifier;
pub mod records;
pub mod render;

#[cfg(test)]
mod tests;

use dishpatch::config::{ConfigError, Env};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::dead_letters::{DeadLetters, SqsDeadLetters};
use dishpatch::runtime::MessageError;
use std::sync::Arc;

pub use handler::{Clock, SystemClock};
pub use notifier::{CustomerNotification, CustomerNotifier, SnsCustomerNotifier};
pub use records::{DynamoNotificationStore, NotificationRecord, NotificationStore};

/// The ports notification needs; adapters are chosen in [`build`], fakes in tests.
pub struct App {
    pub records: Arc<dyn NotificationStore>,
    pub notifier: Arc<dyn CustomerNotifier>,
    pub clock: Arc<dyn Clock>,
    /// Where messages that cannot be processed are parked, with the reason.
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    Ok(App {
        records: Arc::new(DynamoNotificationStore::new(
            ddb,
            env.require("NOTIFICATIONS_TABLE")?,
        )),
        notifier: Arc::new(SnsCustomerNotifier::new(
            sns,
            env.require("CUSTOMER_NOTIFICATIONS_TOPIC_ARN")?,
        )),
        clock: Arc::new(SystemClock),
        dead_letters: SqsDeadLetters::from_env(sdk, env)?,
    })
}

#[async_trait::async_trait]
impl dishpatch::runtime::Function for App {
    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        handler::handle(self, &envelope, kind).await
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.dead_letters.as_deref()
    }
}
