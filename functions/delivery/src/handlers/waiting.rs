//! An order waiting for a courier: how long it keeps looking ([`Waiting`]), its delayed
//! retries (RetryDispatch), and the hand-off to a courier just freed or on shift.

use super::dispatch::{candidates, publish_outcome};
use crate::deliveries::{Claim, Delivery, DeliveryStatus};
use crate::App;
use dishpatch::config::Env;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::outbox::Delivery as Sending;
use dishpatch::runtime::MessageError;
use dishpatch::worker::stored;

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

/// A courier that looks free, claimed for the WAITING delivery `d`: the delivery as
/// dispatched, or `None` if no courier could be claimed now.
pub(super) async fn claim_free_courier(
    app: &App,
    d: &Delivery,
) -> Result<Option<Delivery>, MessageError> {
    let candidates = candidates(app, &d.order_id).await?;
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
pub(super) async fn queue_retry(
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
