//! Tells the customer about an order fact: unless already told, render, send, record.

use crate::notifier::CustomerNotification;
use crate::records::NotificationRecord;
use crate::render::{render, CHANNEL};
use crate::App;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dishpatch::emf::metrics::STALE_NOTIFICATIONS;
use dishpatch::emf::{Line, NO_DIMENSIONS};
use dishpatch::envelope::{data::OrderFact, Envelope, MessageType};
use dishpatch::runtime::MessageError;

/// Informational messages older than this when handled are not worth sending any more.
pub const STALE_AFTER: Duration = Duration::seconds(60);

/// The facts customers hear about.
pub const TOLD: &[MessageType] = &[
    MessageType::OrderPlaced,
    MessageType::OrderConfirmed,
    MessageType::OrderAwaitingCourier,
    MessageType::OrderDispatched,
    MessageType::OrderDelivered,
    MessageType::OrderCancelled,
    MessageType::CompensationFailed,
];

/// Where time comes from, so the stale rule is testable without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Only news that loses its value with time may be dropped: a cancellation (with its
/// refund), a failed compensation or a delivery is always told, however late.
pub fn is_informational(kind: MessageType) -> bool {
    matches!(
        kind,
        MessageType::OrderPlaced
            | MessageType::OrderConfirmed
            | MessageType::OrderAwaitingCourier
            | MessageType::OrderDispatched
    )
}

/// How old the fact is at `now`; `None` if its timestamp is unreadable.
pub fn age(occurred_at: &str, now: DateTime<Utc>) -> Option<Duration> {
    DateTime::parse_from_rfc3339(occurred_at)
        .ok()
        .map(|t| now - t.with_timezone(&Utc))
}

pub fn is_stale(kind: MessageType, occurred_at: &str, now: DateTime<Utc>) -> bool {
    // An unreadable timestamp is not a reason to keep a customer in the dark.
    is_informational(kind) && age(occurred_at, now).is_some_and(|a| a > STALE_AFTER)
}

/// The longest reason a fact may carry into a customer's message.
pub const MAX_REASON_CHARS: usize = 200;

pub async fn handle(app: &App, fact: &Envelope, kind: MessageType) -> Result<(), MessageError> {
    if !TOLD.contains(&kind) {
        return Err(MessageError::Unsupported);
    }
    let data: OrderFact = fact.data_as()?;
    // What is rendered into the customer's message and its record is bounded.
    let bounded = dishpatch::validation::is_valid_id(&data.customer_id)
        && data
            .courier_id
            .as_deref()
            .is_none_or(dishpatch::validation::is_valid_id)
        && data
            .reason
            .as_deref()
            .is_none_or(|r| dishpatch::validation::is_bounded_text(r, MAX_REASON_CHARS, false));
    if !bounded {
        return Err(MessageError::invalid_content(
            "customerId, courierId or reason is not bounded",
        ));
    }
    let now = app.clock.now();
    if is_stale(kind, &fact.occurred_at, now) {
        let age_ms = age(&fact.occurred_at, now)
            .map(|a| a.num_milliseconds())
            .unwrap_or_default();
        Line::new()
            .count(&STALE_NOTIFICATIONS, NO_DIMENSIONS)
            .property("orderId", fact.order_id.as_str())
            .property("eventType", kind.as_str())
            .property("ageMs", age_ms)
            .emit();
        tracing::info!(stale = true, age_ms, "stale notification dropped");
        return Ok(());
    }
    if app.records.is_sent(&fact.order_id, &fact.id).await? {
        tracing::info!("duplicate; already sent");
        return Ok(());
    }
    let message = render(kind, &fact.order_id, &data).ok_or(MessageError::Unsupported)?;
    let record = NotificationRecord {
        order_id: fact.order_id.clone(),
        customer_id: data.customer_id,
        event_id: fact.id.clone(),
        event_type: kind.as_str().to_owned(),
        channel: CHANNEL.to_owned(),
        message,
        sent_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    app.notifier
        .send(&CustomerNotification {
            order_id: record.order_id.clone(),
            customer_id: record.customer_id.clone(),
            event_type: record.event_type.clone(),
            channel: record.channel.clone(),
            message: record.message.clone(),
        })
        .await?;
    // One write per message: the record is the proof it was sent.
    if !app.records.record_sent(&record).await? {
        tracing::info!("a concurrent duplicate recorded it first");
    }
    tracing::info!(channel = %record.channel, "customer notified");
    Ok(())
}
