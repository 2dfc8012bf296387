//! [`DeliveryStore`] and [`CourierStore`](crate::couriers::CourierStore) on the delivery
//! table (the layout is in [`crate::deliveries`]): claiming and releasing couriers here,
//! the waiting list in `dynamo/waiting.rs`, a courier's deliveries in
//! `dynamo/courier_deliveries.rs`, shifts in `dynamo/shifts.rs`.

mod courier_deliveries;
mod shifts;
mod waiting;

use crate::couriers::CourierStatus;
use crate::deliveries::{Claim, Delivery, DeliveryPage, DeliveryStatus, DeliveryStore};
use dishpatch::aws::dynamo::page::text;
use dishpatch::aws::dynamo::{
    built, classify, get_as, key, keyed, put_alone, put_new, s, status_move, transact,
    update_alone, Action, Item,
};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;
use dishpatch::keys::{courier_pk, delivery_pk, COURIER_SK, DELIVERY_SK, WAITING_DELIVERIES};

/// The partition key of the sparse "free couriers" index.
pub use dishpatch::keys::AVAILABLE_COURIERS as AVAILABLE_KEY;
const GSI: &str = "gsi1";

type UpdateBuilder = aws_sdk_dynamodb::types::builders::UpdateBuilder;

/// The sort key of a delivery in the waiting index, or in its courier's list.
fn index_sk(at: &str, order_id: &str) -> String {
    format!("{at}#{order_id}")
}

fn delivery_key(order_id: &str) -> Item {
    key(delivery_pk(order_id), DELIVERY_SK)
}

fn courier_key(courier_id: &str) -> Item {
    key(courier_pk(courier_id), COURIER_SK)
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

    /// An update of the courier's record, naming `#status`.
    fn courier_update(&self, courier_id: &str) -> UpdateBuilder {
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(courier_key(courier_id)))
            .expression_attribute_names("#status", "status")
    }

    /// An update of the order's delivery record, naming `#status`.
    fn delivery_update(&self, order_id: &str) -> UpdateBuilder {
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(delivery_key(order_id)))
            .expression_attribute_names("#status", "status")
    }

    /// The `attribute` of up to `limit` (1..=100) items of the sparse index `gsi1` under
    /// `partition` (free couriers, or waiting deliveries), in index order. The index is
    /// eventually consistent: a caller's conditional write decides.
    async fn listed(
        &self,
        partition: &str,
        attribute: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI)
            .key_condition_expression("gsi1pk = :index")
            .expression_attribute_values(":index", s(partition))
            .projection_expression(attribute)
            .scan_index_forward(true)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(classify)?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|i| {
                text(i, attribute)
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::Corrupt(format!("{partition}: no {attribute}")))
            })
            .collect()
    }

    fn put_new(&self, delivery: &Delivery) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let mut item = keyed(delivery_key(&delivery.order_id), delivery)?;
        if delivery.status == DeliveryStatus::Waiting {
            item.insert("gsi1pk".into(), s(WAITING_DELIVERIES));
            item.insert(
                "gsi1sk".into(),
                s(index_sk(&delivery.created_at, &delivery.order_id)),
            );
        }
        put_new(&self.table, item)
    }

    /// The courier AVAILABLE -> BUSY on `order_id`, out of the free index.
    fn busy(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            self.courier_update(courier_id)
                .update_expression(
                    "SET #status = :busy, activeOrderId = :o, updatedAt = :at REMOVE gsi1pk, gsi1sk",
                )
                .condition_expression("#status = :available")
                .expression_attribute_values(":busy", s(CourierStatus::Busy.as_str()))
                .expression_attribute_values(":available", s(CourierStatus::Available.as_str()))
                .expression_attribute_values(":o", s(order_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )
    }

    /// The courier back to AVAILABLE, only if it is still on `order_id`.
    fn release_courier(
        &self,
        order_id: &str,
        courier_id: &str,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            self.courier_update(courier_id)
                .update_expression(
                    "SET #status = :available, gsi1pk = :index, gsi1sk = :c, updatedAt = :at REMOVE activeOrderId",
                )
                .condition_expression("activeOrderId = :o")
                .expression_attribute_values(":available", s(CourierStatus::Available.as_str()))
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
        self.listed(AVAILABLE_KEY, "courierId", limit).await
    }

    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError> {
        let busy = self.busy(courier_id, &delivery.order_id, &now())?;
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

    async fn waiting(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.waiting_orders(limit).await
    }

    async fn claim_waiting(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<Claim, StoreError> {
        let tx = vec![
            Action::Update(self.busy(courier_id, order_id, at)?),
            Action::Update(self.dispatch_waiting(courier_id, order_id, at)?),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Claim::Claimed);
        };
        if refused.failed(1) {
            return Ok(Claim::DeliveryExists);
        }
        if refused.failed(0) {
            return Ok(Claim::CourierTaken);
        }
        match (refused.reason(0), refused.reason(1)) {
            (Some("TransactionConflict"), _) | (_, Some("TransactionConflict")) => {
                Ok(Claim::Contended)
            }
            _ => Err(refused.into()),
        }
    }

    async fn cancel_waiting(&self, order_id: &str) -> Result<bool, StoreError> {
        update_alone(&self.client, &self.cancel_waiting_update(order_id)?).await
    }

    async fn schedule_retry(&self, order_id: &str, attempt: u32) -> Result<bool, StoreError> {
        update_alone(&self.client, &self.retry_update(order_id, attempt)?).await
    }

    async fn for_courier(
        &self,
        courier_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeliveryPage, StoreError> {
        self.courier_page(courier_id, page_size, page_token).await
    }
}
