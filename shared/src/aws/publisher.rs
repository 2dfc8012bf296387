//! Sends envelopes where they belong: facts to the order-events topic (with the
//! `eventType` attribute subscribers filter on), commands to the owner's queue.

use crate::envelope::{data, Envelope, MessageType, Route};
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
    pub saga_queue: Option<String>,
    pub ops_alerts_topic: Option<String>,
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
        let mut delay = None;
        let queue = match kind.route() {
            Route::Fact => {
                let topic = self
                    .to
                    .order_events_topic
                    .as_ref()
                    .ok_or_else(|| missing("facts"))?;
                return self
                    .notify(topic, envelope, &[("eventType", kind.as_str())], None)
                    .await;
            }
            Route::OpsAlertsTopic => {
                let topic = self
                    .to
                    .ops_alerts_topic
                    .as_ref()
                    .ok_or_else(|| missing("alerts"))?;
                let alert: data::OpsAlert = envelope
                    .data_as()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let subject = format!(
                    "{} {}: order {}",
                    alert.severity, alert.alert, alert.order_id
                );
                let attrs = [
                    ("eventType", alert.alert.as_str()),
                    ("severity", alert.severity.as_str()),
                ];
                return self.notify(topic, envelope, &attrs, Some(subject)).await;
            }
            Route::SagaQueue => {
                let t: data::StepTimeout = envelope
                    .data_as()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                delay = Some(t.delay_seconds.min(crate::orchestration::MAX_DELAY_SECONDS) as i32);
                &self.to.saga_queue
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
            .set_delay_seconds(delay)
            .send()
            .await
            .map_err(|e| StoreError::Aws(format!("SQS send {kind}: {e:?}")))?;
        Ok(())
    }
}

impl SnsSqsPublisher {
    async fn notify(
        &self,
        topic: &str,
        envelope: &Envelope,
        attrs: &[(&str, &str)],
        subject: Option<String>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .sns
            .publish()
            .topic_arn(topic)
            .message(envelope.to_json())
            .set_subject(subject);
        for (name, value) in attrs {
            let attr = SnsAttr::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| StoreError::Aws(e.to_string()))?;
            req = req.message_attributes(*name, attr);
        }
        req.send()
            .await
            .map_err(|e| StoreError::Aws(format!("SNS publish {}: {e:?}", envelope.kind)))?;
        Ok(())
    }
}
