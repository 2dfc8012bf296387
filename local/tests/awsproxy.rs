//! The AWS proxy against a real moto server: call counts for a known sequence of SDK
//! calls, DynamoDB write and read units for known item sizes, injected faults as the real
//! SDK sees them (and retries them), and the local stack's wiring.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_sns::operation::publish::builders::PublishFluentBuilder;
use aws_sdk_sqs::operation::send_message::builders::SendMessageFluentBuilder;
use dishpatch::aws::dynamo;
use dishpatch::keys;
use dishpatch_local::awsproxy::{AwsFaults, AwsProxy, AwsProxyConfig, Caller, FaultKind};
use dishpatch_local::testing::{self, eventually};
use dishpatch_local::{tokens, LocalStack, LocalStackOptions};

const DEADLINE: Duration = Duration::from_secs(30);

/// A table keyed by `pk`, a queue and a topic, created directly on the emulator.
struct Fixture {
    direct: SdkConfig,
    table: String,
    queue_url: String,
    topic_arn: String,
}

async fn fixture(name: &str) -> Fixture {
    let direct = testing::sdk().await;
    let prefix = testing::unique_prefix(name);
    let table = format!("{prefix}-items");
    testing::create_pk_table(&aws_sdk_dynamodb::Client::new(&direct), &table)
        .await
        .expect("table");
    let queue_url = aws_sdk_sqs::Client::new(&direct)
        .create_queue()
        .queue_name(format!("{prefix}-q"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .unwrap();
    let topic_arn = aws_sdk_sns::Client::new(&direct)
        .create_topic()
        .name(format!("{prefix}-t"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .unwrap();
    Fixture {
        direct,
        table,
        queue_url,
        topic_arn,
    }
}

impl Fixture {
    fn put(&self, ddb: &aws_sdk_dynamodb::Client, pk: &str) -> PutItemFluentBuilder {
        ddb.put_item().table_name(&self.table).item("pk", s(pk))
    }

    fn get(&self, ddb: &aws_sdk_dynamodb::Client, pk: &str) -> GetItemFluentBuilder {
        ddb.get_item().table_name(&self.table).key("pk", s(pk))
    }

    /// Whether the item `pk` is in the table, read straight from the emulator.
    async fn stored(&self, pk: &str) -> bool {
        let ddb = aws_sdk_dynamodb::Client::new(&self.direct);
        let out = self.get(&ddb, pk).consistent_read(true).send().await;
        out.unwrap().item.is_some()
    }

    fn send(&self, sqs: &aws_sdk_sqs::Client, body: &str) -> SendMessageFluentBuilder {
        sqs.send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
    }

    fn publish(&self, sns: &aws_sdk_sns::Client, message: &str) -> PublishFluentBuilder {
        sns.publish().topic_arn(&self.topic_arn).message(message)
    }
}

/// The SDK configuration of code behind the proxy, with quick retries (three attempts,
/// as by default) so the tests do not wait out the default backoff.
fn through(proxy: &AwsProxy, direct: &SdkConfig) -> SdkConfig {
    proxy
        .function_sdk(direct)
        .to_builder()
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(5)))
        .build()
}

/// Clients of code behind the proxy.
struct Clients {
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
}

/// A proxy with the default configuration, and clients behind it.
async fn proxied(f: &Fixture) -> (AwsProxy, Clients) {
    let proxy = AwsProxy::start(testing::moto(), AwsProxyConfig::default())
        .await
        .unwrap();
    let sdk = through(&proxy, &f.direct);
    let clients = Clients {
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        sns: aws_sdk_sns::Client::new(&sdk),
    };
    (proxy, clients)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test]
async fn counts_every_call_and_meters_units_from_item_sizes() {
    let f = fixture("proxy-counts").await;
    let (proxy, Clients { ddb, sqs, sns }) = proxied(&f).await;

    // "pk"(2) + "k1"(2) + "data"(4) + 1500 = 1508 bytes: 2 write units, 1 read unit.
    f.put(&ddb, "k1")
        .item("data", s(&"x".repeat(1500)))
        .send()
        .await
        .unwrap();
    f.get(&ddb, "k1")
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    f.get(&ddb, "k1").send().await.unwrap();
    // Grows to 2 + 2 + 4 + 3000 = 3008 bytes: 3 units (the larger of before and after).
    ddb.update_item()
        .table_name(&f.table)
        .key("pk", s("k1"))
        .update_expression("SET #d = :d")
        .expression_attribute_names("#d", "data")
        .expression_attribute_values(":d", s(&"y".repeat(3000)))
        .send()
        .await
        .unwrap();
    // Deleting the 3008-byte item: 3 units.
    ddb.delete_item()
        .table_name(&f.table)
        .key("pk", s("k1"))
        .send()
        .await
        .unwrap();
    // A failed condition on a missing item still costs the minimum, 1 unit.
    let failed = f
        .put(&ddb, "k1")
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Some("ConditionalCheckFailedException"));
    // Two small puts in a transaction: 2 x 2 units.
    let put = |k: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&f.table)
                    .item("pk", s(k))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    ddb.transact_write_items()
        .transact_items(put("k2"))
        .transact_items(put("k3"))
        .send()
        .await
        .unwrap();
    for body in ["one", "two"] {
        f.send(&sqs, body).send().await.unwrap();
    }
    let got = sqs
        .receive_message()
        .queue_url(&f.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(!got.messages().is_empty());
    f.publish(&sns, "hello").send().await.unwrap();

    let c = proxy.counts();
    let fc = |svc, action| c.count(Caller::Function, svc, action);
    assert_eq!(fc("dynamodb", "PutItem"), 2);
    assert_eq!(fc("dynamodb", "GetItem"), 2);
    assert_eq!(fc("dynamodb", "UpdateItem"), 1);
    assert_eq!(fc("dynamodb", "DeleteItem"), 1);
    assert_eq!(fc("dynamodb", "TransactWriteItems"), 1);
    assert_eq!(fc("sqs", "SendMessage"), 2);
    assert_eq!(fc("sqs", "ReceiveMessage"), 1);
    assert_eq!(fc("sns", "Publish"), 1);
    // Nothing else: the proxy's own item reads are not counted.
    assert_eq!(c.total(Caller::Function), 11, "{:?}", c.calls);
    assert_eq!(c.total(Caller::EventSource), 0);
    assert_eq!(c.dynamodb.write_units(), (2 + 3 + 3 + 1 + 4) as f64);
    assert_eq!(c.dynamodb.read_units(), 1.5);
    assert_eq!(c.dynamodb.index_write_units(), 0.0);
    let by_action = |a: &str| c.dynamodb.writes_by_action.get(a).copied();
    assert_eq!(by_action("PutItem"), Some(3.0));
    assert_eq!(by_action("UpdateItem"), Some(3.0));
    assert_eq!(by_action("DeleteItem"), Some(3.0));
    assert_eq!(by_action("TransactWriteItems"), Some(4.0));
    assert!(c.request_bytes > 4500, "{}", c.request_bytes);

    proxy.reset();
    assert_eq!(proxy.counts().total(Caller::Function), 0);
}

#[tokio::test]
async fn throttled_calls_are_retried_by_the_sdk_until_they_succeed() {
    let f = fixture("proxy-retry").await;
    let (proxy, Clients { ddb, sqs, sns }) = proxied(&f).await;

    let third_attempt = "the third attempt gets through";
    proxy.fault_next(FaultKind::Throttle, 2);
    f.put(&ddb, "retried").send().await.expect(third_attempt);
    proxy.fault_next(FaultKind::Throttle, 2);
    f.send(&sqs, "m").send().await.expect(third_attempt);
    proxy.fault_next(FaultKind::Error, 2);
    f.publish(&sns, "m").send().await.expect(third_attempt);

    let c = proxy.counts();
    assert_eq!(c.count(Caller::Function, "dynamodb", "PutItem"), 3);
    assert_eq!(c.count(Caller::Function, "sqs", "SendMessage"), 3);
    assert_eq!(c.count(Caller::Function, "sns", "Publish"), 3);
    assert_eq!(c.faults_of(FaultKind::Throttle), 4);
    assert_eq!(c.faults_of(FaultKind::Error), 2);
    // Only the successful attempt was applied and metered (1 unit).
    assert_eq!(c.dynamodb.write_units(), 1.0);
    assert!(f.stored("retried").await);
}

#[tokio::test]
async fn each_fault_reaches_the_sdk_as_the_service_error() {
    let f = fixture("proxy-kinds").await;
    let (proxy, Clients { ddb, sqs, sns }) = proxied(&f).await;

    // Three attempts (the SDK's default), all faulted: the error surfaces.
    proxy.fault_next(FaultKind::Throttle, 3);
    let e = f.put(&ddb, "never").send().await.unwrap_err();
    let code = e.code().unwrap_or_default().to_owned();
    assert!(
        code == "ProvisionedThroughputExceededException" || code == "ThrottlingException",
        "{code}"
    );
    proxy.fault_next(FaultKind::Error, 3);
    let e = f.put(&ddb, "never").send().await.unwrap_err();
    assert_eq!(e.code(), Some("InternalServerError"));
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(500));
    let e = e.into_service_error();
    assert!(e.is_internal_server_error(), "{e:?}");
    assert_eq!(
        proxy
            .counts()
            .count(Caller::Function, "dynamodb", "PutItem"),
        6
    );
    assert!(!f.stored("never").await, "a rejected call is never applied");

    // The error code the SDK reads for a send and a publish, after its retries.
    let sqs_error = || async {
        let e = f.send(&sqs, "m").send().await.unwrap_err();
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&e).map(str::to_owned)
    };
    let sns_error = || async {
        let e = f.publish(&sns, "m").send().await.unwrap_err();
        aws_sdk_sns::error::ProvideErrorMetadata::code(&e).map(str::to_owned)
    };
    for (kind, sqs_code, sns_code) in [
        (FaultKind::Throttle, "RequestThrottled", "Throttling"),
        (FaultKind::Error, "InternalError", "InternalError"),
    ] {
        proxy.fault_next(kind, 3);
        assert_eq!(sqs_error().await.as_deref(), Some(sqs_code), "{kind:?}");
        proxy.fault_next(kind, 3);
        assert_eq!(sns_error().await.as_deref(), Some(sns_code), "{kind:?}");
    }
    let c = proxy.counts();
    assert_eq!(c.count(Caller::Function, "sqs", "SendMessage"), 6);
    assert_eq!(c.count(Caller::Function, "sns", "Publish"), 6);

    // A lost response: the write happened, the SDK retries it, and the retry meets its
    // own condition. This is what a conditional writer must be ready for.
    proxy.fault_next(FaultKind::LostResponse, 1);
    let e = f
        .put(&ddb, "once")
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ConditionalCheckFailedException"));
    assert!(f.stored("once").await, "the first attempt was applied");
    assert_eq!(proxy.counts().faults_of(FaultKind::LostResponse), 1);
}

#[tokio::test]
async fn fault_rates_are_drawn_from_the_seed() {
    let f = fixture("proxy-rates").await;
    let proxy = AwsProxy::start(
        testing::moto(),
        AwsProxyConfig::default()
            .meter_units(false)
            .faults(AwsFaults {
                throttle_rate: 0.3,
                error_rate: 0.2,
                seed: 7,
                ..Default::default()
            }),
    )
    .await
    .unwrap();
    let sdk = proxy
        .function_sdk(&f.direct)
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Which of 200 calls succeed.
    let outcomes = || async {
        let mut ok = Vec::new();
        for _ in 0..200 {
            let call = sqs.get_queue_attributes().queue_url(&f.queue_url);
            ok.push(call.send().await.is_ok());
        }
        ok
    };
    let first = outcomes().await;
    let c = proxy.counts();
    let throttled = c.faults_of(FaultKind::Throttle);
    let errors = c.faults_of(FaultKind::Error);
    assert_eq!(
        first.iter().filter(|ok| !**ok).count() as u64,
        throttled + errors
    );
    assert!((40..=80).contains(&throttled), "{throttled} of 200 at 0.3");
    assert!((20..=60).contains(&errors), "{errors} of 200 at 0.2");

    // The same seed replays the same decisions.
    proxy.set_faults(proxy.faults());
    proxy.reset();
    assert_eq!(first, outcomes().await);
}

/// One seeded menu item, paid from the wallet.
fn order_body() -> serde_json::Value {
    serde_json::json!({
        "restaurantId": "r-1",
        "items": [{"menuItemId": "m-3", "quantity": 1}],
        "deliveryAddress": {"line1": "1 Rua Augusta", "city": "Lisbon", "postcode": "1100-048", "country": "PT"},
        "paymentMethod": "WALLET"
    })
}

#[tokio::test]
async fn the_local_stack_routes_functions_and_pollers_through_the_proxy() {
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("proxy-stack"))
            .endpoint(testing::moto())
            .psp(false)
            .aws_proxy(AwsProxyConfig::default()),
    )
    .await
    .unwrap();
    let proxy = local.aws_proxy().expect("the proxy is on");
    let token = tokens::mint("alice", &["CUSTOMER"]).unwrap();
    let placed = reqwest::Client::new()
        .post(format!("{}/v1/orders", local.url()))
        .bearer_auth(token)
        .json(&order_body())
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status().as_u16(), 201);
    // The order write, then the relay's publish, then the saga's step command.
    let c = eventually(DEADLINE, || async {
        let c = proxy.counts();
        (c.count(Caller::Function, "sns", "Publish") > 0
            && c.count(Caller::Function, "sqs", "SendMessage") > 0)
            .then_some(c)
    })
    .await
    .expect("the saga's calls go through the proxy");
    assert!(
        c.count(Caller::Function, "dynamodb", "PutItem") > 0,
        "{:?}",
        c.calls
    );
    assert!(c.count(Caller::EventSource, "sqs", "ReceiveMessage") > 0);
    assert!(c.count(Caller::EventSource, "dynamodbstreams", "GetRecords") > 0);
    assert!(c.dynamodb.write_units() >= 1.0);
    // Provisioning, seeding and the alert tap talked to the emulator directly.
    for k in c.calls.keys() {
        assert!(
            !k.action.starts_with("Create") && !k.action.starts_with("Subscribe"),
            "{k:?} went through the proxy"
        );
    }
    // The checker too: a scan adds no call.
    let before = proxy.counts().count(Caller::Function, "dynamodb", "Scan");
    local
        .checker()
        .check(&Default::default())
        .await
        .expect("the checker reads the tables");
    assert_eq!(
        proxy.counts().count(Caller::Function, "dynamodb", "Scan"),
        before
    );
    local.shutdown();
}

/// Reads an order's status and courier straight from the table (not through the proxy).
async fn order_state(local: &LocalStack, id: &str) -> Option<(String, Option<String>)> {
    let out = aws_sdk_dynamodb::Client::new(&local.sdk)
        .get_item()
        .table_name(local.stack.table_name("OrdersTable"))
        .set_key(Some(dynamo::key(keys::order_pk(id), keys::ORDER_SK)))
        .consistent_read(true)
        .send()
        .await
        .ok()?;
    let item = out.item?;
    let status = item.get("status")?.as_s().ok()?.clone();
    let courier = item
        .get("saga")
        .and_then(|s| s.as_m().ok())
        .and_then(|m| m.get("courierId"))
        .and_then(|c| c.as_s().ok())
        .cloned();
    Some((status, courier))
}

#[tokio::test]
async fn orders_are_delivered_through_throttling_errors_and_lost_responses() {
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("proxy-faults"))
            .endpoint(testing::moto())
            .psp(false)
            .retry_delay(Duration::from_millis(500))
            .aws_proxy(
                AwsProxyConfig::default()
                    .meter_units(false)
                    .faults(AwsFaults {
                        throttle_rate: 0.05,
                        error_rate: 0.02,
                        lost_response_rate: 0.02,
                        seed: 42,
                    }),
            ),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let body = order_body();
    let mut ids = Vec::new();
    for i in 0..2 {
        // The API may answer 5xx when its own calls fail: the client retries with the
        // same idempotency key, as a real client would.
        let key = format!("proxy-faults-{i}");
        let id = eventually(DEADLINE, || async {
            let r = http
                .post(format!("{}/v1/orders", local.url()))
                .bearer_auth(tokens::mint("alice", &["CUSTOMER"]).unwrap())
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await
                .ok()?;
            if r.status().as_u16() != 201 {
                return None;
            }
            let v: serde_json::Value = r.json().await.ok()?;
            v["orderId"].as_str().map(str::to_owned)
        })
        .await
        .expect("the order is accepted");
        ids.push(id);
    }
    for id in &ids {
        let courier = eventually(Duration::from_secs(60), || async {
            match order_state(&local, id).await? {
                (s, Some(c)) if s == "DISPATCHED" => Some(c),
                _ => None,
            }
        })
        .await
        .unwrap_or_else(|| panic!("{id} never DISPATCHED"));
        eventually(DEADLINE, || async {
            let r = http
                .post(format!("{}/v1/deliveries/{id}/complete", local.url()))
                .bearer_auth(tokens::mint(&courier, &["COURIER"]).unwrap())
                .send()
                .await
                .ok()?;
            (r.status().as_u16() == 200).then_some(())
        })
        .await
        .expect("the courier completes the delivery");
        eventually(Duration::from_secs(60), || async {
            (order_state(&local, id).await?.0 == "DELIVERED").then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{id} never DELIVERED"));
    }
    let counts = local.aws_proxy().unwrap().counts();
    assert!(
        counts.faults_of(FaultKind::Throttle) + counts.faults_of(FaultKind::Error) > 0,
        "faults were injected: {:?}",
        counts.faults
    );
    let report = local
        .checker()
        .check_at_quiescence(
            &dishpatch_local::invariants::CheckOptions::quiescent(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(report.is_clean(), "{report}");
    local.shutdown();
}
