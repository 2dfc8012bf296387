//! DispatchDelivery: claim a free courier for the order, or record it WAITING; and the
//! outcome a delivery record stands for, published again for a duplicate.

use super::waiting::{claim_free_courier, queue_retry};
use crate::deliveries::{Claim, Delivery, DeliveryStatus};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::MessageError;
use dishpatch::worker::stored;
use std::hash::{Hash, Hasher};

/// Couriers read from the free index per dispatch.
pub const CANDIDATES: usize = 5;
pub const NO_COURIER: &str = "NO_COURIER";

pub async fn dispatch(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let req: data::DispatchDelivery = cmd.data_as()?;
    if let Some(existing) = app.deliveries.get(order_id).await? {
        tracing::info!(
            status = existing.status.as_str(),
            "duplicate dispatch; re-publishing the outcome"
        );
        if existing.status == DeliveryStatus::Waiting {
            // Still waiting: look again, and if the first retry may never have been
            // queued (a crash after the write), queue it (the retry itself deduplicates).
            if let Some(found) = claim_free_courier(app, &existing).await? {
                return publish_outcome(app, cmd, &found).await;
            }
            publish_outcome(app, cmd, &existing).await?;
            if existing.attempt == 0 {
                queue_retry(app, cmd, &existing, 1).await?;
            }
            return Ok(());
        }
        return publish_outcome(app, cmd, &existing).await;
    }
    let at = now();
    let dispatch_by = req.dispatch_by.clone().or_else(|| {
        let due =
            chrono::Utc::now() + chrono::Duration::seconds(app.waiting.deadline_seconds.into());
        Some(due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    });
    let candidates = candidates(app, order_id).await?;
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
            dispatched_at: Some(at.clone()),
            dispatch_by: dispatch_by.clone(),
            attempt: 0,
            traceparent: cmd.traceparent.clone(),
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
    let waiting = Delivery {
        order_id: order_id.to_owned(),
        courier_id: None,
        status: DeliveryStatus::Waiting,
        restaurant_id: req.restaurant_id,
        delivery_address: Some(req.delivery_address),
        reason: None,
        created_at: at.clone(),
        updated_at: at,
        dispatched_at: None,
        dispatch_by,
        attempt: 0,
        traceparent: cmd.traceparent.clone(),
    };
    if !app.deliveries.record(&waiting).await? {
        return republish_stored(app, cmd).await;
    }
    tracing::info!(dispatch_by = ?waiting.dispatch_by, "no courier free; waiting for one");
    publish_outcome(app, cmd, &waiting).await?;
    queue_retry(app, cmd, &waiting, 1).await
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
pub(super) async fn publish_outcome(
    app: &App,
    cmd: &Envelope,
    d: &Delivery,
) -> Result<(), MessageError> {
    let fact = match (&d.status, &d.courier_id) {
        (DeliveryStatus::Delivered, Some(courier_id)) => cmd.follow(
            MessageType::DeliveryCompleted,
            data::Courier {
                courier_id: courier_id.clone(),
            },
        ),
        (DeliveryStatus::Waiting, None) => {
            cmd.follow(MessageType::DeliveryWaiting, serde_json::json!({}))
        }
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

/// Couriers that look free, for `order_id`.
pub(super) async fn candidates(app: &App, order_id: &str) -> Result<Vec<String>, StoreError> {
    let mut candidates = app.deliveries.available_couriers(CANDIDATES).await?;
    // Concurrent dispatches read the same head of the index: start each order at a
    // different candidate so they rarely race for the same courier.
    if !candidates.is_empty() {
        let start = (spread(order_id) % candidates.len() as u64) as usize;
        candidates.rotate_left(start);
    }
    Ok(candidates)
}

fn spread(order_id: &str) -> u64 {
    // DefaultHasher::new() is deterministic; good enough to spread orders over candidates.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    order_id.hash(&mut h);
    h.finish()
}
