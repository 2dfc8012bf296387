//! order-saga: the orchestrator. It applies step results to the order through the
//! pure state machine (one conditional write per transition, carrying its outbox),
//! relays each write's outbox from the table stream to SNS and SQS, and on a schedule
//! sweeps up orders left past their deadline.
//!
//! It may depend on the shared crate (`dishpatch`, and through it core and sdk), the
//! Lambda runtime and the AWS SDK clients it calls; never on another function crate or
//! on anything under `local/`, so it deploys as one small binary.

pub mod relay;
pub mod steps;
pub mod sweep;

use dishpatch::aws::publisher::Destinations;
use dishpatch::config::{ConfigError, Env};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::orchestration::Timings;
use dishpatch::orders::{DynamoOrderStore, OrderStore};
use dishpatch::runtime::dead_letters::DeadLetters;
use dishpatch::runtime::MessageError;
use dishpatch::worker::Outlets;
use std::sync::Arc;

pub struct App {
    pub timings: Timings,
    pub sweep: sweep::SweepConfig,
    pub orders: Arc<dyn OrderStore>,
    pub outlets: Outlets,
}

pub async fn build(sdk: &aws_config::SdkConfig, env: &Env) -> Result<App, ConfigError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let to = Destinations {
        order_events_topic: Some(env.require("ORDER_EVENTS_TOPIC_ARN")?),
        inventory_queue: Some(env.require("INVENTORY_QUEUE_URL")?),
        payment_queue: Some(env.require("PAYMENT_QUEUE_URL")?),
        delivery_queue: Some(env.require("DELIVERY_QUEUE_URL")?),
        saga_queue: Some(env.require("SAGA_QUEUE_URL")?),
        ops_alerts_topic: Some(env.require("OPS_ALERTS_TOPIC_ARN")?),
    };
    Ok(App {
        timings: Timings::from_env(env),
        sweep: sweep::SweepConfig::from_env(env),
        orders: Arc::new(DynamoOrderStore::new(ddb, env.require("ORDERS_TABLE")?)),
        outlets: Outlets::from_env(sdk, env, to)?,
    })
}

#[async_trait::async_trait]
impl dishpatch::runtime::Function for App {
    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        steps::on_step_result(&*self.orders, &self.timings, &envelope, kind).await
    }

    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        relay::publish_outbox(&*self.outlets.publisher, record).await
    }

    async fn scheduled(
        &self,
        _event: &dishpatch::runtime::Scheduled,
    ) -> Result<serde_json::Value, MessageError> {
        let summary = sweep::sweep(
            &*self.orders,
            &self.timings,
            &self.sweep,
            chrono::Utc::now(),
        )
        .await?;
        Ok(serde_json::to_value(summary).expect("a summary serializes"))
    }

    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        self.outlets.dead_letters.as_deref()
    }
}

#[cfg(test)]
mod tests;
