//! The order saga as a pure state machine: `(state, event) -> (state, commands, facts)`.
//!
//! Forward steps run in a fixed order (reserve stock, take payment, dispatch a courier).
//! Compensation undoes completed steps one at a time, in reverse order; a forward
//! result that arrives after the order was cancelled is undone at once.

use crate::order::OrderStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SagaState {
    pub status: OrderStatus,
    /// Stock is held for the order (reserved and not yet released).
    #[serde(default)]
    pub reserved: bool,
    /// Money is captured (and not yet refunded).
    #[serde(default)]
    pub paid: bool,
    /// A courier is assigned (and not yet released).
    #[serde(default)]
    pub dispatched: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaEvent {
    InventoryReserved,
    InventoryRejected { reason: String },
    InventoryReleased,
    PaymentCaptured,
    PaymentDeclined { reason: String },
    PaymentRefunded,
    DeliveryDispatched { courier_id: String },
    DeliveryUnavailable { reason: String },
    DeliveryCancelled,
    DeliveryCompleted { courier_id: String },
    CancelRequested { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaCommand {
    ReserveInventory,
    CapturePayment,
    DispatchDelivery,
    /// Moves reserved stock to sold once the order is delivered.
    CommitInventory,
    ReleaseInventory,
    RefundPayment,
    CancelDelivery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaFact {
    OrderPlaced,
    OrderConfirmed,
    OrderDispatched,
    OrderDelivered,
    OrderCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: SagaState,
    pub commands: Vec<SagaCommand>,
    pub facts: Vec<SagaFact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Write `state` (conditionally) and send `commands` and `facts`.
    Apply(Transition),
    /// A duplicate or stale event: nothing to write. The reason is for the log.
    Ignore(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    #[error("the order can no longer be cancelled: it is {0}")]
    NotCancellable(&'static str),
}

/// A new order: PENDING, asking for stock.
pub fn start() -> Transition {
    Transition {
        state: SagaState {
            status: OrderStatus::Pending,
            reserved: false,
            paid: false,
            dispatched: false,
            courier_id: None,
            cancel_reason: None,
        },
        commands: vec![SagaCommand::ReserveInventory],
        facts: vec![SagaFact::OrderPlaced],
    }
}

pub fn transition(state: &SagaState, event: &SagaEvent) -> Result<Outcome, SagaError> {
    use OrderStatus as S;
    use SagaEvent as E;
    let cancelled = matches!(
        state.status,
        S::Cancelling | S::Cancelled | S::CompensationFailed
    );
    let mut next = state.clone();
    let outcome = match (state.status, event) {
        // Forward path.
        (S::Pending, E::InventoryReserved) => {
            next.status = S::Reserved;
            next.reserved = true;
            apply(next, vec![SagaCommand::CapturePayment], vec![])
        }
        (S::Reserved, E::PaymentCaptured) => {
            next.status = S::Paid;
            next.paid = true;
            apply(
                next,
                vec![SagaCommand::DispatchDelivery],
                vec![SagaFact::OrderConfirmed],
            )
        }
        (S::Paid, E::DeliveryDispatched { courier_id }) => {
            next.status = S::Dispatched;
            next.dispatched = true;
            next.courier_id = Some(courier_id.clone());
            apply(next, vec![], vec![SagaFact::OrderDispatched])
        }
        (S::Dispatched, E::DeliveryCompleted { .. }) => {
            next.status = S::Delivered;
            next.dispatched = false;
            apply(
                next,
                vec![SagaCommand::CommitInventory],
                vec![SagaFact::OrderDelivered],
            )
        }
        // Facts are unordered: the completion can overtake the dispatch it implies.
        (S::Paid, E::DeliveryCompleted { courier_id }) => {
            next.status = S::Delivered;
            next.courier_id = Some(courier_id.clone());
            apply(
                next,
                vec![SagaCommand::CommitInventory],
                vec![SagaFact::OrderDispatched, SagaFact::OrderDelivered],
            )
        }

        // A step failed: undo what completed.
        (S::Pending, E::InventoryRejected { reason })
        | (S::Reserved, E::PaymentDeclined { reason })
        | (S::Paid, E::DeliveryUnavailable { reason }) => begin_compensation(next, reason),

        // Customer cancel.
        (S::Pending | S::Reserved | S::Paid, E::CancelRequested { reason }) => {
            begin_compensation(next, reason)
        }
        (S::Cancelling | S::Cancelled, E::CancelRequested { .. }) => {
            Outcome::Ignore("already cancelled")
        }
        (status, E::CancelRequested { .. }) => {
            return Err(SagaError::NotCancellable(status.as_str()));
        }

        // A forward step completed after the order was cancelled: undo it at once.
        (_, E::InventoryReserved) if cancelled && !state.reserved => {
            next.reserved = true;
            apply(next, vec![SagaCommand::ReleaseInventory], vec![])
        }
        (_, E::PaymentCaptured) if cancelled && !state.paid => {
            next.paid = true;
            apply(next, vec![SagaCommand::RefundPayment], vec![])
        }
        (_, E::DeliveryDispatched { courier_id }) if cancelled && !state.dispatched => {
            next.dispatched = true;
            next.courier_id = Some(courier_id.clone());
            apply(next, vec![SagaCommand::CancelDelivery], vec![])
        }

        // Compensation confirmations.
        (_, E::DeliveryCancelled) if state.dispatched && cancelled => {
            next.dispatched = false;
            continue_compensation(next)
        }
        (_, E::PaymentRefunded) if state.paid && cancelled => {
            next.paid = false;
            continue_compensation(next)
        }
        (_, E::InventoryReleased) if state.reserved && cancelled => {
            next.reserved = false;
            continue_compensation(next)
        }

        _ => Outcome::Ignore("duplicate or stale event for this state"),
    };
    Ok(outcome)
}

fn apply(state: SagaState, commands: Vec<SagaCommand>, facts: Vec<SagaFact>) -> Outcome {
    Outcome::Apply(Transition {
        state,
        commands,
        facts,
    })
}

fn begin_compensation(mut state: SagaState, reason: &str) -> Outcome {
    state.cancel_reason = Some(reason.to_owned());
    state.status = OrderStatus::Cancelling;
    continue_compensation(state)
}

/// Issues the undo of the latest step still completed, or finishes the cancellation.
fn continue_compensation(mut state: SagaState) -> Outcome {
    let next_undo = if state.dispatched {
        Some(SagaCommand::CancelDelivery)
    } else if state.paid {
        Some(SagaCommand::RefundPayment)
    } else if state.reserved {
        Some(SagaCommand::ReleaseInventory)
    } else {
        None
    };
    match (state.status, next_undo) {
        // Still cancelling: one undo at a time, in reverse order.
        (OrderStatus::Cancelling, Some(cmd)) => apply(state, vec![cmd], vec![]),
        (OrderStatus::Cancelling, None) => {
            state.status = OrderStatus::Cancelled;
            apply(state, vec![], vec![SagaFact::OrderCancelled])
        }
        // Already terminal: a late step was undone; just record it.
        _ => apply(state, vec![], vec![]),
    }
}

#[cfg(test)]
mod tests;
