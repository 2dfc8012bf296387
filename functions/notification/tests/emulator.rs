//! The record store and the SNS notifier against the AWS emulator (moto): publish to a
//! real topic whose queue subscription filters on `channel`, then record.

use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::Function;
use dishpatch::testing::{
    create_table, emulator, subscribe, topic_with_subscription, Subscription,
};
use notification::{DynamoNotificationStore, NotificationRecord, NotificationStore};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

fn record(order_id: &str, event_id: &str) -> NotificationRecord {
    NotificationRecord {
        order_id: order_id.into(),
        customer_id: "cust-1".into(),
        event_id: event_id.into(),
        event_type: "OrderPlaced".into(),
        channel: "PUSH".into(),
        message: "Your order o-1 for 19.00 EUR has been placed.".into(),
        sent_at: dishpatch::envelope::now(),
    }
}

#[tokio::test]
async fn a_record_is_written_once() {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_table(&sdk, "notifications", &[]).await;
    let store = DynamoNotificationStore::new(ddb, &table);
    let first = record("o-1", "e-1");
    assert!(!store.is_sent("o-1", "e-1").await.unwrap());
    assert!(store.record_sent(&first).await.unwrap());
    assert!(store.is_sent("o-1", "e-1").await.unwrap());
    // A concurrent duplicate's record (another sentAt) does not overwrite the first.
    let second = NotificationRecord {
        sent_at: "2030-01-01T00:00:00.000Z".into(),
        ..first.clone()
    };
    assert!(!store.record_sent(&second).await.unwrap());
    assert_eq!(store.get("o-1", "e-1").await.unwrap(), Some(first));
    // Another event of the same order is its own record.
    assert!(!store.is_sent("o-1", "e-2").await.unwrap());
    assert!(store.record_sent(&record("o-1", "e-2")).await.unwrap());
}

struct Stack {
    store: DynamoNotificationStore,
    push_queue: Subscription,
    sms_queue: Subscription,
    app: notification::App,
}

async fn stack() -> Stack {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_table(&sdk, "notifications", &[]).await;
    let (topic, push_queue) = topic_with_subscription(&sdk, Some(r#"{"channel": ["PUSH"]}"#)).await;
    // A second subscriber for another channel must not see push messages.
    let sms_queue = subscribe(&sdk, &topic, Some(r#"{"channel": ["SMS"]}"#)).await;
    let env = Env::from_map(HashMap::from([
        ("NOTIFICATIONS_TABLE".to_owned(), table.clone()),
        ("CUSTOMER_NOTIFICATIONS_TOPIC_ARN".to_owned(), topic),
    ]));
    let app = notification::build(&sdk, &env).await.unwrap();
    Stack {
        store: DynamoNotificationStore::new(ddb, table),
        push_queue,
        sms_queue,
        app,
    }
}

fn fact(kind: MessageType, order_id: &str, data: Value) -> Envelope {
    Envelope::new(kind, order_id, data)
}

fn order_fact() -> Value {
    json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}})
}

#[tokio::test]
async fn publishes_to_the_customer_topic_once_then_records() {
    let st = stack().await;
    let placed = fact(MessageType::OrderPlaced, "o-1", order_fact());
    st.app
        .message(placed.clone(), MessageType::OrderPlaced)
        .await
        .unwrap();

    let bodies = st.push_queue.receive(1, Duration::from_secs(10)).await;
    assert_eq!(bodies.len(), 1);
    let wrapper: Value = serde_json::from_str(&bodies[0]).unwrap();
    let sent: Value = serde_json::from_str(wrapper["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"orderId": "o-1", "customerId": "cust-1", "eventType": "OrderPlaced", "channel": "PUSH",
               "message": "Your order o-1 for 19.00 EUR has been placed."})
    );
    assert_eq!(wrapper["MessageAttributes"]["channel"]["Value"], "PUSH");
    assert_eq!(
        wrapper["MessageAttributes"]["eventType"]["Value"],
        "OrderPlaced"
    );

    let stored = st.store.get("o-1", &placed.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.event_id.as_str(), stored.message.as_str()),
        (placed.id.as_str(), sent["message"].as_str().unwrap())
    );

    // Replays send nothing more; the other channel's subscriber saw nothing at all.
    st.app
        .message(placed.clone(), MessageType::OrderPlaced)
        .await
        .unwrap();
    st.app
        .message(placed, MessageType::OrderPlaced)
        .await
        .unwrap();
    assert!(st.push_queue.drain().await.is_empty());
    assert!(st.sms_queue.drain().await.is_empty());
}

#[tokio::test]
async fn a_recorded_fact_is_not_sent_again_and_a_stale_fact_is_not_sent() {
    let st = stack().await;
    // Sent and recorded by an earlier delivery of the same fact.
    let cancelled = fact(
        MessageType::OrderCancelled,
        "o-2",
        json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}, "reason": "OUT_OF_STOCK"}),
    );
    let earlier = NotificationRecord {
        order_id: "o-2".into(),
        event_id: cancelled.id.clone(),
        event_type: "OrderCancelled".into(),
        message: "as first rendered".into(),
        ..record("o-2", "ignored")
    };
    assert!(st.store.record_sent(&earlier).await.unwrap());
    st.app
        .message(cancelled.clone(), MessageType::OrderCancelled)
        .await
        .unwrap();
    assert!(st.push_queue.drain().await.is_empty());
    assert_eq!(
        st.store.get("o-2", &cancelled.id).await.unwrap(),
        Some(earlier)
    );

    // Informational news two minutes old is dropped without a record.
    let mut old = fact(MessageType::OrderConfirmed, "o-3", order_fact());
    old.occurred_at = (chrono::Utc::now() - chrono::Duration::seconds(120))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    st.app
        .message(old.clone(), MessageType::OrderConfirmed)
        .await
        .unwrap();
    assert_eq!(st.store.get("o-3", &old.id).await.unwrap(), None);
    assert!(st.push_queue.drain().await.is_empty());
}
