//! Handler logic against in-memory fakes of the ports and a fixed clock.

use crate::handler::Clock;
use crate::notifier::{CustomerNotification, CustomerNotifier};
use crate::records::{NotificationRecord, NotificationStore};
use crate::App;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::{MessageError, PermanentCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct FakeRecords {
    items: Mutex<HashMap<(String, String), NotificationRecord>>,
    fail: AtomicBool,
}

impl FakeRecords {
    fn all(&self) -> Vec<NotificationRecord> {
        self.items.lock().unwrap().values().cloned().collect()
    }
}

#[async_trait::async_trait]
impl NotificationStore for FakeRecords {
    async fn is_sent(&self, order_id: &str, event_id: &str) -> Result<bool, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(items.contains_key(&(order_id.to_owned(), event_id.to_owned())))
    }

    async fn record_sent(&self, record: &NotificationRecord) -> Result<bool, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Aws("DynamoDB down".into()));
        }
        let mut items = self.items.lock().unwrap();
        let key = (record.order_id.clone(), record.event_id.clone());
        if items.contains_key(&key) {
            return Ok(false);
        }
        items.insert(key, record.clone());
        Ok(true)
    }
}

#[derive(Default)]
struct FakeNotifier {
    sent: Mutex<Vec<CustomerNotification>>,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl CustomerNotifier for FakeNotifier {
    async fn send(&self, n: &CustomerNotification) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Aws("SNS down".into()));
        }
        self.sent.lock().unwrap().push(n.clone());
        Ok(())
    }
}

struct FixedClock(Mutex<DateTime<Utc>>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Fixture {
    app: App,
    records: Arc<FakeRecords>,
    notifier: Arc<FakeNotifier>,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    let records = Arc::new(FakeRecords::default());
    let notifier = Arc::new(FakeNotifier::default());
    let clock = Arc::new(FixedClock(Mutex::new(
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    )));
    Fixture {
        app: App {
            records: records.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            dead_letters: None,
        },
        records,
        notifier,
        clock,
    }
}

impl Fixture {
    /// A fact that happened `age` before the clock's now.
    fn fact(&self, kind: MessageType, age: Duration, data: Value) -> Envelope {
        let mut env = Envelope::new(kind, "o-1", data);
        env.occurred_at = (self.clock.now() - age).to_rfc3339_opts(SecondsFormat::Millis, true);
        env
    }

    async fn handle(&self, env: &Envelope) -> Result<(), MessageError> {
        dishpatch::testing::handle(&self.app, env).await
    }

    fn sent(&self) -> Vec<CustomerNotification> {
        self.notifier.sent.lock().unwrap().clone()
    }
}

fn order_fact() -> Value {
    json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}})
}

#[tokio::test]
async fn sends_then_records() {
    let f = fixture();
    let env = f.fact(MessageType::OrderPlaced, Duration::seconds(2), order_fact());
    f.handle(&env).await.unwrap();
    let expected = CustomerNotification {
        order_id: "o-1".into(),
        customer_id: "cust-1".into(),
        event_type: "OrderPlaced".into(),
        channel: "PUSH".into(),
        message: "Your order o-1 for 19.00 EUR has been placed.".into(),
    };
    assert_eq!(f.sent(), vec![expected.clone()]);
    assert_eq!(
        f.records.all(),
        vec![NotificationRecord {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            event_id: env.id.clone(),
            event_type: "OrderPlaced".into(),
            channel: "PUSH".into(),
            message: expected.message,
            sent_at: "2026-11-22T10:00:00.000Z".into(),
        }]
    );
}

#[tokio::test]
async fn a_duplicate_is_sent_once() {
    let f = fixture();
    let env = f.fact(MessageType::OrderCancelled, Duration::seconds(1), json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}, "reason": "NO_COURIER"}));
    f.handle(&env).await.unwrap();
    f.handle(&env).await.unwrap();
    f.handle(&env).await.unwrap();
    assert_eq!(f.sent().len(), 1);
    assert!(f.sent()[0].message.contains("no courier was available"));
    // A different fact of the same order is its own message.
    f.handle(&f.fact(MessageType::OrderDelivered, Duration::zero(), order_fact()))
        .await
        .unwrap();
    assert_eq!(f.sent().len(), 2);
    assert_eq!(f.records.all().len(), 2);
}

#[tokio::test]
async fn a_failed_send_records_nothing_and_is_retried() {
    let f = fixture();
    let env = f.fact(
        MessageType::OrderConfirmed,
        Duration::seconds(1),
        order_fact(),
    );
    f.notifier.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.handle(&env).await,
        Err(MessageError::Transient(_))
    ));
    assert!(f.records.all().is_empty(), "not sent, so not recorded");
    f.notifier.fail.store(false, Ordering::SeqCst);
    f.handle(&env).await.unwrap();
    f.handle(&env).await.unwrap();
    assert_eq!(f.sent().len(), 1);
    assert_eq!(f.records.all().len(), 1);
}

#[tokio::test]
async fn a_send_whose_record_failed_is_sent_again_with_the_same_words() {
    let f = fixture();
    let env = f.fact(
        MessageType::OrderDelivered,
        Duration::seconds(1),
        order_fact(),
    );
    f.records.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.handle(&env).await,
        Err(MessageError::Transient(_))
    ));
    f.records.fail.store(false, Ordering::SeqCst);
    *f.clock.0.lock().unwrap() += Duration::seconds(5);
    f.handle(&env).await.unwrap();
    f.handle(&env).await.unwrap();
    // At least once: the retry sends again, identically, and then records it.
    let sent = f.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
    let records = f.records.all();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message, sent[0].message);
}

#[tokio::test]
async fn stale_informational_facts_are_dropped() {
    for kind in [
        MessageType::OrderPlaced,
        MessageType::OrderConfirmed,
        MessageType::OrderDispatched,
    ] {
        let f = fixture();
        f.handle(&f.fact(kind, Duration::seconds(61), order_fact()))
            .await
            .unwrap();
        assert!(f.sent().is_empty(), "{kind} should be dropped");
        assert!(f.records.all().is_empty());
        // Just inside the limit it is still news.
        f.handle(&f.fact(kind, Duration::seconds(60), order_fact()))
            .await
            .unwrap();
        assert_eq!(f.sent().len(), 1, "{kind} at 60 s should be sent");
    }
}

#[tokio::test]
async fn cancellations_failures_and_deliveries_are_never_stale() {
    let f = fixture();
    let data = json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}, "reason": "OUT_OF_STOCK"});
    for kind in [
        MessageType::OrderCancelled,
        MessageType::CompensationFailed,
        MessageType::OrderDelivered,
    ] {
        f.handle(&f.fact(kind, Duration::hours(6), data.clone()))
            .await
            .unwrap();
    }
    let types: Vec<String> = f.sent().into_iter().map(|n| n.event_type).collect();
    assert_eq!(
        types,
        vec!["OrderCancelled", "CompensationFailed", "OrderDelivered"]
    );
}

#[tokio::test]
async fn an_unreadable_timestamp_is_not_stale() {
    let f = fixture();
    let mut env = f.fact(MessageType::OrderPlaced, Duration::zero(), order_fact());
    env.occurred_at = "yesterday-ish".into();
    f.handle(&env).await.unwrap();
    assert_eq!(f.sent().len(), 1);
}

#[tokio::test]
async fn other_types_and_bad_payloads_are_refused() {
    let f = fixture();
    let other = f.fact(
        MessageType::InventoryReserved,
        Duration::zero(),
        order_fact(),
    );
    assert!(matches!(
        f.handle(&other).await,
        Err(MessageError::Unsupported)
    ));
    let bad = f.fact(
        MessageType::OrderPlaced,
        Duration::zero(),
        json!({"customerId": "cust-1"}),
    );
    assert!(matches!(f.handle(&bad).await, Err(MessageError::Decode(_))));
    for data in [
        json!({"customerId": "cust-1", "total": {"amount": 1, "currency": "EUR"}, "reason": "x".repeat(201)}),
        json!({"customerId": "cust 1\n", "total": {"amount": 1, "currency": "EUR"}}),
        json!({"customerId": "cust-1", "total": {"amount": 1, "currency": "EUR"}, "courierId": "a/b"}),
    ] {
        let hostile = f.fact(MessageType::OrderCancelled, Duration::zero(), data);
        assert!(matches!(
            f.handle(&hostile).await,
            Err(MessageError::Permanent {
                code: PermanentCode::InvalidContent,
                ..
            })
        ));
    }
    assert!(f.sent().is_empty());
}

#[tokio::test]
async fn an_sns_wrapped_fact_from_the_queue_is_handled() {
    let f = fixture();
    let env = f.fact(
        MessageType::OrderDelivered,
        Duration::seconds(3),
        order_fact(),
    );
    let body =
        json!({"Type": "Notification", "MessageId": "m-1", "Message": env.to_json()}).to_string();
    let event = json!({"Records": [
        {"messageId": "ok", "body": body, "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}},
        {"messageId": "bad", "body": "{not json", "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}}
    ]});
    let out = dishpatch::runtime::invoke(&f.app, event, Default::default())
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    assert_eq!(
        f.sent()[0].message,
        "Your order o-1 has been delivered. Enjoy your meal!"
    );
}

#[tokio::test]
async fn a_dropped_stale_fact_is_counted_once() {
    use dishpatch::emf::metrics::STALE_NOTIFICATIONS;
    use dishpatch::emf::{assert_valid, Capture};

    let f = fixture();
    let capture = Capture::start();
    f.handle(&f.fact(
        MessageType::OrderPlaced,
        Duration::seconds(61),
        order_fact(),
    ))
    .await
    .unwrap();
    f.handle(&f.fact(MessageType::OrderPlaced, Duration::seconds(1), order_fact()))
        .await
        .unwrap();
    let points = capture.points(&STALE_NOTIFICATIONS);
    assert_eq!(points.len(), 1, "only the stale one");
    let (dims, n, line) = &points[0];
    assert_valid(line);
    assert!(dims.is_empty());
    assert_eq!(*n, 1.0);
    assert_eq!(line["eventType"], "OrderPlaced");
    assert!(line["orderId"].is_string());
}
