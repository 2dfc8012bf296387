//! The orchestrator over in-memory ports: step results move the order, duplicates
//! change nothing twice, and the relay publishes exactly the outbox of each write.

use crate::steps::on_step_result;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::orchestration::advance;
use dishpatch::order::{Order, OrderStatus};
use dishpatch::orders::OrderStore;
use dishpatch::runtime::{MessageError, PermanentCode};
use dishpatch::testing::{InMemoryOrderStore, RecordingPublisher};
use serde_json::json;

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

async fn status(store: &InMemoryOrderStore) -> OrderStatus {
    store.get("o-1").await.unwrap().unwrap().status()
}

#[tokio::test]
async fn happy_path_drives_the_order_to_delivered() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let steps = [
        (
            MessageType::InventoryReserved,
            json!({}),
            OrderStatus::Reserved,
        ),
        (
            MessageType::PaymentCaptured,
            json!({"amount": {"amount": 1900, "currency": "EUR"}}),
            OrderStatus::Paid,
        ),
        (
            MessageType::DeliveryDispatched,
            json!({"courierId": "c-1"}),
            OrderStatus::Dispatched,
        ),
        (
            MessageType::DeliveryCompleted,
            json!({"courierId": "c-1"}),
            OrderStatus::Delivered,
        ),
    ];
    for (kind, data, expected) in steps {
        on_step_result(&store, &Default::default(), &fact(kind, data), kind)
            .await
            .unwrap();
        assert_eq!(status(&store).await, expected);
    }
    let order = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(order.timeline.len(), 5);
    assert_eq!(order.version, 5);
    let sent: Vec<String> = store
        .outbox
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        sent,
        [
            "ReserveInventory",
            "OrderPlaced",
            "StepTimeout",
            "CapturePayment",
            "StepTimeout",
            "DispatchDelivery",
            "OrderConfirmed",
            "StepTimeout",
            "OrderDispatched",
            "CommitInventory",
            "OrderDelivered"
        ]
    );
}

#[tokio::test]
async fn a_duplicate_result_changes_nothing_twice() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let f = fact(MessageType::InventoryReserved, json!({}));
    on_step_result(
        &store,
        &Default::default(),
        &f,
        MessageType::InventoryReserved,
    )
    .await
    .unwrap();
    let before = store.get("o-1").await.unwrap().unwrap();
    let sent_before = store.outbox.lock().unwrap().len();
    on_step_result(
        &store,
        &Default::default(),
        &f,
        MessageType::InventoryReserved,
    )
    .await
    .unwrap();
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
    assert_eq!(store.outbox.lock().unwrap().len(), sent_before);
}

#[tokio::test]
async fn commands_carry_causation_and_correlation() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let f = fact(MessageType::InventoryReserved, json!({}));
    on_step_result(
        &store,
        &Default::default(),
        &f,
        MessageType::InventoryReserved,
    )
    .await
    .unwrap();
    let outbox = store.outbox.lock().unwrap();
    let capture = outbox.iter().find(|e| e.kind == "CapturePayment").unwrap();
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
    let bad = fact(MessageType::InventoryRejected, json!({"noReason": true}));
    assert!(matches!(
        on_step_result(
            &store,
            &Default::default(),
            &bad,
            MessageType::InventoryRejected
        )
        .await,
        Err(MessageError::Decode(_))
    ));
    // What a fact would carry into the order is bounded: a huge reason, a control
    // character, a courier that is no id.
    for (kind, data) in [
        (
            MessageType::InventoryRejected,
            json!({"reason": "x".repeat(100_000)}),
        ),
        (
            MessageType::InventoryRejected,
            json!({"reason": "out of stock\u{0}"}),
        ),
        (
            MessageType::DeliveryDispatched,
            json!({"courierId": "c/../1"}),
        ),
    ] {
        let hostile = fact(kind, data);
        assert!(matches!(
            on_step_result(&store, &Default::default(), &hostile, kind).await,
            Err(MessageError::Permanent {
                code: PermanentCode::InvalidContent,
                ..
            })
        ));
    }
    let mut stray = fact(MessageType::InventoryReserved, json!({}));
    stray.order_id = "o-404".into();
    assert!(matches!(
        on_step_result(
            &store,
            &Default::default(),
            &stray,
            MessageType::InventoryReserved
        )
        .await,
        Err(MessageError::Permanent {
            code: PermanentCode::UnknownReference,
            ..
        })
    ));
    let cmd = fact(MessageType::ReserveInventory, json!({}));
    assert!(matches!(
        on_step_result(
            &store,
            &Default::default(),
            &cmd,
            MessageType::ReserveInventory
        )
        .await,
        Err(MessageError::Unsupported)
    ));
    assert_eq!(status(&store).await, OrderStatus::Pending);
}

/// Every update loses to another writer.
struct Contended {
    inner: InMemoryOrderStore,
    updates: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl OrderStore for Contended {
    async fn get(&self, id: &str) -> Result<Option<Order>, dishpatch::error::StoreError> {
        self.inner.get(id).await
    }
    async fn save(
        &self,
        order: &Order,
        expected: Option<u64>,
        outbox: &[Envelope],
    ) -> Result<(), dishpatch::error::StoreError> {
        if expected.is_none() {
            return self.inner.save(order, expected, outbox).await;
        }
        self.updates
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(dishpatch::error::StoreError::Conflict("version".into()))
    }
    async fn list_for_customer(
        &self,
        customer: &str,
        size: u32,
        token: Option<&str>,
    ) -> Result<dishpatch::orders::Page, dishpatch::error::StoreError> {
        self.inner.list_for_customer(customer, size, token).await
    }
    async fn overdue(
        &self,
        before: &str,
        limit: u32,
    ) -> Result<Vec<String>, dishpatch::error::StoreError> {
        self.inner.overdue(before, limit).await
    }
}

#[tokio::test]
async fn a_result_that_keeps_losing_the_write_is_retried_later_after_four_tries() {
    let store = Contended {
        inner: InMemoryOrderStore::default(),
        updates: Default::default(),
    };
    placed(&store.inner).await;
    let f = fact(MessageType::InventoryReserved, json!({}));
    let failed = on_step_result(
        &store,
        &Default::default(),
        &f,
        MessageType::InventoryReserved,
    )
    .await;
    assert!(
        matches!(failed, Err(MessageError::Transient(_))),
        "{failed:?}"
    );
    let tries = store.updates.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(tries, 4);
    assert_eq!(status(&store.inner).await, OrderStatus::Pending);
}

#[tokio::test]
async fn relay_publishes_the_outbox_of_the_stream_image() {
    let publisher = RecordingPublisher::default();
    let envs = vec![
        fact(
            MessageType::ReserveInventory,
            json!({"restaurantId": "r-1", "items": []}),
        ),
        fact(MessageType::OrderPlaced, json!({"customerId": "alice"})),
    ];
    let image: serde_dynamo::Item =
        serde_dynamo::to_item(json!({"pk": "ORDER#o-1", "outbox": envs})).unwrap();
    let mut record = aws_lambda_events::dynamodb::EventRecord::default();
    record.event_name = "MODIFY".into();
    record.change.new_image = image;
    crate::relay::publish_outbox(&publisher, &record)
        .await
        .unwrap();
    assert_eq!(*publisher.sent.lock().unwrap(), envs);
    // A failed publish fails the record, so the stream retries it.
    publisher
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(crate::relay::publish_outbox(&publisher, &record)
        .await
        .is_err());
}

fn timeout(step: &str, attempt: u8) -> Envelope {
    fact(
        MessageType::StepTimeout,
        json!({"step": step, "attempt": attempt, "delaySeconds": 1}),
    )
}

#[tokio::test]
async fn a_step_that_times_out_is_undone_and_an_unconfirmed_undo_ends_in_an_alert() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let t = Default::default();
    on_step_result(
        &store,
        &t,
        &fact(MessageType::InventoryReserved, json!({})),
        MessageType::InventoryReserved,
    )
    .await
    .unwrap();
    // The payment never answers: its deadline fires, and the refund is tried three times.
    on_step_result(&store, &t, &timeout("Payment", 0), MessageType::StepTimeout)
        .await
        .unwrap();
    assert_eq!(status(&store).await, OrderStatus::Cancelling);
    for attempt in 1..=3 {
        on_step_result(
            &store,
            &t,
            &timeout("Payment", attempt),
            MessageType::StepTimeout,
        )
        .await
        .unwrap();
    }
    let order = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::CompensationFailed);
    assert_eq!(order.saga.cancel_reason.as_deref(), Some("PAYMENT_TIMEOUT"));
    let outbox = store.outbox.lock().unwrap();
    let refunds = outbox.iter().filter(|e| e.kind == "RefundPayment").count();
    assert_eq!(refunds, 3, "one refund per try");
    let alert = outbox
        .iter()
        .find(|e| e.kind == "OpsAlert")
        .expect("operators are alerted");
    assert_eq!(alert.data["severity"], "CRITICAL");
    assert_eq!(alert.data["alert"], "CompensationFailed");
    assert_eq!(alert.data["step"], "Payment");
    let told = outbox
        .iter()
        .find(|e| e.kind == "CompensationFailed")
        .expect("the customer is told");
    assert_eq!(told.data["customerId"], "alice");
    // Retry delays grow 1 s / 2 s / 4 s on top of the per-try deadline.
    let delays: Vec<u64> = outbox
        .iter()
        .filter(|e| e.kind == "StepTimeout" && e.data["attempt"].as_u64() > Some(0))
        .map(|e| e.data["delaySeconds"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, [31, 32, 34]);
}

#[tokio::test]
async fn a_stale_timeout_is_a_no_op() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let t = Default::default();
    on_step_result(
        &store,
        &t,
        &fact(MessageType::InventoryReserved, json!({})),
        MessageType::InventoryReserved,
    )
    .await
    .unwrap();
    let before = store.get("o-1").await.unwrap().unwrap();
    on_step_result(
        &store,
        &t,
        &timeout("Inventory", 0),
        MessageType::StepTimeout,
    )
    .await
    .unwrap();
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
}

// ---- the sweeper ----

mod sweeper {
    use super::*;
    use crate::sweep::{sweep, Summary, SweepConfig, CAUSE};
    use chrono::{DateTime, Utc};

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
        let sent: Vec<String> = store
            .outbox
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        assert_eq!(
            sent.iter().filter(|k| *k == "ReleaseInventory").count(),
            3,
            "{sent:?}"
        );
        assert!(sent.contains(&"OpsAlert".to_owned()), "{sent:?}");
        // At rest: nothing more to sweep.
        assert_eq!(run(&store, "2026-11-23T00:00:00Z").await.overdue, 0);
    }

    #[tokio::test]
    async fn an_order_still_changing_is_left_to_the_next_run() {
        let store = Contended {
            inner: InMemoryOrderStore::default(),
            updates: Default::default(),
        };
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
        assert_eq!(store.updates.load(std::sync::atomic::Ordering::SeqCst), 4);
        assert_eq!(status(&store.inner).await, OrderStatus::Pending);
    }

    #[tokio::test]
    async fn an_order_that_moved_on_is_left_alone() {
        let store = InMemoryOrderStore::default();
        placed(&store).await;
        let f = fact(MessageType::InventoryReserved, json!({}));
        on_step_result(
            &store,
            &Default::default(),
            &f,
            MessageType::InventoryReserved,
        )
        .await
        .unwrap();
        let before = store.get("o-1").await.unwrap().unwrap();
        // Its first deadline is long past, its new one not yet: nothing to sweep.
        let due: DateTime<Utc> = before.deadline.as_deref().unwrap().parse().unwrap();
        let s = run(&store, &(due + chrono::Duration::seconds(59)).to_rfc3339()).await;
        assert_eq!(s.overdue, 0);
        assert_eq!(store.get("o-1").await.unwrap().unwrap(), before);
    }
}
