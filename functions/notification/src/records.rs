//! The record of each customer message (one per order fact): the port and its DynamoDB adapter.
//!
//! The record is written once the message is sent, with one conditional put: a duplicate
//! of a recorded fact sends nothing, and a crash between the send and the record sends
//! again on retry (at least once, as any delivery to a customer channel). Rendering is
//! deterministic, so a re-send carries the same words the record keeps.

use dishpatch::aws::dynamo::{get_as, keyed, put_alone, put_new, Item};
use dishpatch::error::StoreError;
use dishpatch::keys::{notification_sk, order_pk};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub order_id: String,
    pub customer_id: String,
    /// The id of the fact this message tells about: the idempotency key.
    pub event_id: String,
    pub event_type: String,
    pub channel: String,
    pub message: String,
    pub sent_at: String,
}

#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// Whether the message about this fact was sent (its record exists).
    async fn is_sent(&self, order_id: &str, event_id: &str) -> Result<bool, StoreError>;
    /// Records a sent message unless its fact's record exists; `false` if it did (a
    /// concurrent duplicate sent it too, and its record stands).
    async fn record_sent(&self, record: &NotificationRecord) -> Result<bool, StoreError>;
}

fn key(order_id: &str, event_id: &str) -> Item {
    dishpatch::aws::dynamo::key(order_pk(order_id), notification_sk(event_id))
}

#[derive(Clone, Debug)]
pub struct DynamoNotificationStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoNotificationStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoNotificationStore {
            client,
            table: table.into(),
        }
    }

    pub async fn get(
        &self,
        order_id: &str,
        event_id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        get_as(&self.client, &self.table, key(order_id, event_id)).await
    }
}

#[async_trait::async_trait]
impl NotificationStore for DynamoNotificationStore {
    async fn is_sent(&self, order_id: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.get(order_id, event_id).await?.is_some())
    }

    async fn record_sent(&self, record: &NotificationRecord) -> Result<bool, StoreError> {
        let item = keyed(key(&record.order_id, &record.event_id), record)?;
        put_alone(&self.client, &put_new(&self.table, item)?).await
    }
}
