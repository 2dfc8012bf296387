//! Shifts on the courier's own record: on shift it is AVAILABLE and in the free index,
//! off shift it is OFF_SHIFT and out of it; a BUSY courier stays on shift.

use super::{courier_key, DynamoDeliveryStore, AVAILABLE_KEY};
use crate::couriers::{Courier, CourierStatus, CourierStore, OffShift};
use dishpatch::aws::dynamo::{built, get_as, s, update_alone};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;

/// Tries of a shift change whose courier changed between the write and the read.
const SHIFT_ATTEMPTS: usize = 3;

#[async_trait::async_trait]
impl CourierStore for DynamoDeliveryStore {
    async fn courier(&self, courier_id: &str) -> Result<Option<Courier>, StoreError> {
        get_as(&self.client, &self.table, courier_key(courier_id)).await
    }

    async fn go_on_shift(&self, courier_id: &str) -> Result<Courier, StoreError> {
        let update = built(
            self.courier_update(courier_id)
                .update_expression(
                    "SET #status = :available, courierId = :c, gsi1pk = :index, gsi1sk = :c, updatedAt = :at",
                )
                .condition_expression("attribute_not_exists(pk) OR #status = :off")
                .expression_attribute_values(":available", s(CourierStatus::Available.as_str()))
                .expression_attribute_values(":off", s(CourierStatus::OffShift.as_str()))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":index", s(AVAILABLE_KEY))
                .expression_attribute_values(":at", s(now()))
                .build(),
        )?;
        // Not applied: already on shift (AVAILABLE or BUSY), where it should be; unless it
        // went off shift meanwhile, which the next try then undoes.
        self.change_shift(courier_id, &update, |c| c.filter(|c| c.status.on_shift()))
            .await
    }

    async fn go_off_shift(&self, courier_id: &str) -> Result<OffShift, StoreError> {
        let update = built(
            self.courier_update(courier_id)
                .update_expression("SET #status = :off, updatedAt = :at REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :available")
                .expression_attribute_values(":available", s(CourierStatus::Available.as_str()))
                .expression_attribute_values(":off", s(CourierStatus::OffShift.as_str()))
                .expression_attribute_values(":at", s(now()))
                .build(),
        )?;
        self.change_shift(courier_id, &update, |c| match c {
            Some(c) if c.status == CourierStatus::Busy => Some(OffShift::OnDelivery(c)),
            // Freed between the update and the read: try again.
            Some(c) if c.status == CourierStatus::Available => None,
            other => Some(OffShift::Done(other)),
        })
        .await
    }
}

impl DynamoDeliveryStore {
    /// Applies the conditional `update` and reads the courier back, until `settled` says
    /// what the change came to; a courier that keeps changing under it is a conflict.
    async fn change_shift<R>(
        &self,
        courier_id: &str,
        update: &aws_sdk_dynamodb::types::Update,
        settled: impl Fn(Option<Courier>) -> Option<R> + Send + Sync,
    ) -> Result<R, StoreError> {
        for _ in 0..SHIFT_ATTEMPTS {
            update_alone(&self.client, update).await?;
            if let Some(done) = settled(self.courier(courier_id).await?) {
                return Ok(done);
            }
        }
        Err(StoreError::Conflict("the courier kept changing".into()))
    }
}
