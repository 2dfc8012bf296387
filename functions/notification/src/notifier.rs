//! Sends a customer message: the port and its SNS adapter (the customer-notifications
//! topic, whose subscribers filter on the `channel` and `eventType` attributes).

use aws_sdk_sns::types::MessageAttributeValue;
use dishpatch::error::StoreError;
use serde::Serialize;

/// What subscribers of the customer-notifications topic receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerNotification {
    pub order_id: String,
    pub customer_id: String,
    pub event_type: String,
    pub channel: String,
    pub message: String,
}

#[async_trait::async_trait]
pub trait CustomerNotifier: Send + Sync {
    async fn send(&self, n: &CustomerNotification) -> Result<(), StoreError>;
}

#[derive(Clone, Debug)]
pub struct SnsCustomerNotifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsCustomerNotifier {
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsCustomerNotifier {
            sns,
            topic_arn: topic_arn.into(),
        }
    }
}

fn string_attr(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Aws(e.to_string()))
}

#[async_trait::async_trait]
impl CustomerNotifier for SnsCustomerNotifier {
    async fn send(&self, n: &CustomerNotification) -> Result<(), StoreError> {
        let body = serde_json::to_string(n).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes("channel", string_attr(&n.channel)?)
            .message_attributes("eventType", string_attr(&n.event_type)?)
            .send()
            .await
            .map_err(|e| StoreError::Aws(format!("SNS publish customer notification: {e:?}")))?;
        Ok(())
    }
}
