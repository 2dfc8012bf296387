//! Reads the customer messages notification recorded for an order.

use dishpatch::aws::dynamo::{classify, from_item, s};
use dishpatch::error::StoreError;
use dishpatch::keys::{order_pk, NOTIFICATION_SK_PREFIX};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub order_id: String,
    pub event_type: String,
    pub channel: String,
    pub message: String,
    pub sent_at: String,
}

#[async_trait::async_trait]
pub trait NotificationReader: Send + Sync {
    async fn for_order(&self, order_id: &str) -> Result<Vec<NotificationRecord>, StoreError>;
}

pub struct DynamoNotificationReader {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoNotificationReader {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoNotificationReader { client, table }
    }
}

#[async_trait::async_trait]
impl NotificationReader for DynamoNotificationReader {
    async fn for_order(&self, order_id: &str) -> Result<Vec<NotificationRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :n)")
            .expression_attribute_values(":pk", s(order_pk(order_id)))
            .expression_attribute_values(":n", s(NOTIFICATION_SK_PREFIX))
            .send()
            .await
            .map_err(classify)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }
}
