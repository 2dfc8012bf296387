//! CancelDelivery: bring the order's delivery to rest, freeing its courier (who is then
//! handed the oldest waiting order), or answer with the completion if it was delivered.

use super::waiting::hand_off;
use crate::deliveries::{Delivery, DeliveryStatus};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::MessageError;
use dishpatch::worker::kept_changing;

/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;

pub async fn cancel(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let fact = match release(app, &cmd.order_id).await? {
        None => cmd.follow(MessageType::DeliveryCancelled, serde_json::json!({})),
        // Too late to cancel: the truth is the completion, and the saga, which undoes the
        // dispatch before anything else, can still deliver the order instead of
        // refunding a delivered one.
        Some(courier_id) => {
            cmd.follow(MessageType::DeliveryCompleted, data::Courier { courier_id })
        }
    };
    app.outlets.publisher.publish(&fact).await?;
    Ok(())
}

/// Brings the order's delivery to rest: a DISPATCHED one is cancelled and its courier
/// freed. `Some(courier)`: it was delivered already, by that courier.
async fn release(app: &App, order_id: &str) -> Result<Option<String>, MessageError> {
    for _ in 0..ATTEMPTS {
        match app.deliveries.get(order_id).await? {
            Some(Delivery {
                status: DeliveryStatus::Dispatched,
                courier_id: Some(courier_id),
                ..
            }) => {
                match app
                    .deliveries
                    .finish(order_id, &courier_id, DeliveryStatus::Cancelled)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(courier_id = %courier_id, "delivery cancelled; courier released");
                        hand_off(app, &courier_id).await;
                        return Ok(None);
                    }
                    // It changed under us (completed, cancelled by a duplicate): decide again.
                    Ok(false) | Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(Delivery {
                status: DeliveryStatus::Delivered,
                courier_id,
                ..
            }) => {
                tracing::warn!("cancel for a delivered order; answering with the completion");
                return Ok(Some(courier_id.unwrap_or_default()));
            }
            // Waiting for a courier: off the queue, so none is claimed for it.
            Some(Delivery {
                status: DeliveryStatus::Waiting,
                ..
            }) => {
                if app.deliveries.cancel_waiting(order_id).await? {
                    tracing::info!("waiting delivery cancelled");
                    return Ok(None);
                }
                // A courier claimed it meanwhile: cancel that dispatch on the fresh record.
            }
            // Already cancelled, or no courier was found: nothing to undo.
            Some(_) => return Ok(None),
            // No dispatch yet, or ever: it may still be in flight (the saga cancels a
            // dispatch that missed its deadline). Cancel wins: leave a tombstone so that
            // dispatch, when it lands, finds a record and claims no courier.
            None => {
                if app
                    .deliveries
                    .record(&Delivery::tombstone(order_id, now()))
                    .await?
                {
                    tracing::info!("cancel before any dispatch; tombstone left");
                    return Ok(None);
                }
                // The dispatch landed meanwhile: cancel it on the fresh record.
            }
        }
    }
    Err(kept_changing("delivery"))
}
