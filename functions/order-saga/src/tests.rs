//! The orchestrator over in-memory ports: step results move the order, duplicates
//! change nothing twice, and the relay publishes exactly the outbox of each write.

use crate::steps::on_step_result;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::orchestration::advance;
use dishpatch::order::{Order, OrderStatus};
use dishpatch::orders::OrderStore;
use dishpatch::outbox::Outgoing;
use dishpatch::runtime::{MessageError, PermanentCode};
use dishpatch::testing::{InMemoryOrderStore, RacingOrderStore, RecordingPublisher};
use serde_json::json;
use std::sync::atomic::Ordering::SeqCst;
use MessageType as M;

async fn placed(store: &InMemoryOrderStore) -> Order {
    let start = dishpatch::saga::start();
    let draft = dishpatch::testing::sample_order();
    let (order, outbox) = advance(
        &draft,
        &start,
        "PlaceOrder",
        None,
        "2026-11-22T10:00:00.000Z",
        &Default::default(),
    );
    store.save(&order, None, &outbox).await.unwrap();
    order
}

fn fact(kind: MessageType, data: serde_json::Value) -> Envelope {
    Envelope::new(kind, "o-1", data)
}

/// Hands a step result to the saga as the runtime does, with the default timings.
async fn step(store: &dyn OrderStore, envelope: &Envelope) -> Result<(), MessageError> {
    on_step_result(store, &Default::default(), envelope, envelope.kind).await
}

/// The placed order's stock is reserved: the fact the saga was handed.
async fn reserved(store: &dyn OrderStore) -> Envelope {
    let f = fact(M::InventoryReserved, json!({}));
    step(store, &f).await.unwrap();
    f
}

async fn status(store: &InMemoryOrderStore) -> OrderStatus {
    store.get("o-1").await.unwrap().unwrap().status()
}

#[tokio::test]
async fn happy_path_drives_the_order_to_delivered() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let steps = [
        (M::InventoryReserved, json!({}), OrderStatus::Reserved),
        (
            M::PaymentCaptured,
            json!({"amount": {"amount": 1900, "currency": "EUR"}}),
            OrderStatus::Paid,
        ),
        (
            M::DeliveryDispatched,
            json!({"courierId": "c-1"}),
            OrderStatus::Dispatched,
        ),
        (
            M::DeliveryCompleted,
            json!({"courierId": "c-1"}),
            OrderStatus::Delivered,
        ),
    ];
    for (kind, data, expected) in steps {
        step(&store, &fact(kind, data)).await.unwrap();
        assert_eq!(status(&store).await, expected);
    }
    let order = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(order.timeline.len(), 5);
    assert_eq!(order.version, 5);
    assert_eq!(
        store.kinds(),
        [
            M::ReserveInventory,
            M::OrderPlaced,
            M::StepTimeout,
            M::CapturePayment,
            M::StepTimeout,
            M::DispatchDelivery,
            M::OrderConfirmed,
            M::StepTimeout,
            M::OrderDispatched,
            M::OrderDelivered
        ]
    );
}

/// The saga's metrics for a delivered order: the funnel, its end, its duration to a
/// courier and each step's latency, each once.
#[tokio::test]
async fn a_delivered_order_emits_the_funnel_once_per_transition() {
    use dishpatch::emf::metrics::{SAGA_DURATION, SAGA_EXECUTIONS, SAGA_TRANSITIONS, STEP_LATENCY};
    use dishpatch::emf::{assert_valid, Capture};

    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let capture = Capture::start();
    for (kind, data) in [
        (M::InventoryReserved, json!({})),
        (
            M::PaymentCaptured,
            json!({"amount": {"amount": 1900, "currency": "EUR"}}),
        ),
        (M::DeliveryDispatched, json!({"courierId": "c-1"})),
        (M::DeliveryCompleted, json!({"courierId": "c-1"})),
    ] {
        let f = fact(kind, data);
        step(&store, &f).await.unwrap();
        // A redelivered result counts nothing.
        step(&store, &f).await.unwrap();
    }
    capture.lines().iter().for_each(assert_valid);
    let dims = |metric| -> Vec<String> {
        capture
            .points(metric)
            .into_iter()
            .map(|(dims, _, line)| {
                assert_eq!(line["orderId"], "o-1");
                dims.join(",")
            })
            .collect()
    };
    assert_eq!(
        dims(&SAGA_TRANSITIONS),
        ["RESERVED", "PAID", "DISPATCHED", "DELIVERED"]
    );
    assert_eq!(dims(&SAGA_EXECUTIONS), ["DELIVERED"]);
    assert_eq!(dims(&SAGA_DURATION), ["DISPATCHED"]);
    assert_eq!(dims(&STEP_LATENCY), ["INVENTORY", "PAYMENT", "DELIVERY"]);
}

#[tokio::test]
async fn a_duplicate_result_changes_nothing_twice() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let f = reserved(&store).await;
    let before = store.get("o-1").await.unwrap().unwrap();
    let sent_before = store.outbox.lock().unwrap().len();
    step(&store, &f).await.unwrap();
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
    assert_eq!(store.outbox.lock().unwrap().len(), sent_before);
}

#[tokio::test]
async fn commands_carry_causation_and_correlation() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let f = reserved(&store).await;
    let capture = store.first(M::CapturePayment).unwrap().envelope;
    assert_eq!(capture.causation_id.as_deref(), Some(f.id.as_str()));
    assert_eq!(capture.correlation_id, "o-1");
    assert_eq!(
        capture.data["amount"],
        json!({"amount": 1900, "currency": "EUR"})
    );
    assert_eq!(capture.data["customerId"], "alice");
}

#[tokio::test]
async fn bad_payloads_and_unknown_orders_are_permanent_failures() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let bad = fact(M::InventoryRejected, json!({"noReason": true}));
    assert!(matches!(
        step(&store, &bad).await,
        Err(MessageError::Decode(_))
    ));
    // What a fact would carry into the order is bounded: a huge reason, a control
    // character, a courier that is no id.
    for (kind, data) in [
        (M::InventoryRejected, json!({"reason": "x".repeat(100_000)})),
        (M::InventoryRejected, json!({"reason": "out of stock\u{0}"})),
        (M::DeliveryDispatched, json!({"courierId": "c/../1"})),
    ] {
        assert!(matches!(
            step(&store, &fact(kind, data)).await,
            Err(MessageError::Permanent {
                code: PermanentCode::InvalidContent,
                ..
            })
        ));
    }
    let mut stray = fact(M::InventoryReserved, json!({}));
    stray.order_id = "o-404".into();
    assert!(matches!(
        step(&store, &stray).await,
        Err(MessageError::Permanent {
            code: PermanentCode::UnknownReference,
            ..
        })
    ));
    let cmd = fact(M::ReserveInventory, json!({}));
    assert!(matches!(
        step(&store, &cmd).await,
        Err(MessageError::Unsupported)
    ));
    assert_eq!(status(&store).await, OrderStatus::Pending);
}

#[tokio::test]
async fn a_result_that_keeps_losing_the_write_is_retried_later_after_four_tries() {
    let store = RacingOrderStore::contended(Default::default());
    placed(&store.inner).await;
    let failed = step(&store, &fact(M::InventoryReserved, json!({}))).await;
    assert!(
        matches!(failed, Err(MessageError::Transient(_))),
        "{failed:?}"
    );
    assert_eq!(store.updates.load(SeqCst), 4);
    assert_eq!(status(&store.inner).await, OrderStatus::Pending);
}

#[tokio::test]
async fn relay_publishes_the_outbox_of_the_stream_image() {
    let publisher = RecordingPublisher::default();
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let outbox = store.outbox.lock().unwrap().clone();
    let envs: Vec<Envelope> = outbox.iter().map(|m| m.envelope.clone()).collect();
    let record = stream_record(json!({"pk": "ORDER#o-1", "outbox": outbox}));
    crate::relay::publish_outbox(&publisher, &record)
        .await
        .unwrap();
    assert_eq!(*publisher.sent.lock().unwrap(), envs);
    // Each with its delivery: the step deadline delayed.
    assert_eq!(*publisher.delivered.lock().unwrap(), outbox);
    assert_eq!(outbox[2].delivery.delay_seconds, Some(300));
    // A failed publish fails the record, so the stream retries it.
    publisher.fail.store(true, SeqCst);
    assert!(crate::relay::publish_outbox(&publisher, &record)
        .await
        .is_err());
}

/// A stream record of an order write whose new image is `image`.
fn stream_record(image: serde_json::Value) -> aws_lambda_events::dynamodb::EventRecord {
    let mut record = aws_lambda_events::dynamodb::EventRecord::default();
    record.event_name = "MODIFY".into();
    record.change.new_image = serde_dynamo::to_item(image).unwrap();
    record
}

#[tokio::test]
async fn relay_publishes_an_outbox_stored_as_bare_envelopes_with_its_delivery() {
    let publisher = RecordingPublisher::default();
    let timeout = timeout("Payment", 1);
    let envs = vec![fact(M::RefundPayment, json!({})), timeout.clone()];
    let record = stream_record(json!({"pk": "ORDER#o-1", "outbox": envs}));
    crate::relay::publish_outbox(&publisher, &record)
        .await
        .unwrap();
    assert_eq!(*publisher.sent.lock().unwrap(), envs);
    let delivered = publisher.delivered.lock().unwrap();
    assert_eq!(delivered[1].delivery.delay_seconds, Some(1));
    assert!(delivered[0].delivery.is_plain());
}

fn timeout(step: &str, attempt: u8) -> Envelope {
    fact(
        M::StepTimeout,
        json!({"step": step, "attempt": attempt, "delaySeconds": 1}),
    )
}

#[tokio::test]
async fn a_step_that_times_out_is_undone_and_an_unconfirmed_undo_ends_in_an_alert() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    reserved(&store).await;
    // The payment never answers: its deadline fires, and the refund is tried three times.
    step(&store, &timeout("Payment", 0)).await.unwrap();
    assert_eq!(status(&store).await, OrderStatus::Cancelling);
    for attempt in 1..=3 {
        step(&store, &timeout("Payment", attempt)).await.unwrap();
    }
    let order = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::CompensationFailed);
    assert_eq!(order.saga.cancel_reason.as_deref(), Some("PAYMENT_TIMEOUT"));
    let kinds = store.kinds();
    let refunds = kinds.iter().filter(|k| **k == M::RefundPayment).count();
    assert_eq!(refunds, 3, "one refund per try");
    let alert = store.first(M::OpsAlert).expect("operators are alerted");
    assert_eq!(alert.envelope.data["severity"], "CRITICAL");
    assert_eq!(alert.envelope.data["alert"], "CompensationFailed");
    assert_eq!(alert.envelope.data["step"], "Payment");
    // The topic's attributes and subject travel with it.
    let page = alert.delivery.alert.expect("its attributes");
    assert_eq!(
        (page.event_type.as_str(), page.severity.as_str()),
        ("CompensationFailed", "CRITICAL")
    );
    assert_eq!(page.subject, "CRITICAL CompensationFailed: order o-1");
    let told = store
        .first(M::CompensationFailed)
        .expect("the customer is told");
    assert_eq!(told.envelope.data["customerId"], "alice");
    // Retry delays grow 1 s / 2 s / 4 s on top of the per-try deadline, in the payload
    // and in how the queue delivers it.
    let retries: Vec<Outgoing> = store
        .outbox
        .lock()
        .unwrap()
        .iter()
        .filter(|m| {
            m.envelope.kind == M::StepTimeout && m.envelope.data["attempt"].as_u64() > Some(0)
        })
        .cloned()
        .collect();
    let delays: Vec<u64> = retries
        .iter()
        .map(|m| m.envelope.data["delaySeconds"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, [31, 32, 34]);
    let delays: Vec<Option<u32>> = retries.iter().map(|m| m.delivery.delay_seconds).collect();
    assert_eq!(delays, [Some(31), Some(32), Some(34)]);
}

#[tokio::test]
async fn a_stale_timeout_is_a_no_op() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    reserved(&store).await;
    let before = store.get("o-1").await.unwrap().unwrap();
    step(&store, &timeout("Inventory", 0)).await.unwrap();
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
}

// ---- the sweeper ----

mod sweeper {
    use super::*;
    use crate::sweep::{sweep, Summary, SweepConfig, CAUSE};
    use chrono::{DateTime, Utc};
    use dishpatch::emf::metrics::ORDERS_SWEPT;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    async fn run(store: &InMemoryOrderStore, when: &str) -> Summary {
        sweep(
            store,
            &Default::default(),
            &SweepConfig::default(),
            at(when),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_order_whose_timeouts_are_lost_is_driven_to_rest() {
        let store = InMemoryOrderStore::default();
        placed(&store).await;
        // Placed at 10:00, reservation due 10:05; within the margin it is left alone.
        assert_eq!(
            run(&store, "2026-11-22T10:05:30Z").await,
            Summary::default()
        );
        assert_eq!(status(&store).await, OrderStatus::Pending);
        let capture = dishpatch::emf::Capture::start();
        // Every message after the write is lost: each run moves it one deadline on.
        let mut runs = 0;
        let mut clock = at("2026-11-22T10:06:01Z");
        while !status(&store).await.is_terminal() {
            runs += 1;
            assert!(runs <= 5, "not at rest after {runs} sweeps");
            let due: DateTime<Utc> = store
                .get("o-1")
                .await
                .unwrap()
                .unwrap()
                .deadline
                .unwrap()
                .parse()
                .unwrap();
            clock = clock.max(due + chrono::Duration::seconds(61));
            let s = run(&store, &clock.to_rfc3339()).await;
            assert_eq!((s.overdue, s.driven), (1, 1));
        }
        let order = store.get("o-1").await.unwrap().unwrap();
        // Reserve timed out, then its release tried three times and given up on.
        assert_eq!(order.status(), OrderStatus::CompensationFailed);
        assert_eq!(runs, 4);
        assert_eq!(order.deadline, None);
        assert!(order.timeline.iter().skip(1).all(|e| e.cause == CAUSE));
        let sent = store.kinds();
        assert_eq!(
            sent.iter().filter(|k| **k == M::ReleaseInventory).count(),
            3,
            "{sent:?}"
        );
        assert!(sent.contains(&M::OpsAlert), "{sent:?}");
        let swept = capture.points(&ORDERS_SWEPT);
        assert_eq!(swept.len(), runs);
        for (dims, n, line) in swept {
            dishpatch::emf::assert_valid(&line);
            assert_eq!((dims, n), (vec!["INVENTORY".to_owned()], 1.0));
            assert_eq!(line["orderId"], "o-1");
        }
        // At rest: nothing more to sweep.
        assert_eq!(run(&store, "2026-11-23T00:00:00Z").await.overdue, 0);
    }

    #[tokio::test]
    async fn an_order_still_changing_is_left_to_the_next_run() {
        let store = RacingOrderStore::contended(Default::default());
        placed(&store.inner).await;
        let s = sweep(
            &store,
            &Default::default(),
            &SweepConfig::default(),
            at("2026-11-22T10:06:01Z"),
        )
        .await
        .unwrap();
        assert_eq!((s.overdue, s.driven, s.skipped), (1, 0, 1));
        assert_eq!(store.updates.load(SeqCst), 4);
        assert_eq!(status(&store.inner).await, OrderStatus::Pending);
    }

    #[tokio::test]
    async fn an_order_that_moved_on_is_left_alone() {
        let store = InMemoryOrderStore::default();
        placed(&store).await;
        reserved(&store).await;
        let before = store.get("o-1").await.unwrap().unwrap();
        // Its first deadline is long past, its new one not yet: nothing to sweep.
        let due: DateTime<Utc> = before.deadline.as_deref().unwrap().parse().unwrap();
        let s = run(&store, &(due + chrono::Duration::seconds(59)).to_rfc3339()).await;
        assert_eq!(s.overdue, 0);
        assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
    }
}
