//! Turns a saga [`Transition`] into the next order version and the messages it sends.
//! Pure: the caller writes both in one conditional write (the outbox).

use crate::envelope::{data, Envelope, MessageType};
use crate::order::{Order, TimelineEntry};
use crate::saga::{SagaCommand, SagaFact, Transition};

/// The order after the transition (version bumped, timeline appended) and its outbox.
pub fn advance(
    order: &Order,
    t: &Transition,
    cause: &str,
    caused_by: Option<&Envelope>,
    at: &str,
) -> (Order, Vec<Envelope>) {
    let mut next = order.clone();
    next.saga = t.state.clone();
    next.version = order.version + 1;
    next.updated_at = at.to_owned();
    next.timeline.push(TimelineEntry {
        at: at.to_owned(),
        status: t.state.status,
        cause: cause.to_owned(),
        detail: detail(&next, t),
    });
    let outbox = messages(&next, t, caused_by);
    (next, outbox)
}

fn detail(order: &Order, t: &Transition) -> Option<String> {
    let mut parts: Vec<String> = t.commands.iter().map(|c| format!("{c:?}")).collect();
    if t.state.status == crate::order::OrderStatus::Cancelled {
        if let Some(r) = &order.saga.cancel_reason {
            parts.push(format!("reason: {r}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The commands and facts a transition sends, each linked to what caused it.
pub fn messages(order: &Order, t: &Transition, caused_by: Option<&Envelope>) -> Vec<Envelope> {
    let make = |kind: MessageType, payload: serde_json::Value| match caused_by {
        Some(cause) => cause.follow(kind, payload),
        None => Envelope::new(kind, &order.order_id, payload),
    };
    let fact = || {
        serde_json::to_value(data::OrderFact {
            customer_id: order.customer_id.clone(),
            total: order.total.clone(),
            courier_id: order.saga.courier_id.clone(),
            reason: order.saga.cancel_reason.clone(),
        })
        .expect("facts serialize")
    };
    let mut out = Vec::new();
    for c in &t.commands {
        let (kind, payload) = match c {
            SagaCommand::ReserveInventory => (
                MessageType::ReserveInventory,
                serde_json::to_value(data::ReserveInventory {
                    restaurant_id: order.restaurant_id.clone(),
                    items: order.item_quantities(),
                }),
            ),
            SagaCommand::CapturePayment => (
                MessageType::CapturePayment,
                serde_json::to_value(data::CapturePayment {
                    customer_id: order.customer_id.clone(),
                    amount: order.total.clone(),
                    method: order.payment_method,
                }),
            ),
            SagaCommand::DispatchDelivery => (
                MessageType::DispatchDelivery,
                serde_json::to_value(data::DispatchDelivery {
                    restaurant_id: order.restaurant_id.clone(),
                    delivery_address: order.delivery_address.clone(),
                }),
            ),
            SagaCommand::CommitInventory => {
                (MessageType::CommitInventory, Ok(serde_json::json!({})))
            }
            SagaCommand::ReleaseInventory => {
                (MessageType::ReleaseInventory, Ok(serde_json::json!({})))
            }
            SagaCommand::RefundPayment => (MessageType::RefundPayment, Ok(serde_json::json!({}))),
            SagaCommand::CancelDelivery => (MessageType::CancelDelivery, Ok(serde_json::json!({}))),
        };
        out.push(make(kind, payload.expect("commands serialize")));
    }
    for f in &t.facts {
        let kind = match f {
            SagaFact::OrderPlaced => MessageType::OrderPlaced,
            SagaFact::OrderConfirmed => MessageType::OrderConfirmed,
            SagaFact::OrderDispatched => MessageType::OrderDispatched,
            SagaFact::OrderDelivered => MessageType::OrderDelivered,
            SagaFact::OrderCancelled => MessageType::OrderCancelled,
        };
        out.push(make(kind, fact()));
    }
    out
}
