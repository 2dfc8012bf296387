//! The record of each customer message (one per order fact): the port and its DynamoDB adapter.
//!
//! The record is written before the message is sent and flagged `published` after, so a
//! crash in between re-sends on retry, and a duplicate of a sent message sends nothing.

use dishpatch::aws::dynamo::{classify, from_item, s, to_item, Item};
use dishpatch::error::StoreError;
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
    pub published: bool,
}

/// What writing a record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Written now: send it.
    New,
    /// Written earlier but never sent (a crash or a failed send): send the stored one.
    Unsent(NotificationRecord),
    /// Already sent: a duplicate, do nothing.
    Sent,
}

#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// Writes `record` unless a record for its event exists.
    async fn record(&self, record: &NotificationRecord) -> Result<Recorded, StoreError>;
    async fn mark_published(&self, order_id: &str, event_id: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: NotificationRecord,
}

fn key(order_id: &str, event_id: &str) -> Item {
    Item::from([
        ("pk".to_owned(), s(format!("ORDER#{order_id}"))),
        ("sk".to_owned(), s(format!("NOTIFICATION#{event_id}"))),
    ])
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(order_id, event_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item
            .map(|i| from_item::<RecordItem>(i).map(|r| r.record))
            .transpose()
    }
}

#[async_trait::async_trait]
impl NotificationStore for DynamoNotificationStore {
    async fn record(&self, record: &NotificationRecord) -> Result<Recorded, StoreError> {
        let item = to_item(&RecordItem {
            pk: format!("ORDER#{}", record.order_id),
            sk: format!("NOTIFICATION#{}", record.event_id),
            record: record.clone(),
        })?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        match put {
            Ok(_) => Ok(Recorded::New),
            Err(StoreError::Conflict(_)) => {
                match self.get(&record.order_id, &record.event_id).await? {
                    Some(existing) if existing.published => Ok(Recorded::Sent),
                    Some(existing) => Ok(Recorded::Unsent(existing)),
                    None => Err(StoreError::Aws(
                        "notification record vanished after a conflict".into(),
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn mark_published(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(order_id, event_id)))
            .update_expression("SET published = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
