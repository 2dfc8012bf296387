//! The loop over the in-memory store, and over a store where another writer gets in
//! before the first saves.

use super::*;
use crate::envelope::MessageType;
use crate::order::OrderStatus;
use crate::orders::Page;
use crate::outbox::Outgoing;
use crate::saga::SagaError;
use crate::testing::{sample_order, InMemoryOrderStore, RacingOrderStore};
use std::sync::atomic::Ordering::SeqCst;

const ATTEMPTS: usize = 4;

const NO_MESSAGE: Cause = Cause {
    name: "Test",
    message: None,
};

/// o-1, PENDING (version 1), its outbox written.
async fn placed(store: &dyn OrderStore) -> Order {
    let (order, outbox) = advance(
        &sample_order(),
        &saga::start(),
        "PlaceOrder",
        None,
        "2026-11-22T10:00:00.000Z",
        &Timings::default(),
    );
    store.save(&order, None, &outbox).await.unwrap();
    order
}

fn cancel() -> SagaEvent {
    SagaEvent::CancelRequested {
        reason: "CUSTOMER_CANCELLED".into(),
    }
}

async fn run(store: &dyn OrderStore, event: &SagaEvent, cause: Cause<'_>) -> Applied {
    apply(store, &Timings::default(), "o-1", event, cause, ATTEMPTS)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_the_saga_takes_is_written_with_its_outbox() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let fact = Envelope::new(MessageType::InventoryReserved, "o-1", serde_json::json!({}));
    let cause = Cause {
        name: "InventoryReserved",
        message: Some(&fact),
    };
    let Applied::Moved { from, to } = run(&store, &SagaEvent::InventoryReserved, cause).await
    else {
        panic!("the reservation moves the order on")
    };
    assert_eq!((from.version, to.version), (1, 2));
    assert_eq!(to.status(), OrderStatus::Reserved);
    assert_eq!(to.timeline.last().unwrap().cause, "InventoryReserved");
    assert_eq!(store.get("o-1").await.unwrap().unwrap(), *to);
    let capture = store.first(MessageType::CapturePayment).unwrap().envelope;
    assert_eq!(capture.causation_id.as_deref(), Some(fact.id.as_str()));
}

#[tokio::test]
async fn a_duplicate_or_refused_event_writes_nothing() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    assert!(matches!(
        run(&store, &cancel(), NO_MESSAGE).await,
        Applied::Moved { .. }
    ));
    let version = store.get("o-1").await.unwrap().unwrap().version;
    let sent_before = store.kinds();
    let Applied::Ignored { order, .. } = run(&store, &cancel(), NO_MESSAGE).await else {
        panic!("a second cancel is a duplicate")
    };
    assert_eq!(order.status(), OrderStatus::Cancelled);
    store.orders.lock().unwrap()[0].saga.status = OrderStatus::Delivered;
    let Applied::Refused { error, .. } = run(&store, &cancel(), NO_MESSAGE).await else {
        panic!("a delivered order cannot be cancelled")
    };
    assert_eq!(error, SagaError::NotCancellable("DELIVERED"));
    assert_eq!(store.get("o-1").await.unwrap().unwrap().version, version);
    assert_eq!(store.kinds(), sent_before);
}

#[tokio::test]
async fn an_unknown_order_is_missing() {
    let store = InMemoryOrderStore::default();
    assert!(matches!(
        run(&store, &cancel(), NO_MESSAGE).await,
        Applied::Missing
    ));
    assert!(store.kinds().is_empty());
}

#[tokio::test]
async fn decide_can_send_no_event() {
    let store = InMemoryOrderStore::default();
    placed(&store).await;
    let not_alices = |o: &Order| match o.customer_id.as_str() {
        "bob" => Ok(cancel()),
        other => Err(other.to_owned()),
    };
    let applied = apply_with(
        &store,
        &Timings::default(),
        "o-1",
        not_alices,
        NO_MESSAGE,
        3,
    )
    .await
    .unwrap();
    assert!(matches!(applied, Applied::Declined(who) if who == "alice"));
    assert_eq!(store.kinds().len(), 3, "only the placement's outbox");
}

#[tokio::test]
async fn a_write_that_loses_a_race_is_decided_again_on_the_fresh_order() {
    let store = RacingOrderStore::new(Default::default(), 1);
    placed(&store).await;
    let reads = std::sync::Mutex::new(vec![]);
    let decide = |o: &Order| {
        reads.lock().unwrap().push(o.version);
        Ok::<_, Infallible>(cancel())
    };
    let applied = apply_with(&store, &Timings::default(), "o-1", decide, NO_MESSAGE, 3)
        .await
        .unwrap();
    let Applied::Moved { from, to } = applied else {
        panic!("the second try is written")
    };
    assert_eq!(*reads.lock().unwrap(), [1, 2], "decided on each read");
    assert_eq!((from.version, to.version), (2, 3));
    assert_eq!(to.status(), OrderStatus::Cancelled);
    assert_eq!(store.updates.load(SeqCst), 2);
    let sent = store.inner.kinds();
    assert_eq!(
        sent.iter()
            .filter(|k| **k == MessageType::OrderCancelled)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_write_that_loses_every_race_gives_up_after_its_attempts() {
    let store = RacingOrderStore::contended(Default::default());
    placed(&store).await;
    for attempts in [1, 3, 4] {
        store.updates.store(0, SeqCst);
        let applied = apply(
            &store,
            &Timings::default(),
            "o-1",
            &cancel(),
            NO_MESSAGE,
            attempts,
        )
        .await
        .unwrap();
        assert!(matches!(applied, Applied::Contended));
        assert_eq!(store.updates.load(SeqCst), attempts);
    }
    let order = store.get("o-1").await.unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::Pending, "never written");
    assert!(!store.inner.kinds().contains(&MessageType::OrderCancelled));
}

#[tokio::test]
async fn a_store_failure_is_returned_as_it_is() {
    struct Down;
    #[async_trait::async_trait]
    impl OrderStore for Down {
        async fn get(&self, _: &str) -> Result<Option<Order>, StoreError> {
            Err(StoreError::Aws("throttled".into()))
        }
        async fn save(&self, _: &Order, _: Option<u64>, _: &[Outgoing]) -> Result<(), StoreError> {
            unreachable!("nothing was read")
        }
        async fn list_for_customer(
            &self,
            _: &str,
            _: u32,
            _: Option<&str>,
        ) -> Result<Page, StoreError> {
            unreachable!("not listed")
        }
    }
    let failed = apply(&Down, &Timings::default(), "o-1", &cancel(), NO_MESSAGE, 4).await;
    assert!(matches!(failed, Err(StoreError::Aws(_))));
}

/// Metrics come from the write that wins: once per transition, none for a duplicate,
/// a lost race or a refusal.
#[tokio::test]
async fn the_winning_write_emits_the_saga_metrics_once() {
    use crate::emf::{assert_valid, Capture};
    use dishpatch_core::metrics::{SAGA_EXECUTIONS, SAGA_TRANSITIONS, STEP_LATENCY};

    let store = RacingOrderStore::new(Default::default(), 1);
    placed(&store).await;
    let capture = Capture::start();
    assert!(matches!(
        run(&store, &SagaEvent::InventoryReserved, NO_MESSAGE).await,
        Applied::Moved { .. }
    ));
    assert!(matches!(
        run(&store, &SagaEvent::InventoryReserved, NO_MESSAGE).await,
        Applied::Ignored { .. }
    ));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.iter().for_each(assert_valid);
    assert_eq!(lines[0]["Status"], "RESERVED");
    assert_eq!(lines[0]["Step"], "INVENTORY");
    assert!(lines[0]["StepLatency"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[0]["orderId"], "o-1");

    capture.clear();
    assert!(matches!(
        run(&store, &cancel(), NO_MESSAGE).await,
        Applied::Moved { .. }
    ));
    assert_eq!(
        capture
            .points(&SAGA_TRANSITIONS)
            .into_iter()
            .map(|(dims, n, _)| (dims, n))
            .collect::<Vec<_>>(),
        [(vec!["CANCELLING".to_owned()], 1.0)]
    );
    assert!(capture.points(&SAGA_EXECUTIONS).is_empty());
    assert!(capture.points(&STEP_LATENCY).is_empty());
}

#[tokio::test]
async fn a_write_that_never_wins_emits_nothing() {
    let store = RacingOrderStore::contended(Default::default());
    placed(&store).await;
    let capture = crate::emf::Capture::start();
    let applied = apply(&store, &Timings::default(), "o-1", &cancel(), NO_MESSAGE, 3)
        .await
        .unwrap();
    assert!(matches!(applied, Applied::Contended));
    assert!(capture.lines().is_empty());
}
