//! Sends envelopes where they belong: facts to the order-events topic (with the
//! `eventType` attribute subscribers filter on), commands to the owner's queue.

use crate::envelope::{Envelope, MessageType, Route};
use crate::error::StoreError;
use aws_sdk_sns::types::MessageAttributeValue as SnsAttr;
use aws_sdk_sqs::types::MessageAttributeValue as SqsAttr;

#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    async fn publish(&self, envelope: &Envelope) -> Result<(), StoreError>;
}

#[derive(Clone, Debug, Default)]
pub struct Destinations {
    pub order_events_topic: Option<String>,
    pub inventory_queue: Option<String>,
    pub payment_queue: Option<String>,
    pub delivery_queue: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SnsSqsPublisher {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    to: Destinations,
}

impl SnsSqsPublisher {
    pub fn new(sdk: &aws_config::SdkConfig, to: Destinations) -> Self {
        SnsSqsPublisher {
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            to,
        }
    }
}

#[async_trait::async_trait]
impl Publisher for SnsSqsPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), StoreError> {
        let kind: MessageType = envelope
            .kind
            .parse()
            .map_err(|e: crate::envelope::DecodeError| StoreError::Corrupt(e.to_string()))?;
        let missing = |what: &str| StoreError::Aws(format!("no destination configured for {what}"));
        let queue = match kind.route() {
            Route::Fact => {
                let topic = self
                    .to
                    .order_events_topic
                    .as_ref()
                    .ok_or_else(|| missing("facts"))?;
                let attr = SnsAttr::builder()
                    .data_type("String")
                    .string_value(kind.as_str())
                    .build()
                    .map_err(|e| StoreError::Aws(e.to_string()))?;
                self.sns
                    .publish()
                    .topic_arn(topic)
                    .message(envelope.to_json())
                    .message_attributes("eventType", attr)
                    .send()
                    .await
                    .map_err(|e| StoreError::Aws(format!("SNS publish {kind}: {e:?}")))?;
                return Ok(());
            }
            Route::InventoryQueue => &self.to.inventory_queue,
            Route::PaymentQueue => &self.to.payment_queue,
            Route::DeliveryQueue => &self.to.delivery_queue,
        };
        let url = queue.as_ref().ok_or_else(|| missing(kind.as_str()))?;
        let attr = SqsAttr::builder()
            .data_type("String")
            .string_value(kind.as_str())
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(envelope.to_json())
            .message_attributes("type", attr)
            .send()
            .await
            .map_err(|e| StoreError::Aws(format!("SQS send {kind}: {e:?}")))?;
        Ok(())
    }
}
