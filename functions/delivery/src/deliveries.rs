//! The delivery record (one per order) and the courier pool: the port and its DynamoDB adapter.
//!
//! A courier item is `COURIER#{id}`/`COURIER` with `status` AVAILABLE|BUSY; only while
//! AVAILABLE does it carry `gsi1pk = COURIER#AVAILABLE`, so the sparse index `gsi1` lists
//! exactly the free couriers. Claiming a courier and writing the delivery happen in one
//! transaction conditional on the courier still being AVAILABLE: a courier is never on two
//! active deliveries (invariant 4).

use dishpatch::aws::dynamo::{
    built, classify, from_items, get_as, key, keyed, put_alone, put_new, s, status_move, transact,
    update_alone, Action, Item,
};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;
use dishpatch::keys::{courier_pk, delivery_pk, COURIER_SK, DELIVERY_SK};
use dishpatch::order::Address;
use serde::{Deserialize, Serialize};

/// The partition key of the sparse "free couriers" index.
pub use dishpatch::keys::AVAILABLE_COURIERS as AVAILABLE_KEY;
const GSI: &str = "gsi1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Dispatched,
    Delivered,
    Cancelled,
    /// No courier could be found: the recorded outcome of the dispatch step.
    Unavailable,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Dispatched => "DISPATCHED",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Cancelled => "CANCELLED",
            DeliveryStatus::Unavailable => "UNAVAILABLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub order_id: String,
    /// Absent only for a record without a courier: UNAVAILABLE, or a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    pub status: DeliveryStatus,
    /// Empty (and not stored) only for a tombstone: a cancel names no restaurant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restaurant_id: String,
    /// Absent only for a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<Address>,
    /// Why a record has no courier (`NO_COURIER`, or `CANCELLED` for a tombstone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The reason a tombstone records, and a dispatch that finds it repeats.
pub const CANCELLED_BEFORE_DISPATCH: &str = "CANCELLED";

impl Delivery {
    /// What a cancel leaves when it finds no delivery ("cancel wins"): CANCELLED, with no
    /// courier. The saga cancels a dispatch that missed its deadline, whose command may
    /// still be in flight; when it lands it finds this record and claims no courier.
    pub fn tombstone(order_id: &str, at: String) -> Self {
        Delivery {
            order_id: order_id.to_owned(),
            courier_id: None,
            status: DeliveryStatus::Cancelled,
            restaurant_id: String::new(),
            delivery_address: None,
            reason: Some(CANCELLED_BEFORE_DISPATCH.to_owned()),
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

/// What one attempt to claim a courier for a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The courier is now BUSY with this order and the delivery is recorded DISPATCHED.
    Claimed,
    /// The courier is no longer AVAILABLE (someone else claimed it): try the next one.
    CourierTaken,
    /// Another transaction touched the courier at the same moment; the winner is not known yet.
    Contended,
    /// A delivery record for this order already exists (a concurrent duplicate won).
    DeliveryExists,
}

#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The order's delivery record (strongly consistent).
    async fn get(&self, order_id: &str) -> Result<Option<Delivery>, StoreError>;
    /// Up to `limit` couriers that looked AVAILABLE (the index is eventually consistent).
    async fn available_couriers(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Claims `courier_id` (AVAILABLE -> BUSY) and records `delivery` (new) in one transaction.
    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError>;
    /// Records a delivery without a courier (UNAVAILABLE, or a CANCELLED tombstone) if none
    /// exists yet; false if one already existed.
    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError>;
    /// DISPATCHED (by `courier_id`) -> `to`, and the courier back to AVAILABLE, in one
    /// transaction. False if the delivery is not DISPATCHED by that courier.
    async fn finish(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
    ) -> Result<bool, StoreError>;
}

fn delivery_key(order_id: &str) -> Item {
    key(delivery_pk(order_id), DELIVERY_SK)
}

#[derive(Clone, Debug)]
pub struct DynamoDeliveryStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDeliveryStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoDeliveryStore {
            client,
            table: table.into(),
        }
    }

    fn put_new(&self, delivery: &Delivery) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let item = keyed(delivery_key(&delivery.order_id), delivery)?;
        put_new(&self.table, item)
    }

    /// The courier back to AVAILABLE, only if it is still on `order_id`.
    fn release_courier(
        &self,
        order_id: &str,
        courier_id: &str,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression(
                    "SET #status = :available, gsi1pk = :index, gsi1sk = :c, updatedAt = :at REMOVE activeOrderId",
                )
                .condition_expression("activeOrderId = :o")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":index", s(AVAILABLE_KEY))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":o", s(order_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )
    }

    /// The delivery DISPATCHED (by `courier_id`) -> `to`.
    fn move_delivery(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        let dispatched = DeliveryStatus::Dispatched.as_str();
        built(
            status_move(
                &self.table,
                delivery_key(order_id),
                dispatched,
                to.as_str(),
                at,
            )
            .condition_expression("#status = :from AND courierId = :c")
            .expression_attribute_values(":c", s(courier_id))
            .build(),
        )
    }
}

#[async_trait::async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    async fn get(&self, order_id: &str) -> Result<Option<Delivery>, StoreError> {
        get_as(&self.client, &self.table, delivery_key(order_id)).await
    }

    async fn available_couriers(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Free {
            courier_id: String,
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI)
            .key_condition_expression("gsi1pk = :index")
            .expression_attribute_values(":index", s(AVAILABLE_KEY))
            .projection_expression("courierId")
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(classify)?;
        let free: Vec<Free> = from_items(out.items)?;
        Ok(free.into_iter().map(|f| f.courier_id).collect())
    }

    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError> {
        use aws_sdk_dynamodb::types::Update;
        let busy = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression(
                    "SET #status = :busy, activeOrderId = :o, updatedAt = :at REMOVE gsi1pk, gsi1sk",
                )
                .condition_expression("#status = :available")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":busy", s("BUSY"))
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":o", s(&delivery.order_id))
                .expression_attribute_values(":at", s(now()))
                .build(),
        )?;
        let tx = vec![Action::Update(busy), Action::Put(self.put_new(delivery)?)];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Claim::Claimed);
        };
        // The delivery record decides first: if it exists, whichever courier we tried is moot.
        if refused.failed(1) {
            return Ok(Claim::DeliveryExists);
        }
        if refused.failed(0) {
            return Ok(Claim::CourierTaken);
        }
        match refused.reason(0) {
            Some("TransactionConflict") => Ok(Claim::Contended),
            _ => Err(refused.into()),
        }
    }

    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        put_alone(&self.client, &self.put_new(delivery)?).await
    }

    async fn finish(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let at = now();
        let tx = vec![
            Action::Update(self.move_delivery(order_id, courier_id, to, &at)?),
            Action::Update(self.release_courier(order_id, courier_id, &at)?),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(true);
        };
        if refused.failed(0) {
            return Ok(false);
        }
        if refused.failed(1) {
            // The courier is not on this order any more (edited by hand, or a broken
            // invariant): finish the delivery anyway rather than leave it DISPATCHED for
            // ever, and leave the courier as it is.
            tracing::warn!(
                order_id,
                courier_id,
                "courier not held by this delivery; finishing the delivery alone"
            );
            let moved = self.move_delivery(order_id, courier_id, to, &at)?;
            return update_alone(&self.client, &moved).await;
        }
        Err(refused.into())
    }
}
