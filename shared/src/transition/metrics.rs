//! The saga's metrics, from what a written transition moved: emitted once per write
//! that won, so a retried or duplicate event (ignored, refused, or a lost conditional
//! write) counts nothing.

use crate::emf::{Line, NO_DIMENSIONS};
use crate::order::{Order, OrderStatus};
use crate::saga::{self, SagaEvent, Step};
use chrono::DateTime;
use dishpatch_core::metrics::{
    SAGA_COMPENSATIONS, SAGA_DURATION, SAGA_EXECUTIONS, SAGA_STARTED, SAGA_TRANSITIONS,
    STEP_LATENCY,
};

/// The `SagaDuration` outcome of an order dispatched after waiting for a free courier.
pub const DISPATCHED_AFTER_WAIT: &str = "DISPATCHED_AFTER_WAIT";

/// A placed order: its saga began.
pub fn placed(order: &Order) {
    Line::new()
        .count(&SAGA_STARTED, NO_DIMENSIONS)
        .property("orderId", order.order_id.as_str())
        .emit();
}

/// Emits what `from` becoming `to` on `event` means, if anything.
pub fn moved(from: &Order, to: &Order, event: &SagaEvent) {
    let line = line(from, to, event);
    if !line.is_empty() {
        line.emit();
    }
}

/// The points of a transition:
/// - `SagaTransitions` when the status changed (the funnel);
/// - `SagaExecutions` when it reached a terminal status;
/// - `SagaCompensations`: COMPLETED when the undos led to CANCELLED, FAILED on
///   COMPENSATION_FAILED;
/// - `SagaDuration` from placement, on reaching DISPATCHED or CANCELLED; an order that
///   waited for a free courier reaches DISPATCHED as [`DISPATCHED_AFTER_WAIT`], so the
///   latency to a courier (and its alarm) measures the system, not a courier shortage;
/// - `StepLatency` when the result of the forward step the order waited on arrived,
///   from the write that sent its command (not for a dispatch that waited for a
///   courier: that is the wait).
pub fn line(from: &Order, to: &Order, event: &SagaEvent) -> Line {
    let (before, after) = (from.status(), to.status());
    let mut line = Line::new();
    if before != after {
        line = line.count(&SAGA_TRANSITIONS, [after.as_str()]);
        if after.is_terminal() {
            line = line.count(&SAGA_EXECUTIONS, [after.as_str()]);
        }
        let compensation = match after {
            OrderStatus::Cancelled if before == OrderStatus::Cancelling => Some("COMPLETED"),
            OrderStatus::CompensationFailed => Some("FAILED"),
            _ => None,
        };
        if let Some(outcome) = compensation {
            line = line.count(&SAGA_COMPENSATIONS, [outcome]);
        }
        if matches!(after, OrderStatus::Dispatched | OrderStatus::Cancelled) {
            let outcome = if after == OrderStatus::Dispatched && from.saga.awaiting_courier {
                DISPATCHED_AFTER_WAIT
            } else {
                after.as_str()
            };
            if let Some(ms) = millis_between(&from.created_at, &to.updated_at) {
                line = line.point(&SAGA_DURATION, ms, [outcome]);
            }
        }
    }
    let waited = saga::awaiting(&from.saga)
        .filter(|t| t.attempt == 0)
        .filter(|_| !from.saga.awaiting_courier);
    if let Some(step) = result_of(event).filter(|s| waited.is_some_and(|t| t.step == *s)) {
        if let Some(ms) = millis_between(&from.updated_at, &to.updated_at) {
            line = line.point(&STEP_LATENCY, ms, [step.as_str()]);
        }
    }
    if line.is_empty() {
        return line;
    }
    line.property("orderId", to.order_id.as_str())
        .property("from", before.as_str())
        .property("to", after.as_str())
}

/// The forward step `event` is the result of.
fn result_of(event: &SagaEvent) -> Option<Step> {
    match event {
        SagaEvent::InventoryReserved | SagaEvent::InventoryRejected { .. } => Some(Step::Inventory),
        SagaEvent::PaymentCaptured | SagaEvent::PaymentDeclined { .. } => Some(Step::Payment),
        SagaEvent::DeliveryDispatched { .. } | SagaEvent::DeliveryUnavailable { .. } => {
            Some(Step::Delivery)
        }
        _ => None,
    }
}

/// Milliseconds from one RFC 3339 time to a later one; `None` if either is unreadable.
fn millis_between(start: &str, end: &str) -> Option<f64> {
    let start = DateTime::parse_from_rfc3339(start).ok()?;
    let end = DateTime::parse_from_rfc3339(end).ok()?;
    Some((end - start).num_milliseconds().max(0) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::assert_valid;
    use dishpatch_core::fixtures::sample_order;
    use serde_json::Value;

    /// `o-1` placed at 10:00:00, last written `updated`, in `status`.
    fn order(status: OrderStatus, updated: &str) -> Order {
        let mut o = sample_order();
        o.saga.status = status;
        o.updated_at = updated.into();
        o
    }

    fn documents(from: &Order, to: &Order, event: &SagaEvent) -> Vec<Value> {
        let docs = line(from, to, event).documents();
        docs.iter().for_each(assert_valid);
        docs
    }

    #[test]
    fn a_courier_ends_the_saga_duration_and_the_delivery_step() {
        let from = order(OrderStatus::Paid, "2026-11-22T10:00:01.000Z");
        let to = order(OrderStatus::Dispatched, "2026-11-22T10:00:01.250Z");
        let event = SagaEvent::DeliveryDispatched {
            courier_id: "c-1".into(),
        };
        let docs = documents(&from, &to, &event);
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d["Status"], "DISPATCHED");
        assert_eq!(
            (&d["Outcome"], &d["SagaDuration"]),
            (&"DISPATCHED".into(), &1250.into())
        );
        assert_eq!(
            (&d["Step"], &d["StepLatency"]),
            (&"DELIVERY".into(), &250.into())
        );
        assert_eq!(d["SagaExecutions"], Value::Null, "not the end of the order");
        assert_eq!(
            (&d["from"], &d["to"], &d["orderId"]),
            (&"PAID".into(), &"DISPATCHED".into(), &"o-1".into())
        );
    }

    #[test]
    fn a_confirmed_last_undo_ends_the_saga_cancelled_with_its_compensation() {
        let from = order(OrderStatus::Cancelling, "2026-11-22T10:00:02.000Z");
        let to = order(OrderStatus::Cancelled, "2026-11-22T10:00:03.000Z");
        let docs = documents(&from, &to, &SagaEvent::InventoryReleased);
        assert_eq!(docs.len(), 2, "Outcome CANCELLED and COMPLETED part");
        let first = &docs[0];
        assert_eq!(first["Status"], "CANCELLED");
        assert_eq!(first["Outcome"], "CANCELLED");
        assert_eq!(first["SagaExecutions"], 1);
        assert_eq!(first["SagaDuration"], 3000);
        assert_eq!(docs[1]["Outcome"], "COMPLETED");
        assert_eq!(docs[1]["SagaCompensations"], 1);
        assert!(docs.iter().all(|d| d["StepLatency"].is_null()));
    }

    #[test]
    fn a_failed_undo_counts_a_failed_compensation_and_execution() {
        let from = order(OrderStatus::Cancelling, "2026-11-22T10:00:02.000Z");
        let to = order(OrderStatus::CompensationFailed, "2026-11-22T10:01:00.000Z");
        let timeout = SagaEvent::StepTimeout {
            step: Step::Inventory,
            attempt: 3,
        };
        let docs = documents(&from, &to, &timeout);
        assert_eq!(docs[0]["SagaExecutions"], 1);
        assert_eq!(docs[0]["Outcome"], "COMPENSATION_FAILED");
        assert_eq!(docs[1]["Outcome"], "FAILED");
        assert!(docs.iter().all(|d| d["SagaDuration"].is_null()));
    }

    #[test]
    fn a_rejection_with_nothing_to_undo_is_no_compensation() {
        let from = order(OrderStatus::Pending, "2026-11-22T10:00:00.000Z");
        let to = order(OrderStatus::Cancelled, "2026-11-22T10:00:00.400Z");
        let event = SagaEvent::InventoryRejected {
            reason: "OUT_OF_STOCK".into(),
        };
        let docs = documents(&from, &to, &event);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["StepLatency"], 400);
        assert_eq!(docs[0]["SagaCompensations"], Value::Null);
    }

    #[test]
    fn a_late_result_or_a_repeated_status_counts_nothing() {
        // Cancelled while the reservation was in flight: its late result is no latency.
        let mut from = order(OrderStatus::Cancelling, "2026-11-22T10:00:02.000Z");
        from.saga.reserved = false;
        let to = order(OrderStatus::Cancelling, "2026-11-22T10:00:05.000Z");
        assert!(line(&from, &to, &SagaEvent::InventoryReserved).is_empty());
    }

    #[test]
    fn a_dispatch_after_waiting_for_a_courier_is_timed_apart() {
        let mut from = order(OrderStatus::Paid, "2026-01-01T10:00:02.000Z");
        from.saga.awaiting_courier = true;
        let to = order(OrderStatus::Dispatched, "2026-01-01T10:04:00.000Z");
        let event = SagaEvent::DeliveryDispatched {
            courier_id: "c-1".into(),
        };
        let text = serde_json::to_string(&documents(&from, &to, &event)).unwrap();
        assert!(text.contains(DISPATCHED_AFTER_WAIT), "{text}");
        assert!(!text.contains("StepLatency"), "{text}");
        from.saga.awaiting_courier = false;
        let text = serde_json::to_string(&documents(&from, &to, &event)).unwrap();
        assert!(!text.contains(DISPATCHED_AFTER_WAIT), "{text}");
        assert!(text.contains("StepLatency"), "{text}");
    }
}
