//! The saga's delivery commands: DispatchDelivery and CancelDelivery.
//!
//! Idempotency: the delivery record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and
//! the publish heals when the command is retried.

use crate::deliveries::{Claim, Delivery, DeliveryStatus};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::MessageError;
use dishpatch::worker::{kept_changing, stored};
use std::hash::{Hash, Hasher};

/// Couriers read from the free index per dispatch.
pub const CANDIDATES: usize = 5;
/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;
pub const NO_COURIER: &str = "NO_COURIER";

pub async fn dispatch(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let req: data::DispatchDelivery = cmd.data_as()?;
    if let Some(existing) = app.deliveries.get(order_id).await? {
        tracing::info!(
            status = existing.status.as_str(),
            "duplicate dispatch; re-publishing the outcome"
        );
        return publish_outcome(app, cmd, &existing).await;
    }
    let at = now();
    let mut candidates = app.deliveries.available_couriers(CANDIDATES).await?;
    // Concurrent dispatches read the same head of the index: start each order at a
    // different candidate so they rarely race for the same courier.
    if !candidates.is_empty() {
        let start = (spread(order_id) % candidates.len() as u64) as usize;
        candidates.rotate_left(start);
    }
    let mut contended = false;
    for courier_id in candidates {
        let delivery = Delivery {
            order_id: order_id.to_owned(),
            courier_id: Some(courier_id.clone()),
            status: DeliveryStatus::Dispatched,
            restaurant_id: req.restaurant_id.clone(),
            delivery_address: Some(req.delivery_address.clone()),
            reason: None,
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        match app.deliveries.claim(&courier_id, &delivery).await? {
            Claim::Claimed => {
                tracing::info!(courier_id = %courier_id, "courier dispatched");
                return publish_outcome(app, cmd, &delivery).await;
            }
            Claim::CourierTaken => continue,
            Claim::Contended => contended = true,
            Claim::DeliveryExists => return republish_stored(app, cmd).await,
        }
    }
    if contended {
        // A courier we raced for may still be free: retry the command rather than
        // declare no courier while the outcome is unknown.
        return Err(MessageError::Transient(
            "couriers contended; retrying".into(),
        ));
    }
    let unavailable = Delivery {
        order_id: order_id.to_owned(),
        courier_id: None,
        status: DeliveryStatus::Unavailable,
        restaurant_id: req.restaurant_id,
        delivery_address: Some(req.delivery_address),
        reason: Some(NO_COURIER.into()),
        created_at: at.clone(),
        updated_at: at,
    };
    if app.deliveries.record(&unavailable).await? {
        tracing::info!("no courier available");
        publish_outcome(app, cmd, &unavailable).await
    } else {
        republish_stored(app, cmd).await
    }
}

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

/// Reads the record a concurrent duplicate wrote and re-publishes its outcome.
async fn republish_stored(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let d = stored(app.deliveries.get(&cmd.order_id).await?, "delivery")?;
    publish_outcome(app, cmd, &d).await
}

/// Publishes the dispatch outcome a record stands for. A record without a courier answers
/// DeliveryUnavailable: for a tombstone that is the truth (no courier was claimed, and
/// there is none to name), and the saga, cancelling by then, ignores a failed step. A
/// delivered one answers with its completion.
async fn publish_outcome(app: &App, cmd: &Envelope, d: &Delivery) -> Result<(), MessageError> {
    let fact = match (&d.status, &d.courier_id) {
        (DeliveryStatus::Delivered, Some(courier_id)) => cmd.follow(
            MessageType::DeliveryCompleted,
            data::Courier {
                courier_id: courier_id.clone(),
            },
        ),
        (DeliveryStatus::Unavailable, _) | (_, None) => cmd.follow(
            MessageType::DeliveryUnavailable,
            data::Rejected {
                reason: d.reason.clone().unwrap_or_else(|| NO_COURIER.into()),
            },
        ),
        (_, Some(courier_id)) => cmd.follow(
            MessageType::DeliveryDispatched,
            data::Courier {
                courier_id: courier_id.clone(),
            },
        ),
    };
    app.outlets.publisher.publish(&fact).await?;
    Ok(())
}

fn spread(order_id: &str) -> u64 {
    // DefaultHasher::new() is deterministic; good enough to spread orders over candidates.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    order_id.hash(&mut h);
    h.finish()
}
