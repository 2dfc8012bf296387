//! Event-source mappings against a real moto server, with tiny test functions in place
//! of the real ones: SQS batches (delete successes, retry failures, the emulator's
//! redrive to the DLQ), SNS filter policies, duplicate deliveries, DynamoDB streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::{Function, MessageError};
use dishpatch_local::invariants::messages;
use dishpatch_local::testing::{self, eventually};
use dishpatch_local::{LocalStack, LocalStackOptions};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

/// Records every message it handles; fails (always) for orders named `poison*`.
#[derive(Default, Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Recorder {
    fn count(&self, order_id: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, o)| o == order_id)
            .count()
    }
    fn kinds(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl Function for Recorder {
    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        self.seen
            .lock()
            .unwrap()
            .push((kind.as_str().to_owned(), envelope.order_id.clone()));
        if envelope.order_id.starts_with("poison") {
            Err(MessageError::Transient("poison".into()))
        } else {
            Ok(())
        }
    }
}

async fn start(name: &str, overrides: &[(&str, Arc<dyn Function>)], duplicate: bool) -> LocalStack {
    let mut opts = LocalStackOptions::new(testing::unique_prefix(name))
        .endpoint(testing::moto())
        .seed(false)
        .retry_delay(Duration::ZERO)
        .duplicate_deliveries(duplicate);
    for (id, f) in overrides {
        opts = opts.override_function(id, f.clone());
    }
    LocalStack::start(opts).await.expect("local stack starts")
}

/// (visible, in flight) of a queue.
/// Sends a `ReserveInventory` command for each order id, ten to a batch.
async fn send_reserves(sqs: &aws_sdk_sqs::Client, url: &str, orders: &[String]) {
    for chunk in orders.chunks(10) {
        let entries = chunk
            .iter()
            .map(|o| {
                SendMessageBatchRequestEntry::builder()
                    .id(o.clone())
                    .message_body(
                        Envelope::new(MessageType::ReserveInventory, o, json!({})).to_json(),
                    )
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
}

/// Writes `item` (JSON, mapped by serde_dynamo) to `table`.
async fn put_json(ddb: &aws_sdk_dynamodb::Client, table: &str, item: serde_json::Value) {
    ddb.put_item()
        .table_name(table)
        .set_item(Some(serde_dynamo::to_item(item).unwrap()))
        .send()
        .await
        .unwrap();
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (i64, i64) {
    let d = messages::queue_depth(sqs, url, url).await.unwrap();
    (d.visible, d.in_flight)
}

#[tokio::test]
async fn sqs_batches_delete_successes_and_redrive_poison_to_the_dlq() {
    let inventory = Recorder::default();
    let local = start(
        "sqs",
        &[("InventoryFunction", Arc::new(inventory.clone()))],
        false,
    )
    .await;
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let url = local.stack.queue_url("InventoryQueue").to_owned();

    let mut entries = Vec::new();
    for i in 0..5 {
        entries.push(
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(
                    Envelope::new(
                        MessageType::ReserveInventory,
                        &format!("good-{i}"),
                        json!({}),
                    )
                    .to_json(),
                )
                .build()
                .unwrap(),
        );
    }
    entries.push(
        SendMessageBatchRequestEntry::builder()
            .id("poison")
            .message_body(
                Envelope::new(MessageType::ReserveInventory, "poison-1", json!({})).to_json(),
            )
            .build()
            .unwrap(),
    );
    let out = sqs
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert!(out.failed.is_empty());

    // Every good message delivered exactly once; the poison one retried.
    let delivered = eventually(DEADLINE, || async {
        ((0..5).all(|i| inventory.count(&format!("good-{i}")) == 1)).then_some(())
    })
    .await;
    assert!(
        delivered.is_some(),
        "good messages not delivered: {:?}",
        inventory.seen.lock().unwrap()
    );

    // The emulator moves the poison message to the DLQ after maxReceiveCount (3) receives.
    let dlq_url = local.stack.queue_url("InventoryQueueDLQ").to_owned();
    let in_dlq = eventually(DEADLINE, || async {
        let (visible, _) = queue_depth(&sqs, &dlq_url).await;
        (visible == 1).then_some(())
    })
    .await;
    assert!(in_dlq.is_some(), "poison message never reached the DLQ");
    assert_eq!(
        inventory.count("poison-1"),
        3,
        "delivered maxReceiveCount times"
    );
    for i in 0..5 {
        assert_eq!(
            inventory.count(&format!("good-{i}")),
            1,
            "successes deleted, not redelivered"
        );
    }
    let (visible, in_flight) = queue_depth(&sqs, &url).await;
    assert_eq!((visible, in_flight), (0, 0), "source queue drained");

    let dlq_msg = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    let (env, _) = Envelope::decode(dlq_msg[0].body().unwrap()).unwrap();
    assert_eq!(env.order_id, "poison-1");
    local.shutdown();
}

#[tokio::test]
async fn sns_filter_policies_route_facts_and_duplicates_are_delivered_twice() {
    let saga = Recorder::default();
    let notification = Recorder::default();
    let local = start(
        "sns",
        &[
            ("OrderSagaFunction", Arc::new(saga.clone())),
            ("notification", Arc::new(notification.clone())),
        ],
        true,
    )
    .await;
    let sns = aws_sdk_sns::Client::new(&local.sdk);
    let topic = local.stack.topic_arn("OrderEventsTopic").to_owned();
    let publish = |kind: MessageType, order: &str| {
        let sns = sns.clone();
        let topic = topic.clone();
        let body = Envelope::new(kind, order, json!({})).to_json();
        async move {
            sns.publish()
                .topic_arn(topic)
                .message(body)
                .message_attributes(
                    "eventType",
                    aws_sdk_sns::types::MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(kind.as_str())
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
    };
    publish(MessageType::InventoryReserved, "o-1").await;
    publish(MessageType::OrderPlaced, "o-2").await;

    let routed = eventually(DEADLINE, || async {
        (saga.count("o-1") == 2 && notification.count("o-2") == 2).then_some(())
    })
    .await;
    assert!(
        routed.is_some(),
        "saga saw {:?}, notification saw {:?}",
        saga.seen.lock().unwrap(),
        notification.seen.lock().unwrap()
    );
    // Give a wrong routing a chance to show up before asserting its absence.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        saga.kinds(),
        vec!["InventoryReserved"; 2],
        "saga only gets its facts"
    );
    assert_eq!(
        notification.kinds(),
        vec!["OrderPlaced"; 2],
        "notification only gets its facts"
    );
    local.shutdown();
}

/// Records stream records; fails the first delivery of each sequence number once.
#[derive(Default, Clone)]
struct StreamRecorder {
    images: Arc<Mutex<Vec<serde_json::Value>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
}

#[async_trait::async_trait]
impl Function for StreamRecorder {
    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        let seq = record.change.sequence_number.clone().unwrap_or_default();
        let n = {
            let mut a = self.attempts.lock().unwrap();
            let n = a.entry(seq).or_default();
            *n += 1;
            *n
        };
        let image: serde_json::Value =
            serde_dynamo::from_item(record.change.new_image.clone()).unwrap();
        if image["failOnce"] == true && n == 1 {
            return Err(MessageError::Transient("first try fails".into()));
        }
        self.images.lock().unwrap().push(json!({
            "eventName": record.event_name,
            "image": image,
            "source": record.event_source_arn,
        }));
        Ok(())
    }
}

#[tokio::test]
async fn stream_poller_delivers_new_images_and_retries_failures() {
    let recorder = StreamRecorder::default();
    let local = start(
        "stream",
        &[("OrderSagaFunction", Arc::new(recorder.clone()))],
        false,
    )
    .await;
    let ddb = aws_sdk_dynamodb::Client::new(&local.sdk);
    let table = local.stack.table_name("OrdersTable").to_owned();
    for (id, fail_once) in [("o-1", true), ("o-2", false)] {
        let item = json!({
            "pk": format!("ORDER#{id}"), "sk": "ORDER", "status": "PENDING",
            "total": {"amount": 1900, "currency": "EUR"}, "failOnce": fail_once,
        });
        put_json(&ddb, &table, item).await;
    }

    let got = eventually(DEADLINE, || async {
        let images = recorder.images.lock().unwrap().clone();
        (images.len() >= 2).then_some(images)
    })
    .await
    .expect("both records delivered");
    assert_eq!(got[0]["eventName"], "INSERT");
    assert_eq!(
        got[0]["image"]["pk"], "ORDER#o-1",
        "order kept across the retry"
    );
    assert_eq!(got[0]["image"]["total"]["amount"], 1900);
    assert_eq!(got[1]["image"]["pk"], "ORDER#o-2");
    assert_eq!(
        got[0]["source"],
        local.stack.table("OrdersTable").stream_arn.clone().unwrap()
    );
    let attempts = recorder.attempts.lock().unwrap().clone();
    let mut counts: Vec<u32> = attempts.values().copied().collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![1, 2],
        "the failing record was retried once, the other delivered once"
    );
    local.shutdown();
}

#[tokio::test]
async fn sqs_events_built_from_emulator_messages_match_lambdas_shape() {
    let sdk = testing::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = testing::unique_prefix("shape");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let body = Envelope::new(MessageType::CapturePayment, "o-9", json!({"amount": 1})).to_json();
    sqs.send_message()
        .queue_url(&url)
        .message_body(&body)
        .message_attributes(
            "type",
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("CapturePayment")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let msgs = eventually(DEADLINE, || async {
        let m = dishpatch_local::esm::receive_batch(&sqs, &url, 10)
            .await
            .unwrap();
        (!m.is_empty()).then_some(m)
    })
    .await
    .unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let ev = dishpatch_local::esm::sqs_event(&msgs, &arn, "us-east-1", 0);
    let r = &ev["Records"][0];
    assert_eq!(r["eventSource"], "aws:sqs");
    assert_eq!(r["eventSourceARN"], arn.as_str());
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["body"], body.as_str());
    assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
    assert!(r["attributes"]["SentTimestamp"].is_string());
    assert!(r["md5OfBody"].is_string());
    assert!(r["receiptHandle"].is_string());
    assert_eq!(
        r["messageAttributes"]["type"]["stringValue"],
        "CapturePayment"
    );
    assert_eq!(r["messageAttributes"]["type"]["dataType"], "String");
    let parsed: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(ev).unwrap();
    assert_eq!(parsed.records.len(), 1);
}

#[tokio::test]
async fn shuffled_deliveries_scramble_and_duplicate_every_message() {
    let inventory = Recorder::default();
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("shuffle"))
            .endpoint(testing::moto())
            .seed(false)
            .retry_delay(Duration::ZERO)
            .duplicate_deliveries(true)
            .shuffle_deliveries(true)
            .shuffle_seed(42)
            .override_function("InventoryFunction", Arc::new(inventory.clone())),
    )
    .await
    .expect("local stack starts");
    assert_eq!(local.shuffle_seed, Some(42));
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let url = local.stack.queue_url("InventoryQueue").to_owned();
    let sent: Vec<String> = (0..20).map(|i| format!("o-{i:02}")).collect();
    send_reserves(&sqs, &url, &sent).await;

    let all_twice = eventually(DEADLINE, || async {
        sent.iter().all(|o| inventory.count(o) == 2).then_some(())
    })
    .await;
    assert!(all_twice.is_some(), "{:?}", inventory.seen.lock().unwrap());
    // Then the queue drains: every message was deleted once both copies succeeded.
    let drained = eventually(DEADLINE, || async {
        (queue_depth(&sqs, &url).await == (0, 0)).then_some(())
    })
    .await;
    assert!(drained.is_some(), "queue not drained");
    let seen: Vec<String> = inventory
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| o.clone())
        .collect();
    assert_eq!(seen.len(), 40, "exactly two copies each: {seen:?}");
    let mut firsts: Vec<&String> = Vec::new();
    for o in &seen {
        if !firsts.contains(&o) {
            firsts.push(o);
        }
    }
    let in_order: Vec<&String> = sent.iter().collect();
    assert_ne!(firsts, in_order, "delivered out of order: {seen:?}");
    // Duplicates are not simply back to back: some copy arrives after other messages.
    let apart = sent.iter().any(|o| {
        let at: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| *s == o)
            .map(|(i, _)| i)
            .collect();
        at[1] - at[0] > 1
    });
    assert!(apart, "{seen:?}");
    local.shutdown();
}

/// Records every message and the highest `ApproximateReceiveCount` it saw, a little
/// slowly, like a real handler.
#[derive(Default, Clone)]
struct SlowRecorder {
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

#[async_trait::async_trait]
impl Function for SlowRecorder {
    async fn message(&self, envelope: Envelope, _kind: MessageType) -> Result<(), MessageError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self
            .seen
            .lock()
            .unwrap()
            .entry(envelope.order_id.clone())
            .or_default() += 1;
        Ok(())
    }
}

/// A backlog of duplicated, shuffled messages: the poller takes no more from the queue
/// than a batch per poller. (It used to receive a batch every turn while a duplicate
/// needs two deliveries, so a busy poller held more and more received messages, until
/// some outlived the visibility timeout and were received again, each receive counting
/// toward the DLQ's maxReceiveCount: under load, saga facts were dead-lettered.)
#[tokio::test]
async fn a_busy_shuffling_poller_holds_no_more_than_a_batch_per_poller() {
    for pollers in [1usize, 3] {
        let inventory = SlowRecorder::default();
        let mut opts = LocalStackOptions::new(testing::unique_prefix("backlog"))
            .endpoint(testing::moto())
            .seed(false)
            .retry_delay(Duration::ZERO)
            .duplicate_deliveries(true)
            .shuffle_deliveries(true)
            .shuffle_seed(7)
            .override_function("InventoryFunction", Arc::new(inventory.clone()));
        opts.esm.sqs_concurrency = pollers;
        let local = LocalStack::start(opts).await.expect("local stack starts");
        let sqs = aws_sdk_sqs::Client::new(&local.sdk);
        let url = local.stack.queue_url("InventoryQueue").to_owned();
        let sent: Vec<String> = (0..120).map(|i| format!("o-{i:03}")).collect();
        send_reserves(&sqs, &url, &sent).await;
        let mut most_in_flight = 0;
        let started = std::time::Instant::now();
        loop {
            let (visible, in_flight) = queue_depth(&sqs, &url).await;
            most_in_flight = most_in_flight.max(in_flight);
            if (visible, in_flight) == (0, 0) || started.elapsed() > 2 * DEADLINE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = inventory.seen.lock().unwrap().clone();
        assert!(
            sent.iter().all(|o| seen.get(o) == Some(&2)),
            "every message delivered exactly twice ({pollers} pollers): {seen:?}"
        );
        assert!(
            most_in_flight <= 10 * pollers as i64,
            "{most_in_flight} messages in flight with {pollers} poller(s) of batches of 10"
        );
        local.shutdown();
    }
}

/// With a parallelization factor the stream's records are handled in lanes by item
/// key, several batches at once: every record arrives, one item's records in the
/// order they were written, a failing record retried in its lane.
#[tokio::test]
async fn a_parallelized_stream_keeps_each_items_records_in_order() {
    let recorder = StreamRecorder::default();
    let mut opts = LocalStackOptions::new(testing::unique_prefix("lanes"))
        .endpoint(testing::moto())
        .seed(false)
        .retry_delay(Duration::ZERO)
        .override_function("OrderSagaFunction", Arc::new(recorder.clone()));
    opts.esm.stream_parallelization = 4;
    let local = LocalStack::start(opts).await.expect("local stack starts");
    let ddb = aws_sdk_dynamodb::Client::new(&local.sdk);
    let table = local.stack.table_name("OrdersTable").to_owned();
    let (items, versions) = (8, 5);
    for v in 0..versions {
        for o in 0..items {
            let item = json!({
                "pk": format!("ORDER#o-{o}"), "sk": "ORDER", "version": v,
                "failOnce": o == 3 && v == 2,
            });
            put_json(&ddb, &table, item).await;
        }
    }
    let got = eventually(DEADLINE, || async {
        let images = recorder.images.lock().unwrap().clone();
        (images.len() >= items * versions).then_some(images)
    })
    .await
    .expect("every record delivered");
    assert_eq!(got.len(), items * versions, "each once: {got:?}");
    for o in 0..items {
        let pk = format!("ORDER#o-{o}");
        let seen: Vec<i64> = got
            .iter()
            .filter(|g| g["image"]["pk"] == pk.as_str())
            .map(|g| g["image"]["version"].as_i64().unwrap())
            .collect();
        assert_eq!(seen, (0..versions as i64).collect::<Vec<_>>(), "{pk}");
    }
    local.shutdown();
}
