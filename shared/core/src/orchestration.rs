//! Turns a saga [`Transition`] into the next order version and the messages it sends,
//! each with how it is delivered. Pure: the caller writes both in one conditional write
//! (the outbox).

use crate::config::Env;
use crate::envelope::{data, Envelope, MessageType};
use crate::order::{Order, TimelineEntry};
use crate::outbox::{Alert, Delivery, Outgoing};
use crate::saga::{SagaCommand, SagaFact, Timeout, Transition};

/// How long the saga waits for each step (SQS delays a message 900 s at most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// Deadline of a forward step (reserve, capture).
    pub step_timeout: u32,
    /// Deadline of the dispatch step: an order with no free courier waits this long
    /// for one, from the `DispatchDelivery` command, before it is compensated.
    pub dispatch_deadline: u32,
    /// How long one try of an undo may take before it counts as failed.
    pub compensation_timeout: u32,
    /// Pause before the 2nd and 3rd try of an undo, and after the 3rd (1 s / 2 s / 4 s).
    pub backoff: [u32; 3],
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            step_timeout: 300,
            dispatch_deadline: 600,
            compensation_timeout: 30,
            backoff: [1, 2, 4],
        }
    }
}

/// The longest SQS delays a message; every delay is capped here, by [`Timings::delay`].
pub const MAX_DELAY_SECONDS: u32 = 900;

impl Timings {
    /// `STEP_TIMEOUT_SECONDS`, `DISPATCH_DEADLINE_SECONDS`, `COMPENSATION_TIMEOUT_SECONDS`,
    /// `COMPENSATION_RETRY_DELAYS` ("1,2,4"); unset or unreadable values keep their defaults.
    pub fn from_env(env: &Env) -> Self {
        let d = Timings::default();
        let num = |name: &str, default: u32| {
            env.get(name)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(default)
        };
        let backoff = env
            .get("COMPENSATION_RETRY_DELAYS")
            .and_then(|v| {
                let parts: Vec<u32> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                <[u32; 3]>::try_from(parts).ok()
            })
            .unwrap_or(d.backoff);
        Timings {
            step_timeout: num("STEP_TIMEOUT_SECONDS", d.step_timeout),
            dispatch_deadline: num("DISPATCH_DEADLINE_SECONDS", d.dispatch_deadline),
            compensation_timeout: num("COMPENSATION_TIMEOUT_SECONDS", d.compensation_timeout),
            backoff,
        }
    }

    /// Seconds until a timeout fires, within what SQS can delay.
    pub fn delay(&self, t: &Timeout) -> u32 {
        let secs = match (t.step, t.attempt) {
            (crate::saga::Step::Delivery, 0) => self.dispatch_deadline,
            (_, 0) => self.step_timeout,
            (_, n) => self.compensation_timeout + self.backoff[(n as usize - 1).min(2)],
        };
        secs.min(MAX_DELAY_SECONDS)
    }
}

/// The order after the transition (version bumped, timeline appended) and its outbox.
pub fn advance(
    order: &Order,
    t: &Transition,
    cause: &str,
    caused_by: Option<&Envelope>,
    at: &str,
    timings: &Timings,
) -> (Order, Vec<Outgoing>) {
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
    next.deadline = deadline(order, t, at, timings);
    let mut outbox = messages(&next, t, caused_by, timings);
    crate::stored::stamp(&next, &mut outbox);
    (next, outbox)
}

/// When the step the order now waits on is due: the latest timeout this transition
/// asks for, else the one already running (say a late result waiting for the undo in
/// flight), else none.
fn deadline(order: &Order, t: &Transition, at: &str, timings: &Timings) -> Option<String> {
    crate::saga::awaiting(&t.state)?;
    match t.timeouts.iter().map(|x| timings.delay(x)).max() {
        Some(secs) => {
            let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
            let due = at.with_timezone(&chrono::Utc) + chrono::Duration::seconds(secs.into());
            Some(due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        None => order.deadline.clone(),
    }
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

/// The commands and facts a transition sends, each linked to what caused it: step
/// deadlines delayed, alerts with their attributes.
pub fn messages(
    order: &Order,
    t: &Transition,
    caused_by: Option<&Envelope>,
    timings: &Timings,
) -> Vec<Outgoing> {
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
            failed_step: order.saga.failed_step,
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
                    card_token: order.card_token.clone(),
                }),
            ),
            SagaCommand::DispatchDelivery => (
                MessageType::DispatchDelivery,
                serde_json::to_value(data::DispatchDelivery {
                    restaurant_id: order.restaurant_id.clone(),
                    delivery_address: order.delivery_address.clone(),
                    dispatch_by: order.deadline.clone(),
                }),
            ),
            SagaCommand::ReleaseInventory => {
                (MessageType::ReleaseInventory, Ok(serde_json::json!({})))
            }
            SagaCommand::RefundPayment => (MessageType::RefundPayment, Ok(serde_json::json!({}))),
            SagaCommand::CancelDelivery => (MessageType::CancelDelivery, Ok(serde_json::json!({}))),
        };
        out.push(Outgoing::plain(make(
            kind,
            payload.expect("commands serialize"),
        )));
    }
    for f in &t.facts {
        let kind = match f {
            SagaFact::OrderPlaced => MessageType::OrderPlaced,
            SagaFact::OrderConfirmed => MessageType::OrderConfirmed,
            SagaFact::OrderDispatched => MessageType::OrderDispatched,
            SagaFact::OrderDelivered => MessageType::OrderDelivered,
            SagaFact::OrderCancelled => MessageType::OrderCancelled,
            SagaFact::OrderAwaitingCourier => MessageType::OrderAwaitingCourier,
            SagaFact::CompensationFailed => {
                let alert = data::OpsAlert {
                    alert: MessageType::CompensationFailed.as_str().to_owned(),
                    severity: "CRITICAL".to_owned(),
                    order_id: order.order_id.clone(),
                    customer_id: order.customer_id.clone(),
                    step: order.saga.failed_step,
                    reason: order.saga.cancel_reason.clone(),
                };
                let delivery = Delivery {
                    alert: Some(Alert::of(&alert)),
                    ..Delivery::default()
                };
                let alert = serde_json::to_value(alert).expect("alerts serialize");
                out.push(Outgoing {
                    envelope: make(MessageType::OpsAlert, alert),
                    delivery,
                });
                MessageType::CompensationFailed
            }
        };
        out.push(Outgoing::plain(make(kind, fact())));
    }
    for timeout in &t.timeouts {
        let delay = timings.delay(timeout);
        let payload = data::StepTimeout {
            step: timeout.step,
            attempt: timeout.attempt,
            delay_seconds: delay,
        };
        out.push(Outgoing {
            envelope: make(
                MessageType::StepTimeout,
                serde_json::to_value(payload).expect("timeouts serialize"),
            ),
            delivery: Delivery {
                delay_seconds: Some(delay),
                ..Delivery::default()
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::PaymentMethod;
    use crate::saga::{self, Outcome, SagaEvent};

    fn order(method: PaymentMethod, card_token: Option<&str>) -> Order {
        Order {
            payment_method: method,
            card_token: card_token.map(str::to_owned),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
            version: 1,
            ..crate::fixtures::sample_order()
        }
    }

    /// The `CapturePayment` the order sends once its stock is reserved.
    fn capture_of(o: &Order) -> serde_json::Value {
        let Outcome::Apply(t) =
            saga::transition(&o.saga, &SagaEvent::InventoryReserved).expect("a transition")
        else {
            panic!("reserving stock moves the order on")
        };
        let out = messages(o, &t, None, &Timings::default());
        out.into_iter()
            .find(|m| m.envelope.kind == MessageType::CapturePayment)
            .expect("a CapturePayment")
            .envelope
            .data
    }

    #[test]
    fn a_card_order_sends_its_token_to_the_payment_step() {
        let data = capture_of(&order(PaymentMethod::Card, Some("tok_visa")));
        assert_eq!(data["method"], "CARD");
        assert_eq!(data["cardToken"], "tok_visa");
        let typed: data::CapturePayment = serde_json::from_value(data).unwrap();
        assert_eq!(typed.card_token.as_deref(), Some("tok_visa"));
    }

    #[test]
    fn a_wallet_order_sends_no_token_field_at_all() {
        let data = capture_of(&order(PaymentMethod::Wallet, None));
        assert_eq!(data["method"], "WALLET");
        assert!(data.get("cardToken").is_none(), "{data}");
        // A command written before cards existed still reads.
        let old = serde_json::json!({"customerId": "alice", "amount": {"amount": 1, "currency": "EUR"}, "method": "CARD"});
        let typed: data::CapturePayment = serde_json::from_value(old).unwrap();
        assert_eq!(typed.card_token, None);
    }

    #[test]
    fn an_order_stored_before_cards_reads_without_a_token() {
        let mut v = serde_json::to_value(order(PaymentMethod::Wallet, None)).unwrap();
        assert!(v.get("cardToken").is_none());
        v.as_object_mut().unwrap().remove("cardToken");
        let o: Order = serde_json::from_value(v).unwrap();
        assert_eq!(o.card_token, None);
    }

    #[test]
    fn the_order_carries_the_deadline_it_waits_on() {
        use crate::saga::Step;
        let t = Timings::default();
        let at = "2026-01-01T00:00:00.000Z";
        let o = order(PaymentMethod::Wallet, None);
        let step = |o: &Order, e: SagaEvent, at: &str| {
            let Outcome::Apply(tr) = saga::transition(&o.saga, &e).unwrap() else {
                panic!("{e:?} moves the order")
            };
            advance(o, &tr, "test", None, at, &t).0
        };
        let (placed, _) = advance(&o, &saga::start(), "PlaceOrder", None, at, &t);
        assert_eq!(placed.deadline.as_deref(), Some("2026-01-01T00:05:00.000Z"));
        // A step's own deadline replaces the last one; an undo's is 30 s + 1 s.
        let undo = step(
            &placed,
            SagaEvent::StepTimeout {
                step: Step::Inventory,
                attempt: 0,
            },
            "2026-01-01T00:05:00.000Z",
        );
        assert_eq!(undo.deadline.as_deref(), Some("2026-01-01T00:05:31.000Z"));
        // At rest: none, so the order leaves the sweeper's index.
        let done = step(
            &undo,
            SagaEvent::InventoryReleased,
            "2026-01-01T00:05:02.000Z",
        );
        assert_eq!(done.status(), crate::order::OrderStatus::Cancelled);
        assert_eq!(done.deadline, None);
        // A late result waiting for the undo in flight keeps that undo's deadline.
        let declined = step(
            &step(&placed, SagaEvent::InventoryReserved, at),
            SagaEvent::PaymentDeclined {
                reason: "NO_FUNDS".into(),
            },
            "2026-01-01T00:01:00.000Z",
        );
        let late = step(
            &declined,
            SagaEvent::PaymentCaptured,
            "2026-01-01T00:01:10.000Z",
        );
        assert_eq!(late.deadline, declined.deadline);
        assert_eq!(
            declined.deadline.as_deref(),
            Some("2026-01-01T00:01:31.000Z")
        );
    }

    #[test]
    fn the_dispatch_step_waits_until_the_dispatch_deadline_and_says_so() {
        let t = Timings {
            step_timeout: 300,
            dispatch_deadline: 700,
            ..Timings::default()
        };
        let at = "2026-01-01T00:00:00.000Z";
        let o = order(PaymentMethod::Wallet, None);
        let mut state = o.clone();
        for e in [SagaEvent::InventoryReserved, SagaEvent::PaymentCaptured] {
            let Outcome::Apply(tr) = saga::transition(&state.saga, &e).unwrap() else {
                panic!("{e:?} moves the order")
            };
            let (next, out) = advance(&state, &tr, "test", None, at, &t);
            state = next;
            if e == SagaEvent::PaymentCaptured {
                let cmd = out
                    .iter()
                    .find(|m| m.envelope.kind == MessageType::DispatchDelivery)
                    .unwrap();
                assert_eq!(cmd.envelope.data["dispatchBy"], "2026-01-01T00:11:40.000Z");
                let timeout = out
                    .iter()
                    .find(|m| m.envelope.kind == MessageType::StepTimeout)
                    .unwrap();
                assert_eq!(timeout.delivery.delay_seconds, Some(700));
            }
        }
        assert_eq!(state.deadline.as_deref(), Some("2026-01-01T00:11:40.000Z"));
        let env = Env::from_map([("DISPATCH_DEADLINE_SECONDS".to_owned(), "42".to_owned())].into());
        assert_eq!(Timings::from_env(&env).dispatch_deadline, 42);
    }

    #[test]
    fn deadlines_are_delayed_and_alerts_carry_their_attributes() {
        use crate::saga::{SagaFact, Step, Timeout};
        let o = order(PaymentMethod::Wallet, None);
        let t = Transition {
            state: o.saga.clone(),
            commands: vec![],
            facts: vec![SagaFact::CompensationFailed],
            timeouts: vec![Timeout {
                step: Step::Payment,
                attempt: 0,
            }],
        };
        let long = Timings {
            step_timeout: 5000,
            ..Timings::default()
        };
        let out = messages(&o, &t, None, &long);
        let of = |kind: MessageType| out.iter().find(|m| m.envelope.kind == kind).unwrap();
        let timeout = of(MessageType::StepTimeout);
        assert_eq!(timeout.delivery.delay_seconds, Some(MAX_DELAY_SECONDS));
        assert_eq!(timeout.envelope.data["delaySeconds"], MAX_DELAY_SECONDS);
        let alert = of(MessageType::OpsAlert).delivery.alert.clone().unwrap();
        assert_eq!(alert.event_type, "CompensationFailed");
        assert_eq!(alert.severity, "CRITICAL");
        assert_eq!(alert.subject, "CRITICAL CompensationFailed: order o-1");
        assert!(of(MessageType::CompensationFailed).delivery.is_plain());
    }
}
