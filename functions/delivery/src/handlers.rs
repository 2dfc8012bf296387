//! The saga's delivery commands: DispatchDelivery and CancelDelivery, and the
//! function's own delayed RetryDispatch.
//!
//! Idempotency: the delivery record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and
//! the publish heals when the command is retried.
//!
//! No free courier: the delivery is recorded WAITING (oldest first in the waiting
//! index), the saga is told (DeliveryWaiting), and a RetryDispatch is queued with a
//! growing delay until the saga's dispatch deadline (`dispatchBy`). A courier freed by
//! a completion or a cancel, or coming on shift, claims the oldest waiting delivery at
//! once ([`hand_off`]). At the deadline the saga cancels the delivery, which takes a
//! waiting one off the queue.

use crate::deliveries::{Claim, Delivery, DeliveryStatus};
use crate::App;
use dishpatch::config::Env;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::outbox::Delivery as Sending;
use dishpatch::runtime::MessageError;
use dishpatch::worker::{kept_changing, stored};
use std::hash::{Hash, Hasher};

/// Couriers read from the free index per dispatch.
pub const CANDIDATES: usize = 5;
/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;
pub const NO_COURIER: &str = "NO_COURIER";
/// Waiting deliveries a freed courier looks at, oldest first.
const HAND_OFF_CANDIDATES: usize = 3;

/// How a delivery with no free courier keeps looking for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// The dispatch deadline when a command names none (`DISPATCH_DEADLINE_SECONDS`).
    pub deadline_seconds: u32,
    /// The delay before the first retry, doubled for each next one
    /// (`DISPATCH_RETRY_SECONDS`).
    pub first_retry_seconds: u32,
    /// The longest delay between retries (`DISPATCH_RETRY_MAX_SECONDS`).
    pub max_retry_seconds: u32,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            deadline_seconds: 600,
            first_retry_seconds: 15,
            max_retry_seconds: 120,
        }
    }
}

impl Waiting {
    pub fn from_env(env: &Env) -> Self {
        let d = Waiting::default();
        let num = |name: &str, default: u32| {
            env.get(name)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(default)
        };
        Waiting {
            deadline_seconds: num("DISPATCH_DEADLINE_SECONDS", d.deadline_seconds),
            first_retry_seconds: num("DISPATCH_RETRY_SECONDS", d.first_retry_seconds).max(1),
            max_retry_seconds: num("DISPATCH_RETRY_MAX_SECONDS", d.max_retry_seconds)
                .clamp(1, dishpatch::orchestration::MAX_DELAY_SECONDS),
        }
    }

    /// The delay before retry `attempt` (1, 2, ...): doubling, capped.
    pub fn delay(&self, attempt: u32) -> u32 {
        let doubled = u64::from(self.first_retry_seconds) << attempt.saturating_sub(1).min(20);
        doubled.min(u64::from(self.max_retry_seconds)) as u32
    }
}

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

/// A courier that looks free, claimed for the WAITING delivery `d`: the delivery as
/// dispatched, or `None` if no courier could be claimed now.
async fn claim_free_courier(app: &App, d: &Delivery) -> Result<Option<Delivery>, MessageError> {
    let mut candidates = app.deliveries.available_couriers(CANDIDATES).await?;
    if !candidates.is_empty() {
        let start = (spread(&d.order_id) % candidates.len() as u64) as usize;
        candidates.rotate_left(start);
    }
    let at = now();
    for courier_id in candidates {
        match app
            .deliveries
            .claim_waiting(&courier_id, &d.order_id, &at)
            .await?
        {
            Claim::Claimed => {
                tracing::info!(courier_id = %courier_id, "courier dispatched to a waiting order");
                return Ok(Some(dispatched_from(d, &courier_id, &at)));
            }
            Claim::CourierTaken | Claim::Contended => continue,
            // Not waiting any more (claimed by a freed courier, or cancelled).
            Claim::DeliveryExists => {
                return Ok(app.deliveries.get(&d.order_id).await?);
            }
        }
    }
    Ok(None)
}

fn dispatched_from(d: &Delivery, courier_id: &str, at: &str) -> Delivery {
    Delivery {
        courier_id: Some(courier_id.to_owned()),
        status: DeliveryStatus::Dispatched,
        dispatched_at: Some(at.to_owned()),
        updated_at: at.to_owned(),
        ..d.clone()
    }
}

/// Queues retry `attempt` of the waiting delivery `d` to this function's own queue,
/// delayed, unless it would land after the dispatch deadline (the saga's timeout
/// cancels the delivery then).
async fn queue_retry(
    app: &App,
    cause: &Envelope,
    d: &Delivery,
    attempt: u32,
) -> Result<(), MessageError> {
    let delay = app.waiting.delay(attempt);
    let lands = chrono::Utc::now() + chrono::Duration::seconds(delay.into());
    let before_deadline = d
        .dispatch_by
        .as_deref()
        .and_then(|by| chrono::DateTime::parse_from_rfc3339(by).ok())
        .is_none_or(|by| lands < by);
    if !before_deadline {
        tracing::info!(attempt, "no retry after the dispatch deadline");
        return Ok(());
    }
    let retry = cause.follow(MessageType::RetryDispatch, data::RetryDispatch { attempt });
    app.outlets
        .publisher
        .deliver(
            &retry,
            &Sending {
                delay_seconds: Some(delay),
                ..Sending::default()
            },
        )
        .await?;
    Ok(())
}

/// RetryDispatch: the `attempt`-th look for a courier for a waiting delivery. A retry
/// that is not the delivery's next one (a duplicate) does nothing; a delivery no longer
/// waiting re-publishes its outcome (healing a lost publish of a hand-off).
pub async fn retry(app: &App, msg: &Envelope) -> Result<(), MessageError> {
    let attempt = msg.data_as::<data::RetryDispatch>()?.attempt;
    let Some(d) = app.deliveries.get(&msg.order_id).await? else {
        return Err(MessageError::unknown_reference(format!(
            "no delivery for order {}",
            msg.order_id
        )));
    };
    match d.status {
        DeliveryStatus::Waiting => {}
        // Claimed by a freed courier: its publish may have been lost.
        DeliveryStatus::Dispatched | DeliveryStatus::Delivered => {
            return publish_outcome(app, msg, &d).await
        }
        // Cancelled while waiting: the saga has moved on.
        DeliveryStatus::Cancelled | DeliveryStatus::Unavailable => return Ok(()),
    }
    if d.attempt.saturating_add(1) != attempt {
        tracing::info!(attempt, recorded = d.attempt, "stale retry; ignored");
        return Ok(());
    }
    if let Some(found) = claim_free_courier(app, &d).await? {
        return publish_outcome(app, msg, &found).await;
    }
    // Queue the next one, then record it: a duplicate of this retry queues one too, but
    // only one of them moves the record on, and the other's retry is then stale.
    queue_retry(app, msg, &d, attempt + 1).await?;
    app.deliveries.schedule_retry(&d.order_id, attempt).await?;
    tracing::info!(attempt, "still no courier free");
    Ok(())
}

/// A courier just freed (a delivery completed or cancelled) or on shift: it claims the
/// oldest waiting delivery at once, and the saga hears of the dispatch. Best effort:
/// the waiting delivery's own retries and the saga's deadline cover a failure here.
pub async fn hand_off(app: &App, courier_id: &str) {
    if let Err(e) = try_hand_off(app, courier_id).await {
        tracing::warn!(courier_id, error = %e, "hand-off to a waiting order failed; its retries will look again");
    }
}

async fn try_hand_off(app: &App, courier_id: &str) -> Result<(), MessageError> {
    let waiting = app.deliveries.waiting(HAND_OFF_CANDIDATES).await?;
    for order_id in waiting {
        let at = now();
        match app
            .deliveries
            .claim_waiting(courier_id, &order_id, &at)
            .await?
        {
            Claim::Claimed => {
                let d = stored(app.deliveries.get(&order_id).await?, "delivery")?;
                tracing::info!(orderId = %order_id, courier_id, "courier handed the oldest waiting order");
                let mut fact = Envelope::new(
                    MessageType::DeliveryDispatched,
                    &order_id,
                    data::Courier {
                        courier_id: courier_id.to_owned(),
                    },
                );
                if d.traceparent.is_some() {
                    fact.traceparent = d.traceparent.clone();
                }
                app.outlets.publisher.publish(&fact).await?;
                return Ok(());
            }
            // Taken by someone else, or cancelled: the next one.
            Claim::DeliveryExists => continue,
            // The courier is not free any more (a new dispatch took it): done.
            Claim::CourierTaken | Claim::Contended => return Ok(()),
        }
    }
    Ok(())
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

fn spread(order_id: &str) -> u64 {
    // DefaultHasher::new() is deterministic; good enough to spread orders over candidates.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    order_id.hash(&mut h);
    h.finish()
}
