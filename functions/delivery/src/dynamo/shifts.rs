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
        for _ in 0..SHIFT_ATTEMPTS {
            // Not applied: already on shift (AVAILABLE or BUSY), where it should be; unless
            // it went off shift meanwhile, which this try then undoes.
            update_alone(&self.client, &update).await?;
            match self.courier(courier_id).await? {
                Some(c) if c.status.on_shift() => return Ok(c),
                _ => continue,
            }
        }
        Err(StoreError::Conflict("the courier kept changing".into()))
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
        for _ in 0..SHIFT_ATTEMPTS {
            update_alone(&self.client, &update).await?;
            match self.courier(courier_id).await? {
                Some(c) if c.status == CourierStatus::Busy => return Ok(OffShift::OnDelivery(c)),
                // Freed between the update and the read: try again.
                Some(c) if c.status == CourierStatus::Available => continue,
                other => return Ok(OffShift::Done(other)),
            }
        }
        Err(StoreError::Conflict("the courier kept changing".into()))
    }
}
