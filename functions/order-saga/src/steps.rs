//! Applies a step result (a fact from a worker) to its order.

use dishpatch::envelope::{data, Envelope, MessageType};
use dishpatch::orchestration::Timings;
use dishpatch::orders::OrderStore;
use dishpatch::runtime::MessageError;
use dishpatch::saga::SagaEvent;
use dishpatch::transition::{self, Applied, Cause};
use dishpatch::validation::{is_bounded_text, is_valid_id};

/// The longest reason a step's refusal may carry into the order.
pub const MAX_REASON_CHARS: usize = 200;

/// Re-reads and retries when another writer won the conditional write.
const ATTEMPTS: usize = 4;

/// The saga input a fact stands for.
pub fn saga_event(envelope: &Envelope, kind: MessageType) -> Result<SagaEvent, MessageError> {
    use MessageType as M;
    // What a fact carries into the order (its cancel reason, its courier) is bounded
    // here, so no message can grow the order item.
    let unbounded =
        |what: &str| MessageError::invalid_content(format!("{what} is not bounded text"));
    let reason = || -> Result<String, MessageError> {
        let r = envelope.data_as::<data::Rejected>()?.reason;
        if !is_bounded_text(&r, MAX_REASON_CHARS, true) {
            return Err(unbounded("reason"));
        }
        Ok(r)
    };
    let courier = || -> Result<String, MessageError> {
        let c = envelope.data_as::<data::Courier>()?.courier_id;
        if !is_valid_id(&c) {
            return Err(unbounded("courierId"));
        }
        Ok(c)
    };
    Ok(match kind {
        M::InventoryReserved => SagaEvent::InventoryReserved,
        M::InventoryRejected => SagaEvent::InventoryRejected { reason: reason()? },
        M::InventoryReleased => SagaEvent::InventoryReleased,
        M::PaymentCaptured => SagaEvent::PaymentCaptured,
        M::PaymentDeclined => SagaEvent::PaymentDeclined { reason: reason()? },
        M::PaymentRefunded => SagaEvent::PaymentRefunded,
        M::DeliveryDispatched => SagaEvent::DeliveryDispatched {
            courier_id: courier()?,
        },
        M::DeliveryUnavailable => SagaEvent::DeliveryUnavailable { reason: reason()? },
        M::DeliveryWaiting => SagaEvent::DeliveryWaiting,
        M::DeliveryCancelled => SagaEvent::DeliveryCancelled,
        M::StepTimeout => {
            let t = envelope.data_as::<data::StepTimeout>()?;
            SagaEvent::StepTimeout {
                step: t.step,
                attempt: t.attempt,
            }
        }
        M::DeliveryCompleted => SagaEvent::DeliveryCompleted {
            courier_id: courier()?,
        },
        _ => return Err(MessageError::Unsupported),
    })
}

pub async fn on_step_result(
    orders: &dyn OrderStore,
    timings: &Timings,
    envelope: &Envelope,
    kind: MessageType,
) -> Result<(), MessageError> {
    let event = saga_event(envelope, kind)?;
    let cause = Cause {
        name: kind.as_str(),
        message: Some(envelope),
    };
    let applied =
        transition::apply(orders, timings, &envelope.order_id, &event, cause, ATTEMPTS).await?;
    match applied {
        Applied::Moved { from, to } => {
            tracing::info!(
                from = from.status().as_str(),
                to = to.status().as_str(),
                "transition"
            );
            Ok(())
        }
        Applied::Ignored { order, why } => {
            tracing::info!(status = order.status().as_str(), why, "no-op");
            Ok(())
        }
        Applied::Refused { error, .. } => {
            tracing::warn!(error = %error, "refused transition");
            Ok(())
        }
        // Results only exist for orders that were written first: this one is not ours.
        Applied::Missing => Err(MessageError::unknown_reference(format!(
            "no order {}",
            envelope.order_id
        ))),
        Applied::Contended => Err(MessageError::Transient(format!(
            "order {} kept changing; retrying later",
            envelope.order_id
        ))),
    }
}
