//! Test support for every crate's tests (the `testing` feature; no deployed binary
//! carries it).
//!
//! * Handler tests (no I/O): an in-memory order store, a recording publisher, and
//!   Lambda events (HTTP API v2, SQS) handed to a [`Function`] as the runtime would.
//! * Emulator tests: [`emulator`] (one moto per test binary, serving one request at a
//!   time), tables with the template's key schema, and topics read back through a
//!   subscribed queue ([`Subscription`]).

use crate::aws::publisher::Publisher;
use crate::envelope::{Envelope, MessageType};
use crate::error::StoreError;
use crate::order::Order;
use crate::orders::{OrderStore, Page};
use crate::outbox::{Delivery, Outgoing};
use crate::runtime::{Function, MessageError};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use dishpatch_core::fixtures::sample_order;

#[derive(Default)]
pub struct InMemoryOrderStore {
    pub orders: Mutex<Vec<Order>>,
    /// Every outbox written, in order.
    pub outbox: Mutex<Vec<Outgoing>>,
}

impl InMemoryOrderStore {
    /// The types of every message written, in order.
    pub fn kinds(&self) -> Vec<MessageType> {
        let outbox = self.outbox.lock().unwrap();
        outbox.iter().map(|m| m.envelope.kind).collect()
    }

    /// The first message of type `kind` written.
    pub fn first(&self, kind: MessageType) -> Option<Outgoing> {
        let outbox = self.outbox.lock().unwrap();
        outbox.iter().find(|m| m.envelope.kind == kind).cloned()
    }
}

#[async_trait::async_trait]
impl OrderStore for InMemoryOrderStore {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self
            .orders
            .lock()
            .unwrap()
            .iter()
            .find(|o| o.order_id == order_id)
            .cloned())
    }

    async fn save(
        &self,
        order: &Order,
        expected: Option<u64>,
        outbox: &[Outgoing],
    ) -> Result<(), StoreError> {
        let mut orders = self.orders.lock().unwrap();
        let existing = orders.iter().position(|o| o.order_id == order.order_id);
        match (existing, expected) {
            (None, None) => orders.push(order.clone()),
            (Some(i), Some(v)) if orders[i].version == v => orders[i] = order.clone(),
            _ => return Err(StoreError::Conflict("version".into())),
        }
        self.outbox.lock().unwrap().extend_from_slice(outbox);
        Ok(())
    }

    async fn overdue(&self, before: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let orders = self.orders.lock().unwrap();
        let mut due: Vec<&Order> = orders
            .iter()
            .filter(|o| o.deadline.as_deref().is_some_and(|d| d < before))
            .collect();
        due.sort_by(|a, b| a.deadline.cmp(&b.deadline));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|o| o.order_id.clone())
            .collect())
    }

    async fn list_for_customer(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let mut mine: Vec<Order> = self
            .orders
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.customer_id == customer_id)
            .cloned()
            .collect();
        mine.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let start: usize = match page_token {
            None => 0,
            Some(t) => t
                .parse()
                .map_err(|_| StoreError::Corrupt("invalid page token".into()))?,
        };
        let end = (start + page_size as usize).min(mine.len());
        Ok(Page {
            orders: mine.get(start..end).unwrap_or_default().to_vec(),
            next_token: (end < mine.len()).then(|| end.to_string()),
        })
    }
}

/// Before each of its first `races` updates, another writer moves the order on (rewrites
/// it one version up), so that update's condition fails. New orders are written as asked.
pub struct RacingOrderStore {
    pub inner: std::sync::Arc<InMemoryOrderStore>,
    races: AtomicUsize,
    /// How many updates were tried.
    pub updates: AtomicUsize,
}

impl RacingOrderStore {
    pub fn new(inner: std::sync::Arc<InMemoryOrderStore>, races: usize) -> Self {
        RacingOrderStore {
            inner,
            races: AtomicUsize::new(races),
            updates: AtomicUsize::new(0),
        }
    }

    /// A store whose every update loses.
    pub fn contended(inner: std::sync::Arc<InMemoryOrderStore>) -> Self {
        RacingOrderStore::new(inner, usize::MAX)
    }

    async fn race(&self, order_id: &str) {
        let lost = (self.races).fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if lost.is_ok() {
            let mut theirs = self.inner.get(order_id).await.unwrap().unwrap();
            let read = theirs.version;
            theirs.version += 1;
            self.inner.save(&theirs, Some(read), &[]).await.unwrap();
        }
    }
}

#[async_trait::async_trait]
impl OrderStore for RacingOrderStore {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        self.inner.get(order_id).await
    }

    async fn save(
        &self,
        order: &Order,
        expected: Option<u64>,
        outbox: &[Outgoing],
    ) -> Result<(), StoreError> {
        if expected.is_some() {
            self.updates.fetch_add(1, SeqCst);
            self.race(&order.order_id).await;
        }
        self.inner.save(order, expected, outbox).await
    }

    async fn list_for_customer(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        (self.inner)
            .list_for_customer(customer_id, page_size, page_token)
            .await
    }

    async fn overdue(&self, before: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        self.inner.overdue(before, limit).await
    }
}

#[derive(Default)]
pub struct RecordingPublisher {
    /// Every envelope published, in order.
    pub sent: Mutex<Vec<Envelope>>,
    /// The same messages, each with how it was to be delivered.
    pub delivered: Mutex<Vec<Outgoing>>,
    /// When set, every publish fails (an SNS/SQS outage).
    pub fail: std::sync::atomic::AtomicBool,
}

impl RecordingPublisher {
    /// `(type name, data)` of everything published, in order.
    pub fn facts(&self) -> Vec<(String, Value)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.kind.to_string(), e.data.clone()))
            .collect()
    }
}

#[async_trait::async_trait]
impl Publisher for RecordingPublisher {
    async fn deliver(&self, envelope: &Envelope, delivery: &Delivery) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Aws("publish failed".into()));
        }
        self.sent.lock().unwrap().push(envelope.clone());
        self.delivered.lock().unwrap().push(Outgoing {
            envelope: envelope.clone(),
            delivery: delivery.clone(),
        });
        Ok(())
    }
}

/// An API Gateway HTTP API (payload v2) request, as the JWT authorizer passes it on.
/// `claims`: `None` for a public route; roles as API Gateway renders arrays, `[A B]`.
pub fn http_request(
    method: &str,
    route: &str,
    path: &str,
    path_params: &[(&str, &str)],
    query: &str,
    body: Option<&str>,
    claims: Option<(&str, &str)>,
) -> lambda_http::Request {
    let event = http_event(method, route, path, path_params, query, body, claims);
    lambda_http::request::from_str(&event.to_string()).expect("test request is a valid v2 event")
}

/// The raw Lambda event of [`http_request`], for [`call`] (the runtime's whole path).
/// `route` is the path template, e.g. `/v1/orders/{orderId}`.
pub fn http_event(
    method: &str,
    route: &str,
    path: &str,
    path_params: &[(&str, &str)],
    query: &str,
    body: Option<&str>,
    claims: Option<(&str, &str)>,
) -> Value {
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req-1", "routeKey": format!("{method} {route}"), "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    });
    if !path_params.is_empty() {
        event["pathParameters"] = path_params
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
    }
    if !query.is_empty() {
        event["queryStringParameters"] = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
    }
    if let Some(b) = body {
        event["body"] = serde_json::json!(b);
    }
    if let Some((sub, roles)) = claims {
        event["requestContext"]["authorizer"] =
            serde_json::json!({"jwt": {"claims": {"sub": sub, "roles": roles}, "scopes": null}});
    }
    event
}

/// `event` (from [`http_event`] with claims) with one more authorizer claim, a string as
/// API Gateway passes every claim: e.g. `restaurants`, `r-1,r-2`.
pub fn with_claim(mut event: Value, name: &str, value: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"][name] = Value::String(value.into());
    event
}

/// Invokes `f` with an HTTP event through the runtime; the status and JSON body.
pub async fn call(f: &dyn Function, event: Value) -> (u16, Value) {
    let resp = crate::runtime::invoke(f, event, Default::default())
        .await
        .expect("an HTTP invocation always answers");
    let body = resp["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (resp["statusCode"].as_u64().unwrap_or(0) as u16, body)
}

/// An SQS batch of one message, as Lambda delivers a command from its queue.
pub fn sqs_event(envelope: &Envelope) -> Value {
    serde_json::json!({"Records": [{
        "messageId": unique("msg"),
        "body": envelope.to_json(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1"
    }]})
}

/// Hands one message to `f` as the runtime does for a queue record.
pub async fn handle(f: &dyn Function, envelope: &Envelope) -> Result<(), MessageError> {
    f.message(envelope.clone(), envelope.kind).await
}

/// Hands `envelope` to `f` until it is handled, as SQS redelivers a message whose handler
/// failed transiently (contention); panics on any other error, or after 5 tries.
pub async fn deliver(f: &dyn Function, envelope: &Envelope) {
    for _ in 0..5 {
        match handle(f, envelope).await {
            Ok(()) => return,
            Err(MessageError::Transient(e)) => eprintln!("redelivering {}: {e}", envelope.kind),
            Err(e) => panic!("{} for {}: {e}", envelope.kind, envelope.order_id),
        }
    }
    panic!(
        "{} for {} was never handled",
        envelope.kind, envelope.order_id
    );
}

/// [`deliver`]s a forward command and its undo concurrently, as SQS may. Round `n` sends
/// the forward first when `n` is even, the undo first when odd, and the other `n / 2 * 2`
/// ms later: over the rounds their requests interleave every way, so either may find the
/// other's record.
pub async fn deliver_racing(f: &dyn Function, forward: &Envelope, undo: &Envelope, round: u64) {
    let (first, second) = if round.is_multiple_of(2) {
        (forward, undo)
    } else {
        (undo, forward)
    };
    tokio::join!(deliver(f, first), async {
        tokio::time::sleep(Duration::from_millis(round / 2 * 2)).await;
        deliver(f, second).await
    });
}

/// The status and JSON body of a response.
pub fn parts(resp: lambda_http::Response<lambda_http::Body>) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    (status, body)
}

/// An SDK configuration for the test emulator ([`dishpatch_emulator::endpoint`]: the
/// test command's, or one moto per test binary serving one request at a time).
pub async fn emulator() -> aws_config::SdkConfig {
    let creds =
        aws_credential_types::Credentials::new("test", "test", None, None, "dishpatch-tests");
    // The functions' own HTTPS client, so every emulator test goes through it.
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::tls::https_client(crate::tls::Roots::Bundled))
        .endpoint_url(dishpatch_emulator::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

/// A unique name for per-test resources on the shared emulator.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A global index of a test table: its name, its string hash and range keys, and what
/// it projects (all attributes, or keys only).
#[derive(Debug, Clone, Copy)]
pub struct Index<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub range: &'a str,
    pub keys_only: bool,
}

impl<'a> Index<'a> {
    /// An index projecting every attribute.
    pub fn all(name: &'a str, hash: &'a str, range: &'a str) -> Self {
        Index {
            name,
            hash,
            range,
            keys_only: false,
        }
    }

    /// An index projecting the keys only, as the template's read-then-fetch indexes do.
    pub fn keys_only(name: &'a str, hash: &'a str, range: &'a str) -> Self {
        Index {
            keys_only: true,
            ..Index::all(name, hash, range)
        }
    }
}

/// A new table with the template's key schema: string `pk` (hash) and `sk` (range), plus
/// one global index per name in `indexes` keyed like the template's (`gsi1` on
/// `gsi1pk`/`gsi1sk`), projecting ALL. On demand; its unique name.
pub async fn create_table(sdk: &aws_config::SdkConfig, prefix: &str, indexes: &[&str]) -> String {
    let keys: Vec<(String, String)> = indexes
        .iter()
        .map(|i| (format!("{i}pk"), format!("{i}sk")))
        .collect();
    let indexes: Vec<Index> = indexes
        .iter()
        .zip(&keys)
        .map(|(name, (pk, sk))| Index::all(name, pk, sk))
        .collect();
    create_table_with(sdk, prefix, &indexes).await
}

/// [`create_table`] with the given global indexes (as `template.yaml` defines a table's).
pub async fn create_table_with(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    indexes: &[Index<'_>],
) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key schema element")
    };
    // Each key attribute is defined once, however many indexes share it.
    let mut attributes = vec!["pk", "sk"];
    for index in indexes {
        for a in [index.hash, index.range] {
            if !attributes.contains(&a) {
                attributes.push(a);
            }
        }
    }
    let name = unique(prefix);
    let mut req = aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes.into_iter().map(attr).collect()))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    for index in indexes {
        let projection = match index.keys_only {
            true => ProjectionType::KeysOnly,
            false => ProjectionType::All,
        };
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash, KeyType::Hash))
                .key_schema(key(index.range, KeyType::Range))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .expect("index"),
        );
    }
    req.send().await.expect("create table");
    name
}

/// A new SNS topic; its ARN.
pub async fn create_topic(sdk: &aws_config::SdkConfig, prefix: &str) -> String {
    aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name(unique(prefix))
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic ARN")
}

/// A queue subscribed to a topic as the template subscribes them (SNS envelope, not raw
/// delivery, optionally with a filter policy): reads back what a function publishes.
pub struct Subscription {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// A new topic with a new queue subscribed to it: `(topic ARN, subscription)`.
pub async fn topic_with_subscription(
    sdk: &aws_config::SdkConfig,
    filter_policy: Option<&str>,
) -> (String, Subscription) {
    let topic = create_topic(sdk, "topic").await;
    let sub = subscribe(sdk, &topic, filter_policy).await;
    (topic, sub)
}

/// A new queue subscribed to `topic_arn`, with `filter_policy` (JSON) if given.
pub async fn subscribe(
    sdk: &aws_config::SdkConfig,
    topic_arn: &str,
    filter_policy: Option<&str>,
) -> Subscription {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("queue"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("queue ARN");
    let mut req = aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn);
    if let Some(policy) = filter_policy {
        req = req.attributes("FilterPolicy", policy);
    }
    req.send().await.expect("subscribe");
    Subscription { sqs, queue_url }
}

/// A fact read back from a subscription: the envelope and the `eventType` attribute the
/// topic's filter policies see.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFact {
    pub event_type: String,
    pub envelope: Envelope,
}

impl Subscription {
    /// The raw bodies (SNS notifications) of up to `want` messages, waiting at most
    /// `within`; each is deleted once read.
    pub async fn receive(&self, want: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut bodies = Vec::new();
        while bodies.len() < want && Instant::now() < deadline {
            // Short polls: a long poll would hold the one-request-at-a-time emulator.
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for m in messages {
                bodies.extend(m.body);
                if let Some(handle) = m.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }
        bodies
    }

    /// The next `want` facts (envelopes published to the topic), waiting up to 10 s;
    /// panics if fewer arrive or one's `eventType` attribute is not its type.
    pub async fn received_facts(&self, want: usize) -> Vec<ReceivedFact> {
        let bodies = self.receive(want, Duration::from_secs(10)).await;
        assert!(
            bodies.len() >= want,
            "only {} of {want} facts arrived: {bodies:?}",
            bodies.len()
        );
        bodies
            .iter()
            .map(|body| {
                let sns: Value = serde_json::from_str(body).expect("an SNS notification");
                let event_type = sns["MessageAttributes"]["eventType"]["Value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no eventType attribute: {body}"))
                    .to_owned();
                let (envelope, _) = Envelope::decode(body).expect("an envelope");
                assert_eq!(event_type, envelope.kind.as_str(), "eventType attribute");
                ReceivedFact {
                    event_type,
                    envelope,
                }
            })
            .collect()
    }

    /// Whatever arrives within half a second (to prove nothing more came). SNS to SQS
    /// delivery is synchronous in the emulator, so that is plenty.
    pub async fn drain(&self) -> Vec<String> {
        self.receive(usize::MAX, Duration::from_millis(500)).await
    }
}
