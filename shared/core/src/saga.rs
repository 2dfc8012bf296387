//! The order saga as a pure state machine: `(state, event) -> (state, commands, facts)`.
//!
//! Forward steps run in a fixed order (reserve stock, take payment, dispatch a courier).
//! Compensation undoes completed steps one at a time, in reverse order; a forward
//! result that arrives after the order was cancelled is undone too, as soon as no
//! other undo is in flight.
//!
//! Every step has a deadline: the machine asks for a [`Timeout`] with each command it
//! sends. A forward step that times out is assumed to have possibly happened and is
//! undone with the rest (the workers' undo leaves a tombstone, so a late forward
//! command does nothing). Every undo, that of a late result included, is tried again
//! when not confirmed, up to [`MAX_UNDO_ATTEMPTS`] times, and then the order ends
//! COMPENSATION_FAILED. [`awaiting`] names the deadline an order waits on, so a sweeper
//! can fire it when its timeout message was lost.

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
    /// No courier was free at dispatch: the order waits for one (the customer was told)
    /// until the dispatch step's deadline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_courier: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Tries of the undo now outstanding (compensation is sequential: one at a time).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub undo_attempt: u8,
    /// The step whose undo is outstanding. A late result can make a later step held
    /// while an earlier one's undo is in flight, so it is not always the latest held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_step: Option<Step>,
    /// The step whose undo could not be confirmed (COMPENSATION_FAILED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<Step>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

pub const MAX_UNDO_ATTEMPTS: u8 = 3;

/// Why an order that waited for a courier until the dispatch deadline was cancelled.
pub const NO_COURIER: &str = "NO_COURIER";

/// In the order the forward steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Inventory,
    Payment,
    Delivery,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Inventory => "INVENTORY",
            Step::Payment => "PAYMENT",
            Step::Delivery => "DELIVERY",
        }
    }
}

/// Deliver a `StepTimeout` for `step` later. `attempt` 0 is the forward step's deadline;
/// `n >= 1` is the deadline of the n-th try of its undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout {
    pub step: Step,
    pub attempt: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaEvent {
    InventoryReserved,
    InventoryRejected {
        reason: String,
    },
    InventoryReleased,
    PaymentCaptured,
    PaymentDeclined {
        reason: String,
    },
    PaymentRefunded,
    DeliveryDispatched {
        courier_id: String,
    },
    DeliveryUnavailable {
        reason: String,
    },
    /// No courier was free: the delivery waits for one (and keeps trying).
    DeliveryWaiting,
    DeliveryCancelled,
    DeliveryCompleted {
        courier_id: String,
    },
    CancelRequested {
        reason: String,
    },
    StepTimeout {
        step: Step,
        attempt: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaCommand {
    ReserveInventory,
    CapturePayment,
    DispatchDelivery,
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
    /// The order waits for a courier: the customer is told, once.
    OrderAwaitingCourier,
    /// An undo could not be confirmed: the customer is told and operators alerted.
    CompensationFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: SagaState,
    pub commands: Vec<SagaCommand>,
    pub facts: Vec<SagaFact>,
    pub timeouts: Vec<Timeout>,
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
            awaiting_courier: false,
            cancel_reason: None,
            undo_attempt: 0,
            undo_step: None,
            failed_step: None,
        },
        commands: vec![SagaCommand::ReserveInventory],
        facts: vec![SagaFact::OrderPlaced],
        timeouts: vec![Timeout {
            step: Step::Inventory,
            attempt: 0,
        }],
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
            forward(next, SagaCommand::CapturePayment, vec![])
        }
        (S::Reserved, E::PaymentCaptured) => {
            next.status = S::Paid;
            next.paid = true;
            forward(
                next,
                SagaCommand::DispatchDelivery,
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
            apply(next, vec![], vec![SagaFact::OrderDelivered])
        }
        // No courier free: the dispatch step stays open (its deadline is the dispatch
        // deadline) while the delivery function keeps looking; the customer is told once.
        (S::Paid, E::DeliveryWaiting) if !state.awaiting_courier => {
            next.awaiting_courier = true;
            apply(next, vec![], vec![SagaFact::OrderAwaitingCourier])
        }
        // Facts are unordered: the completion can overtake the dispatch it implies.
        (S::Paid, E::DeliveryCompleted { courier_id }) => {
            next.status = S::Delivered;
            next.courier_id = Some(courier_id.clone());
            apply(
                next,
                vec![],
                vec![SagaFact::OrderDispatched, SagaFact::OrderDelivered],
            )
        }

        // A step failed: undo what completed.
        (S::Pending, E::InventoryRejected { reason })
        | (S::Reserved, E::PaymentDeclined { reason })
        | (S::Paid, E::DeliveryUnavailable { reason }) => begin_compensation(next, reason),

        // Customer cancel. A capture in flight is refunded first, as on its timeout: the
        // refund leaves a tombstone if it got there first, so a capture that arrives
        // late takes nothing, instead of taking money from a cancelled order until its
        // own refund catches up.
        (S::Reserved, E::CancelRequested { reason }) => {
            next.paid = true;
            begin_compensation(next, reason)
        }
        // Likewise a dispatch in flight is cancelled before the refund: its tombstone
        // stops a late dispatch, and a courier can no longer complete a refunded order.
        (S::Paid, E::CancelRequested { reason }) => {
            next.dispatched = true;
            begin_compensation(next, reason)
        }
        (S::Pending, E::CancelRequested { reason }) => begin_compensation(next, reason),
        (S::Cancelling | S::Cancelled, E::CancelRequested { .. }) => {
            Outcome::Ignore("already cancelled")
        }
        (status, E::CancelRequested { .. }) => {
            return Err(SagaError::NotCancellable(status.as_str()));
        }

        // A forward step did not answer in time: it may have happened, so undo it too.
        (
            S::Pending,
            E::StepTimeout {
                step: Step::Inventory,
                attempt: 0,
            },
        ) => {
            next.reserved = true;
            begin_compensation(next, "INVENTORY_TIMEOUT")
        }
        (
            S::Reserved,
            E::StepTimeout {
                step: Step::Payment,
                attempt: 0,
            },
        ) => {
            next.paid = true;
            begin_compensation(next, "PAYMENT_TIMEOUT")
        }
        (
            S::Paid,
            E::StepTimeout {
                step: Step::Delivery,
                attempt: 0,
            },
        ) => {
            // Cancelling the delivery first also takes a waiting one off the queue, so
            // no courier is claimed for the order afterwards.
            next.dispatched = true;
            let reason = if state.awaiting_courier {
                NO_COURIER
            } else {
                "DELIVERY_TIMEOUT"
            };
            begin_compensation(next, reason)
        }
        // The undo in flight was not confirmed in time: try again, then give up loudly.
        (_, E::StepTimeout { step, attempt })
            if cancelled
                && *attempt >= 1
                && *attempt == state.undo_attempt
                && outstanding(state) == Some(*step) =>
        {
            if *attempt < MAX_UNDO_ATTEMPTS {
                next.undo_step = Some(*step);
                next.undo_attempt = attempt + 1;
                Outcome::Apply(Transition {
                    state: next,
                    commands: vec![undo_command(*step)],
                    facts: vec![],
                    timeouts: vec![Timeout {
                        step: *step,
                        attempt: attempt + 1,
                    }],
                })
            } else {
                next.status = S::CompensationFailed;
                next.failed_step = Some(*step);
                next.undo_step = None;
                next.undo_attempt = 0;
                apply(next, vec![], vec![SagaFact::CompensationFailed])
            }
        }

        // The courier completed before the cancel of its delivery landed (the worker
        // answers a cancel of a completed delivery with the completion): nothing was
        // undone yet, as the dispatch is undone first, so the order is delivered.
        (_, E::DeliveryCompleted { courier_id })
            if cancelled && state.dispatched && state.paid && state.reserved =>
        {
            next.status = S::Delivered;
            next.dispatched = false;
            next.courier_id = Some(courier_id.clone());
            next.cancel_reason = None;
            next.failed_step = None;
            next.undo_step = None;
            next.undo_attempt = 0;
            apply(next, vec![], vec![SagaFact::OrderDelivered])
        }

        // A forward step completed after the order was cancelled: undo it, with a
        // deadline like any undo, once no other undo is in flight.
        (_, E::InventoryReserved) if cancelled && !state.reserved => {
            next.reserved = true;
            continue_compensation(next)
        }
        (_, E::PaymentCaptured) if cancelled && !state.paid => {
            next.paid = true;
            continue_compensation(next)
        }
        (_, E::DeliveryDispatched { courier_id }) if cancelled && !state.dispatched => {
            next.dispatched = true;
            next.courier_id = Some(courier_id.clone());
            continue_compensation(next)
        }

        // Compensation confirmations. The confirmation of the undo that was given up on
        // (say, after its message was redriven from the DLQ) resumes the compensation,
        // so a recovered order still ends CANCELLED with nothing held.
        (_, E::DeliveryCancelled) if state.dispatched && cancelled => {
            next.dispatched = false;
            continue_compensation(resume(next, Step::Delivery))
        }
        (_, E::PaymentRefunded) if state.paid && cancelled => {
            next.paid = false;
            continue_compensation(resume(next, Step::Payment))
        }
        (_, E::InventoryReleased) if state.reserved && cancelled => {
            next.reserved = false;
            continue_compensation(resume(next, Step::Inventory))
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
        timeouts: vec![],
    })
}

/// A forward command, with its deadline.
fn forward(state: SagaState, cmd: SagaCommand, facts: Vec<SagaFact>) -> Outcome {
    let step = match cmd {
        SagaCommand::CapturePayment => Step::Payment,
        SagaCommand::DispatchDelivery => Step::Delivery,
        _ => Step::Inventory,
    };
    Outcome::Apply(Transition {
        state,
        commands: vec![cmd],
        facts,
        timeouts: vec![Timeout { step, attempt: 0 }],
    })
}

/// Back to CANCELLING when the failed undo is finally confirmed.
fn resume(mut state: SagaState, confirmed: Step) -> SagaState {
    if state.status == OrderStatus::CompensationFailed && state.failed_step == Some(confirmed) {
        state.status = OrderStatus::Cancelling;
        state.failed_step = None;
    }
    state
}

fn held(state: &SagaState, step: Step) -> bool {
    match step {
        Step::Inventory => state.reserved,
        Step::Payment => state.paid,
        Step::Delivery => state.dispatched,
    }
}

fn undo_command(step: Step) -> SagaCommand {
    match step {
        Step::Inventory => SagaCommand::ReleaseInventory,
        Step::Payment => SagaCommand::RefundPayment,
        Step::Delivery => SagaCommand::CancelDelivery,
    }
}

/// The undo in flight, if it is not confirmed yet.
fn outstanding(state: &SagaState) -> Option<Step> {
    match state.undo_step {
        Some(step) => (state.undo_attempt >= 1 && held(state, step)).then_some(step),
        // Written before `undo_step` existed: the undo in flight was the latest held.
        None if state.status == OrderStatus::Cancelling && state.undo_attempt >= 1 => {
            [Step::Delivery, Step::Payment, Step::Inventory]
                .into_iter()
                .find(|s| held(state, *s))
        }
        None => None,
    }
}

/// The undo compensation runs next: the latest step still held. After a failed undo,
/// only steps after the failed one (late results): compensation does not go past it.
fn next_undo(state: &SagaState) -> Option<Step> {
    [Step::Delivery, Step::Payment, Step::Inventory]
        .into_iter()
        .filter(|s| state.failed_step.is_none_or(|f| *s > f))
        .find(|s| held(state, *s))
}

/// The deadline the order is waiting on: its forward step's, or that of the try of the
/// undo in flight. `None` when nothing is due (at rest, or waiting for the courier).
pub fn awaiting(state: &SagaState) -> Option<Timeout> {
    use OrderStatus as S;
    let forward = |step| Some(Timeout { step, attempt: 0 });
    match state.status {
        S::Pending => forward(Step::Inventory),
        S::Reserved => forward(Step::Payment),
        S::Paid => forward(Step::Delivery),
        _ => outstanding(state).map(|step| Timeout {
            step,
            attempt: state.undo_attempt,
        }),
    }
}

fn begin_compensation(mut state: SagaState, reason: &str) -> Outcome {
    state.cancel_reason = Some(reason.to_owned());
    state.status = OrderStatus::Cancelling;
    continue_compensation(state)
}

/// Issues the undo of the latest step still completed, or finishes the cancellation.
/// One undo at a time: while one is in flight, a step a late result made held waits.
fn continue_compensation(mut state: SagaState) -> Outcome {
    if outstanding(&state).is_some() {
        return apply(state, vec![], vec![]);
    }
    match next_undo(&state) {
        Some(step) => {
            state.undo_step = Some(step);
            state.undo_attempt = 1;
            Outcome::Apply(Transition {
                state,
                commands: vec![undo_command(step)],
                facts: vec![],
                timeouts: vec![Timeout { step, attempt: 1 }],
            })
        }
        None => {
            state.undo_step = None;
            state.undo_attempt = 0;
            if state.status == OrderStatus::Cancelling {
                state.status = OrderStatus::Cancelled;
                apply(state, vec![], vec![SagaFact::OrderCancelled])
            } else {
                // Already terminal: a late step was undone; just record it.
                apply(state, vec![], vec![])
            }
        }
    }
}

#[cfg(test)]
mod tests;
