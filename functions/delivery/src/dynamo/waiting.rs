//! The waiting list: deliveries that found no free courier, in the sparse index `gsi1`
//! under `DELIVERY#WAITING`, oldest first, until a courier claims one or it is cancelled.

use super::DynamoDeliveryStore;
use crate::deliveries::DeliveryStatus;
use dishpatch::aws::dynamo::{built, n, s};
use dishpatch::error::StoreError;
use dishpatch::keys::WAITING_DELIVERIES;

type Update = aws_sdk_dynamodb::types::Update;

impl DynamoDeliveryStore {
    /// Up to `limit` orders whose delivery looked WAITING, oldest first.
    pub(super) async fn waiting_orders(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.listed(WAITING_DELIVERIES, "orderId", limit).await
    }

    /// The WAITING delivery DISPATCHED by `courier_id`, out of the waiting index.
    pub(super) fn dispatch_waiting(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<Update, StoreError> {
        built(
            self.delivery_update(order_id)
                .update_expression(
                    "SET #status = :to, courierId = :c, dispatchedAt = :at, updatedAt = :at \
                     REMOVE gsi1pk, gsi1sk",
                )
                .condition_expression("#status = :from")
                .expression_attribute_values(":from", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":to", s(DeliveryStatus::Dispatched.as_str()))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )
    }

    /// WAITING -> CANCELLED, out of the waiting index.
    pub(super) fn cancel_waiting_update(&self, order_id: &str) -> Result<Update, StoreError> {
        built(
            self.delivery_update(order_id)
                .update_expression("SET #status = :to, updatedAt = :at REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :from")
                .expression_attribute_values(":from", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":to", s(DeliveryStatus::Cancelled.as_str()))
                .expression_attribute_values(":at", s(dishpatch::envelope::now()))
                .build(),
        )
    }

    /// The WAITING delivery's `attempt` from `attempt - 1` (absent counts as 0) to `attempt`.
    pub(super) fn retry_update(&self, order_id: &str, attempt: u32) -> Result<Update, StoreError> {
        let previous = attempt.saturating_sub(1);
        built(
            self.delivery_update(order_id)
                .update_expression("SET attempt = :next")
                .condition_expression(
                    "#status = :waiting AND (attempt = :prev OR (attribute_not_exists(attempt) AND :prev = :zero))",
                )
                .expression_attribute_values(":waiting", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":next", n(attempt))
                .expression_attribute_values(":prev", n(previous))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )
    }
}
