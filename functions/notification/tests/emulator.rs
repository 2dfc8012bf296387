//! The record store and the SNS notifier against the AWS emulator (moto): record, then
//! publish to a real topic whose queue subscription filters on `channel`.

use dishpatch::config::Env;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::error::StoreError;
use dishpatch::runtime::Function;
use dishpatch::testing::{
    create_table, emulator, subscribe, topic_with_subscription, Subscription,
};
use notification::{DynamoNotificationStore, NotificationRecord, NotificationStore, Recorded};
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
        published: false,
    }
}

#[tokio::test]
async fn a_record_is_written_once_and_then_marked_sent() {
    let sdk = emulator().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_table(&sdk, "notifications", &[]).await;
    let store = DynamoNotificationStore::new(ddb, &table);
    let first = record("o-1", "e-1");
    assert_eq!(store.record(&first).await.unwrap(), Recorded::New);
    // A second rendering (another sentAt) does not overwrite the first.
    let second = NotificationRecord {
        sent_at: "2030-01-01T00:00:00.000Z".into(),
        ..first.clone()
    };
    assert_eq!(
        store.record(&second).await.unwrap(),
        Recorded::Unsent(first.clone())
    );
    store.mark_published("o-1", "e-1").await.unwrap();
    assert_eq!(store.record(&second).await.unwrap(), Recorded::Sent);
    assert_eq!(
        store.get("o-1", "e-1").await.unwrap(),
        Some(NotificationRecord {
            published: true,
            ..first
        })
    );
    // Another event of the same order is its own record.
    assert_eq!(
        store.record(&record("o-1", "e-2")).await.unwrap(),
        Recorded::New
    );
    assert!(matches!(
        store.mark_published("o-1", "e-missing").await,
        Err(StoreError::Conflict(_))
    ));
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
async fn records_then_publishes_to_the_customer_topic_once() {
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
    assert!(stored.published);
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
async fn a_record_left_unsent_is_sent_on_retry_and_a_stale_fact_is_not() {
    let st = stack().await;
    // A crash between the write and the publish left this record unsent.
    let cancelled = fact(
        MessageType::OrderCancelled,
        "o-2",
        json!({"customerId": "cust-1", "total": {"amount": 1900, "currency": "EUR"}, "reason": "OUT_OF_STOCK"}),
    );
    let left = NotificationRecord {
        order_id: "o-2".into(),
        event_id: cancelled.id.clone(),
        event_type: "OrderCancelled".into(),
        message: "as first rendered".into(),
        ..record("o-2", "ignored")
    };
    assert_eq!(st.store.record(&left).await.unwrap(), Recorded::New);
    st.app
        .message(cancelled.clone(), MessageType::OrderCancelled)
        .await
        .unwrap();
    let bodies = st.push_queue.receive(1, Duration::from_secs(10)).await;
    let wrapper: Value = serde_json::from_str(&bodies[0]).unwrap();
    let sent: Value = serde_json::from_str(wrapper["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        (sent["orderId"].as_str(), sent["message"].as_str()),
        (Some("o-2"), Some("as first rendered"))
    );
    assert!(
        st.store
            .get("o-2", &cancelled.id)
            .await
            .unwrap()
            .unwrap()
            .published
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
