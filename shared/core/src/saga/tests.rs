use super::*;
use proptest::prelude::*;
use OrderStatus as S;

fn step(state: &SagaState, event: SagaEvent) -> Transition {
    match transition(state, &event).expect("allowed") {
        Outcome::Apply(t) => t,
        Outcome::Ignore(why) => panic!("{event:?} ignored in {:?}: {why}", state.status),
    }
}

fn ignored(state: &SagaState, event: SagaEvent) -> bool {
    matches!(transition(state, &event), Ok(Outcome::Ignore(_)))
}

fn rejected(reason: &str) -> SagaEvent {
    SagaEvent::InventoryRejected {
        reason: reason.into(),
    }
}

fn completed() -> SagaEvent {
    SagaEvent::DeliveryCompleted {
        courier_id: "c-1".into(),
    }
}

fn happy_to(status: OrderStatus) -> SagaState {
    let mut s = start().state;
    let path = [
        (S::Reserved, SagaEvent::InventoryReserved),
        (S::Paid, SagaEvent::PaymentCaptured),
        (
            S::Dispatched,
            SagaEvent::DeliveryDispatched {
                courier_id: "c-1".into(),
            },
        ),
        (S::Delivered, completed()),
    ];
    for (target, event) in path {
        if s.status == status {
            break;
        }
        s = step(&s, event).state;
        assert_eq!(s.status, target);
    }
    assert_eq!(s.status, status);
    s
}

#[test]
fn happy_path_issues_each_command_in_order() {
    let t = start();
    assert_eq!(t.commands, vec![SagaCommand::ReserveInventory]);
    assert_eq!(t.facts, vec![SagaFact::OrderPlaced]);
    let t = step(&t.state, SagaEvent::InventoryReserved);
    assert_eq!(t.commands, vec![SagaCommand::CapturePayment]);
    let t = step(&t.state, SagaEvent::PaymentCaptured);
    assert_eq!(t.commands, vec![SagaCommand::DispatchDelivery]);
    assert_eq!(t.facts, vec![SagaFact::OrderConfirmed]);
    let t = step(
        &t.state,
        SagaEvent::DeliveryDispatched {
            courier_id: "c-9".into(),
        },
    );
    assert_eq!(t.state.courier_id.as_deref(), Some("c-9"));
    assert_eq!(t.facts, vec![SagaFact::OrderDispatched]);
    let t = step(&t.state, completed());
    assert_eq!(t.state.status, S::Delivered);
    assert!(t.commands.is_empty(), "the stock was sold when reserved");
    assert_eq!(t.facts, vec![SagaFact::OrderDelivered]);
}

#[test]
fn out_of_stock_cancels_with_nothing_to_undo() {
    let t = step(&start().state, rejected("OUT_OF_STOCK"));
    assert_eq!(t.state.status, S::Cancelled);
    assert!(t.commands.is_empty());
    assert_eq!(t.facts, vec![SagaFact::OrderCancelled]);
    assert_eq!(t.state.cancel_reason.as_deref(), Some("OUT_OF_STOCK"));
}

#[test]
fn declined_payment_releases_stock_then_cancels() {
    let s = happy_to(S::Reserved);
    let t = step(
        &s,
        SagaEvent::PaymentDeclined {
            reason: "INSUFFICIENT_FUNDS".into(),
        },
    );
    assert_eq!(t.state.status, S::Cancelling);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.state.status, S::Cancelled);
    assert_eq!(t.facts, vec![SagaFact::OrderCancelled]);
}

#[test]
fn no_courier_refunds_then_releases_in_reverse_order() {
    let s = happy_to(S::Paid);
    let t = step(
        &s,
        SagaEvent::DeliveryUnavailable {
            reason: "NO_COURIER".into(),
        },
    );
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    let t = step(&t.state, SagaEvent::PaymentRefunded);
    assert_eq!(t.state.status, S::Cancelling);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.state.status, S::Cancelled);
    assert!(!t.state.paid && !t.state.reserved);
}

#[test]
fn cancel_is_allowed_until_dispatch_and_refused_after() {
    let cancel = || SagaEvent::CancelRequested {
        reason: "CUSTOMER_CANCELLED".into(),
    };
    let t = step(&start().state, cancel());
    assert_eq!(t.state.status, S::Cancelled);
    // The capture in flight is refunded (or tombstoned) first, then the stock released.
    let t = step(&happy_to(S::Reserved), cancel());
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    let t = step(&t.state, SagaEvent::PaymentRefunded);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    // The dispatch in flight is cancelled (or tombstoned) before the refund.
    let t = step(&happy_to(S::Paid), cancel());
    assert_eq!(t.commands, vec![SagaCommand::CancelDelivery]);
    let t = step(&t.state, SagaEvent::DeliveryCancelled);
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    for status in [S::Dispatched, S::Delivered] {
        assert_eq!(
            transition(&happy_to(status), &cancel()),
            Err(SagaError::NotCancellable(status.as_str()))
        );
    }
    let cancelled = step(&start().state, cancel()).state;
    assert!(ignored(&cancelled, cancel()));
}

#[test]
fn late_results_after_cancel_are_undone() {
    let cancelled = step(
        &start().state,
        SagaEvent::CancelRequested {
            reason: "CUSTOMER_CANCELLED".into(),
        },
    )
    .state;
    let t = step(&cancelled, SagaEvent::InventoryReserved);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    assert_eq!(t.state.status, S::Cancelled);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert!(!t.state.reserved);
    assert!(t.commands.is_empty() && t.facts.is_empty());
    let t = step(&t.state, SagaEvent::PaymentCaptured);
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
}

#[test]
fn completion_overtaking_dispatch_still_delivers() {
    let t = step(&happy_to(S::Paid), completed());
    assert_eq!(t.state.status, S::Delivered);
    assert!(t.commands.is_empty(), "the stock was sold when reserved");
    assert!(ignored(
        &t.state,
        SagaEvent::DeliveryDispatched {
            courier_id: "c-1".into()
        }
    ));
}

#[test]
fn duplicates_and_out_of_order_events_are_ignored() {
    let reserved = happy_to(S::Reserved);
    assert!(ignored(&reserved, SagaEvent::InventoryReserved));
    assert!(ignored(&reserved, completed()));
    assert!(ignored(&reserved, SagaEvent::PaymentRefunded));
    assert!(ignored(&start().state, SagaEvent::PaymentCaptured));
    assert!(ignored(&happy_to(S::Delivered), completed()));
    assert!(ignored(&happy_to(S::Delivered), rejected("late")));
}

// ---- property: any interleaving, duplication and cancel timing keeps the invariants ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    None,
    Done,
    Undone,
    Refused,
    /// Delivery only: the courier completed it; nothing can undo it any more.
    Completed,
    /// Delivery only: no courier was free; the delivery waits (in the waiting index).
    Waiting,
}

/// Idempotent worker models: each keeps one record per order, as the real ones do.
#[derive(Debug)]
struct World {
    stock_ok: bool,
    funds_ok: bool,
    courier_ok: bool,
    inventory: Rec,
    payment: Rec,
    delivery: Rec,
    captures: u32,
    refunds: u32,
    courier_done: bool,
    /// Customer messages "we are finding a courier" the saga asked for.
    told_waiting: u32,
}

#[derive(Debug, Clone)]
enum Msg {
    Cmd(SagaCommand),
    Evt(SagaEvent),
    CourierCompletes,
    /// A courier comes on shift (or is freed) and claims the oldest waiting delivery,
    /// or the delivery's own retry finds one free.
    CourierFreed,
}

/// Timeouts are events too: in the model their deadline may pass at any moment.
fn timeout_msgs(t: &Transition) -> Vec<Msg> {
    t.timeouts
        .iter()
        .map(|t| {
            Msg::Evt(SagaEvent::StepTimeout {
                step: t.step,
                attempt: t.attempt,
            })
        })
        .collect()
}

impl World {
    fn work(&mut self, cmd: SagaCommand) -> Vec<Msg> {
        use SagaCommand as C;
        use SagaEvent as E;
        let evt = match cmd {
            C::ReserveInventory => {
                if self.inventory == Rec::None {
                    self.inventory = if self.stock_ok {
                        Rec::Done
                    } else {
                        Rec::Refused
                    };
                }
                match self.inventory {
                    Rec::Refused => rejected("OUT_OF_STOCK"),
                    // Done, or the recorded outcome replayed over a tombstone.
                    _ => E::InventoryReserved,
                }
            }
            C::ReleaseInventory => {
                // An undo that finds nothing leaves a tombstone: a late reserve does nothing.
                if matches!(self.inventory, Rec::Done | Rec::None) {
                    self.inventory = Rec::Undone;
                }
                E::InventoryReleased
            }
            C::CapturePayment => {
                if self.payment == Rec::None {
                    if self.funds_ok {
                        self.payment = Rec::Done;
                        self.captures += 1;
                    } else {
                        self.payment = Rec::Refused;
                    }
                }
                match self.payment {
                    Rec::Refused => E::PaymentDeclined {
                        reason: "INSUFFICIENT_FUNDS".into(),
                    },
                    _ => E::PaymentCaptured,
                }
            }
            C::RefundPayment => {
                if self.payment == Rec::Done {
                    self.refunds += 1;
                }
                if matches!(self.payment, Rec::Done | Rec::None) {
                    self.payment = Rec::Undone;
                }
                E::PaymentRefunded
            }
            C::DispatchDelivery => {
                if self.delivery == Rec::Completed {
                    return vec![Msg::Evt(completed())];
                }
                if self.delivery == Rec::None {
                    self.delivery = if self.courier_ok {
                        Rec::Done
                    } else {
                        Rec::Waiting
                    };
                }
                match self.delivery {
                    Rec::Refused => E::DeliveryUnavailable {
                        reason: "NO_COURIER".into(),
                    },
                    // Waiting (again, for a duplicate): a courier may come along later.
                    Rec::Waiting => return vec![Msg::Evt(E::DeliveryWaiting), Msg::CourierFreed],
                    _ => {
                        return vec![
                            Msg::Evt(E::DeliveryDispatched {
                                courier_id: "c-1".into(),
                            }),
                            Msg::CourierCompletes,
                        ]
                    }
                }
            }
            C::CancelDelivery => {
                // Too late: the worker answers with the completion, never a cancel.
                if self.delivery == Rec::Completed {
                    return vec![Msg::Evt(completed())];
                }
                // A waiting delivery leaves the queue: no courier is claimed for it later.
                if matches!(self.delivery, Rec::Done | Rec::None | Rec::Waiting) {
                    self.delivery = Rec::Undone;
                }
                E::DeliveryCancelled
            }
        };
        vec![Msg::Evt(evt)]
    }
}

fn to_msgs(t: &Transition) -> Vec<Msg> {
    let mut out: Vec<Msg> = t.commands.iter().map(|c| Msg::Cmd(*c)).collect();
    out.extend(timeout_msgs(t));
    out
}

/// The scheduled sweeper: what it does for an order whose deadline passed unanswered.
fn sweep(state: &SagaState) -> Option<Msg> {
    awaiting(state).map(|t| {
        Msg::Evt(SagaEvent::StepTimeout {
            step: t.step,
            attempt: t.attempt,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Any interleaving, duplication, loss of messages (timeouts included: the sweeper
    /// stands in for them) and cancel timing.
    #[test]
    fn invariants_hold_under_any_delivery_order(
        stock_ok: bool, funds_ok: bool, courier_ok: bool, courier_comes: bool,
        cancel_at in proptest::option::of(0usize..12),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..200),
    ) {
        let mut world = World {
            stock_ok, funds_ok, courier_ok,
            inventory: Rec::None, payment: Rec::None, delivery: Rec::None,
            captures: 0, refunds: 0, courier_done: false, told_waiting: 0,
        };
        let t = start();
        let mut state = t.state.clone();
        let mut pending: Vec<Msg> = to_msgs(&t);
        let mut picks = picks.into_iter();
        let mut steps = 0usize;
        loop {
            if pending.is_empty() {
                // Quiet, yet not at rest: the sweeper finds the order past its deadline.
                match sweep(&state) {
                    Some(m) => pending.push(m),
                    None => break,
                }
            }
            steps += 1;
            prop_assert!(steps < 2_000, "saga does not quiesce");
            if Some(steps) == cancel_at.map(|c| c + 1) {
                let cancel = SagaEvent::CancelRequested { reason: "CUSTOMER_CANCELLED".into() };
                if let Ok(Outcome::Apply(t)) = transition(&state, &cancel) {
                    pending.extend(to_msgs(&t));
                    state = t.state;
                }
            }
            // Pick any pending message (reordering); sometimes deliver it twice, sometimes
            // lose it.
            let (idx, how) = picks.next().map(|(i, d)| (i.index(pending.len()), d)).unwrap_or((0, 2));
            let msg = if how == 0 { pending[idx].clone() } else { pending.remove(idx) };
            // Not lost: the courier's tap (the app retries it until it is answered); and
            // a reservation, whose loss after a cancel while PENDING (CANCELLED at once,
            // nothing undone) would leave the stock held.
            let kept = matches!(
                &msg,
                Msg::CourierCompletes
                    | Msg::CourierFreed
                    | Msg::Evt(SagaEvent::DeliveryCompleted { .. })
                    | Msg::Evt(SagaEvent::InventoryReserved)
            );
            if how == 1 && !kept {
                continue;
            }
            match msg {
                Msg::Cmd(c) => pending.extend(world.work(c)),
                // The courier's completion is refused unless the delivery is still on.
                Msg::CourierCompletes => {
                    if world.delivery == Rec::Done {
                        world.delivery = Rec::Completed;
                        world.courier_done = true;
                        pending.push(Msg::Evt(completed()));
                    }
                }
                // Only a waiting delivery is claimed (in one transaction with the courier).
                Msg::CourierFreed => {
                    if world.delivery == Rec::Waiting && courier_comes {
                        world.delivery = Rec::Done;
                        pending.push(Msg::Evt(SagaEvent::DeliveryDispatched { courier_id: "c-2".into() }));
                        pending.push(Msg::CourierCompletes);
                    }
                }
                Msg::Evt(e) => {
                    if let Ok(Outcome::Apply(t)) = transition(&state, &e) {
                        // Waiting alone never cancels: only the dispatch deadline does.
                        if matches!(e, SagaEvent::DeliveryWaiting) {
                            prop_assert_eq!(t.state.status, S::Paid);
                        }
                        world.told_waiting += t.facts.iter().filter(|f| **f == SagaFact::OrderAwaitingCourier).count() as u32;
                        pending.extend(to_msgs(&t));
                        state = t.state;
                    }
                }
            }
        }
        prop_assert!(world.told_waiting <= 1, "told {} times of the wait", world.told_waiting);
        prop_assert!(world.delivery != Rec::Waiting || state.status != S::Delivered);
        // Every order ends terminal, and what the world holds matches the outcome.
        prop_assert!(state.status.is_terminal(), "ended in {:?}", state.status);
        prop_assert!(awaiting(&state).is_none(), "at rest with a deadline: {:?}", state);
        prop_assert!(world.captures <= 1 && world.refunds <= world.captures);
        // A courier never completes a refunded order.
        prop_assert!(!(world.courier_done && world.refunds > 0), "delivered and refunded");
        if world.courier_done {
            prop_assert!(matches!(state.status, S::Delivered | S::CompensationFailed), "{:?}", state.status);
        }
        match state.status {
            S::Delivered => {
                prop_assert_eq!(world.payment, Rec::Done);
                prop_assert_eq!(world.inventory, Rec::Done);
                prop_assert_eq!(world.delivery, Rec::Completed);
            }
            S::Cancelled => {
                prop_assert!(world.payment != Rec::Done, "charged for a cancelled order");
                prop_assert!(world.inventory != Rec::Done, "stock held for a cancelled order");
                prop_assert!(world.delivery != Rec::Done, "courier kept");
                prop_assert!(world.delivery != Rec::Completed, "cancelled order delivered");
            }
            // Reachable when deadlines pass before the confirmations arrive: operators
            // are alerted; money is still never taken twice.
            S::CompensationFailed => prop_assert!(state.failed_step.is_some()),
            other => prop_assert!(false, "unexpected terminal state {:?}", other),
        }
    }
}

// ---- deadlines ----

fn timeout(step: Step, attempt: u8) -> SagaEvent {
    SagaEvent::StepTimeout { step, attempt }
}

#[test]
fn every_forward_command_carries_its_deadline() {
    assert_eq!(
        start().timeouts,
        vec![Timeout {
            step: Step::Inventory,
            attempt: 0
        }]
    );
    let t = step(&start().state, SagaEvent::InventoryReserved);
    assert_eq!(
        t.timeouts,
        vec![Timeout {
            step: Step::Payment,
            attempt: 0
        }]
    );
    let t = step(&t.state, SagaEvent::PaymentCaptured);
    assert_eq!(
        t.timeouts,
        vec![Timeout {
            step: Step::Delivery,
            attempt: 0
        }]
    );
}

#[test]
fn a_timed_out_step_is_undone_first_then_the_rest_in_reverse() {
    let t = step(&happy_to(S::Paid), timeout(Step::Delivery, 0));
    assert_eq!(t.state.status, S::Cancelling);
    assert_eq!(t.state.cancel_reason.as_deref(), Some("DELIVERY_TIMEOUT"));
    assert_eq!(t.commands, vec![SagaCommand::CancelDelivery]);
    assert_eq!(
        t.timeouts,
        vec![Timeout {
            step: Step::Delivery,
            attempt: 1
        }]
    );
    let t = step(&t.state, SagaEvent::DeliveryCancelled);
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    let t = step(&t.state, SagaEvent::PaymentRefunded);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.state.status, S::Cancelled);
}

#[test]
fn an_undo_is_tried_three_times_then_the_order_fails_loudly() {
    let t = step(&happy_to(S::Reserved), timeout(Step::Payment, 0));
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    let t = step(&t.state, timeout(Step::Payment, 1));
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    assert_eq!(t.state.undo_attempt, 2);
    // A timeout of an earlier try is stale.
    assert!(ignored(&t.state, timeout(Step::Payment, 1)));
    let t = step(&t.state, timeout(Step::Payment, 2));
    assert_eq!(
        t.timeouts,
        vec![Timeout {
            step: Step::Payment,
            attempt: 3
        }]
    );
    let t = step(&t.state, timeout(Step::Payment, 3));
    assert_eq!(t.state.status, S::CompensationFailed);
    assert_eq!(t.state.failed_step, Some(Step::Payment));
    assert_eq!(t.facts, vec![SagaFact::CompensationFailed]);
    assert!(t.state.status.is_terminal());
    // The refund finally confirmed (its message redriven from the DLQ) resumes the
    // compensation: the stock is released and the order ends CANCELLED.
    let t = step(&t.state, SagaEvent::PaymentRefunded);
    assert_eq!(t.state.status, S::Cancelling);
    assert!(!t.state.paid && t.state.failed_step.is_none());
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.state.status, S::Cancelled);
    assert_eq!(t.facts, vec![SagaFact::OrderCancelled]);
}

#[test]
fn timeouts_for_steps_already_answered_are_ignored() {
    assert!(ignored(&happy_to(S::Reserved), timeout(Step::Inventory, 0)));
    assert!(ignored(&happy_to(S::Delivered), timeout(Step::Delivery, 0)));
    assert!(ignored(&happy_to(S::Paid), timeout(Step::Payment, 1)));
}

#[test]
fn a_cancel_that_loses_to_the_courier_ends_delivered_without_a_refund() {
    let cancel = SagaEvent::CancelRequested {
        reason: "CUSTOMER_CANCELLED".into(),
    };
    let t = step(&happy_to(S::Paid), cancel);
    assert_eq!(t.commands, vec![SagaCommand::CancelDelivery]);
    // The courier completed first: the worker answers the cancel with the completion.
    let t = step(&t.state, completed());
    assert_eq!(t.state.status, S::Delivered);
    assert!(t.commands.is_empty(), "the stock was sold when reserved");
    assert_eq!(t.facts, vec![SagaFact::OrderDelivered]);
    assert!(t.state.paid && t.state.cancel_reason.is_none());
    assert_eq!(awaiting(&t.state), None);
    assert!(ignored(&t.state, SagaEvent::DeliveryCancelled));
    assert!(ignored(&t.state, timeout(Step::Delivery, 1)));
    // Once anything was undone, a completion changes nothing (the worker refuses it).
    let timed_out = step(&happy_to(S::Paid), timeout(Step::Delivery, 0)).state;
    let refunding = step(&timed_out, SagaEvent::DeliveryCancelled).state;
    assert!(ignored(&refunding, completed()));
}

#[test]
fn the_undo_of_a_late_result_has_a_deadline_and_fails_loudly() {
    let cancelled = step(
        &start().state,
        SagaEvent::CancelRequested {
            reason: "CUSTOMER_CANCELLED".into(),
        },
    )
    .state;
    assert_eq!(cancelled.status, S::Cancelled);
    let t = step(&cancelled, SagaEvent::InventoryReserved);
    assert_eq!(t.state.status, S::Cancelled);
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let first = Timeout {
        step: Step::Inventory,
        attempt: 1,
    };
    assert_eq!(t.timeouts, vec![first]);
    assert_eq!(awaiting(&t.state), Some(first));
    let t = step(&t.state, timeout(Step::Inventory, 1));
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, timeout(Step::Inventory, 2));
    let t = step(&t.state, timeout(Step::Inventory, 3));
    assert_eq!(t.state.status, S::CompensationFailed);
    assert_eq!(t.state.failed_step, Some(Step::Inventory));
    assert_eq!(t.facts, vec![SagaFact::CompensationFailed]);
    assert_eq!(awaiting(&t.state), None);
    // Confirmed at last (redriven): the order is CANCELLED again.
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.state.status, S::Cancelled);
    assert!(!t.state.reserved);
}

#[test]
fn a_late_result_waits_for_the_undo_in_flight() {
    // Releasing the stock; a stale capture makes the payment held again.
    let t = step(
        &happy_to(S::Reserved),
        SagaEvent::PaymentDeclined {
            reason: "INSUFFICIENT_FUNDS".into(),
        },
    );
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::PaymentCaptured);
    assert!(t.commands.is_empty() && t.timeouts.is_empty());
    // The release keeps its deadline and its retries.
    let inventory = Timeout {
        step: Step::Inventory,
        attempt: 1,
    };
    assert_eq!(awaiting(&t.state), Some(inventory));
    let t = step(&t.state, timeout(Step::Inventory, 1));
    assert_eq!(t.commands, vec![SagaCommand::ReleaseInventory]);
    let t = step(&t.state, SagaEvent::InventoryReleased);
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    let t = step(&t.state, SagaEvent::PaymentRefunded);
    assert_eq!(t.state.status, S::Cancelled);
    assert_eq!(t.facts, vec![SagaFact::OrderCancelled]);
}

#[test]
fn awaiting_names_the_deadline_each_state_waits_on() {
    let fwd = |step| Some(Timeout { step, attempt: 0 });
    assert_eq!(awaiting(&start().state), fwd(Step::Inventory));
    assert_eq!(awaiting(&happy_to(S::Reserved)), fwd(Step::Payment));
    assert_eq!(awaiting(&happy_to(S::Paid)), fwd(Step::Delivery));
    assert_eq!(awaiting(&happy_to(S::Dispatched)), None);
    assert_eq!(awaiting(&happy_to(S::Delivered)), None);
    let t = step(&happy_to(S::Paid), timeout(Step::Delivery, 0));
    let t = step(&t.state, timeout(Step::Delivery, 1));
    assert_eq!(
        awaiting(&t.state),
        Some(Timeout {
            step: Step::Delivery,
            attempt: 2
        })
    );
    // An order written before `undo_step` existed: the latest held step is in flight.
    let mut legacy = t.state.clone();
    legacy.undo_step = None;
    assert_eq!(awaiting(&legacy), awaiting(&t.state));
}

// ---- waiting for a courier ----

fn paid() -> SagaState {
    happy_to(S::Paid)
}

#[test]
fn no_free_courier_keeps_the_dispatch_open_and_tells_the_customer_once() {
    let t = step(&paid(), SagaEvent::DeliveryWaiting);
    assert_eq!(t.state.status, S::Paid);
    assert!(t.state.awaiting_courier);
    assert!(t.commands.is_empty() && t.timeouts.is_empty());
    assert_eq!(t.facts, vec![SagaFact::OrderAwaitingCourier]);
    // Still waiting on the dispatch step's own deadline, which the sweeper sees.
    assert_eq!(
        awaiting(&t.state),
        Some(Timeout {
            step: Step::Delivery,
            attempt: 0
        })
    );
    // A duplicate (a retried command) tells no one again.
    assert!(ignored(&t.state, SagaEvent::DeliveryWaiting));
    // A courier found later dispatches as usual.
    let d = step(
        &t.state,
        SagaEvent::DeliveryDispatched {
            courier_id: "c-2".into(),
        },
    );
    assert_eq!(d.state.status, S::Dispatched);
    assert_eq!(d.facts, vec![SagaFact::OrderDispatched]);
    // A late waiting fact changes nothing after the dispatch, or once cancelled.
    assert!(ignored(&d.state, SagaEvent::DeliveryWaiting));
    assert!(ignored(&happy_to(S::Reserved), SagaEvent::DeliveryWaiting));
}

#[test]
fn the_dispatch_deadline_of_a_waiting_order_cancels_the_delivery_first() {
    let waiting = step(&paid(), SagaEvent::DeliveryWaiting).state;
    let t = step(&waiting, timeout(Step::Delivery, 0));
    assert_eq!(t.state.status, S::Cancelling);
    assert_eq!(t.state.cancel_reason.as_deref(), Some(NO_COURIER));
    assert_eq!(t.commands, vec![SagaCommand::CancelDelivery]);
    let t = step(&t.state, SagaEvent::DeliveryCancelled);
    assert_eq!(t.commands, vec![SagaCommand::RefundPayment]);
    // The customer may still cancel while the order waits.
    let c = step(
        &waiting,
        SagaEvent::CancelRequested {
            reason: "CUSTOMER_CANCELLED".into(),
        },
    );
    assert_eq!(c.commands, vec![SagaCommand::CancelDelivery]);
    // An order that never waited times out as before.
    let t = step(&paid(), timeout(Step::Delivery, 0));
    assert_eq!(t.state.cancel_reason.as_deref(), Some("DELIVERY_TIMEOUT"));
}

#[test]
fn a_state_written_before_waiting_existed_reads_as_not_waiting() {
    let v = serde_json::to_value(paid()).unwrap();
    assert!(v.get("awaitingCourier").is_none(), "{v}");
    let s: SagaState = serde_json::from_value(v).unwrap();
    assert!(!s.awaiting_courier);
}
