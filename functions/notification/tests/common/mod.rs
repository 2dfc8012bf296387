//! The AWS emulator for this test binary: `AWS_ENDPOINT_URL` if set, else moto started
//! once on a free port. The server exits with the test binary (its shell wrapper waits on
//! our stdin pipe, which closes when we exit).
//!
//! The moto we start serves one request at a time. moto's own server is threaded, and its
//! TransactWriteItems checks conditions and applies writes item by item (rolling back by
//! restoring a snapshot of whole tables), so two concurrent transactions can both pass a
//! condition, or one's rollback can erase the other's commit. DynamoDB applies each
//! transaction atomically; serving requests one at a time gives the emulator that property.

#![allow(dead_code)]

use aws_sdk_dynamodb::config::{Credentials, Region};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Emulator {
    endpoint: String,
    _server: Option<Mutex<Child>>,
}

/// moto's app under werkzeug, single-threaded (see the module comment).
const SERIAL_MOTO: &str = r#"
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
"#;

fn configured() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| match configured() {
        Some(endpoint) => Emulator {
            endpoint,
            _server: None,
        },
        None => serial_emulator_start(),
    })
}

/// An emulator that applies each request atomically, whatever `AWS_ENDPOINT_URL` says:
/// for tests that prove what concurrent conditional transactions do.
fn serial_emulator() -> &'static Emulator {
    static SERIAL: OnceLock<Emulator> = OnceLock::new();
    match configured() {
        Some(_) => SERIAL.get_or_init(serial_emulator_start),
        None => emulator(),
    }
}

fn serial_emulator_start() -> Emulator {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -c "$1" "$2" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg(python)
        .arg(SERIAL_MOTO)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start moto with {python}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not listen on {port} within 30 s"
        );
        if let Ok(Some(status)) = server.try_wait() {
            panic!("moto exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Emulator {
        endpoint: format!("http://127.0.0.1:{port}"),
        _server: Some(Mutex::new(server)),
    }
}

async fn sdk_for(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// The emulator every test uses.
pub async fn sdk() -> aws_config::SdkConfig {
    sdk_for(&emulator().endpoint).await
}

/// An emulator that applies each transaction atomically, as DynamoDB does.
pub async fn serial_sdk() -> aws_config::SdkConfig {
    sdk_for(&serial_emulator().endpoint).await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A table with the template's key schema: pk/sk strings, and optionally gsi1 (projection ALL).
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, with_gsi1: bool) -> String {
    use aws_sdk_dynamodb::types::*;
    let name = unique("table");
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let mut req = ddb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    if with_gsi1 {
        req = req
            .attribute_definitions(attr("gsi1pk"))
            .attribute_definitions(attr("gsi1sk"))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("gsi1")
                    .key_schema(key("gsi1pk", KeyType::Hash))
                    .key_schema(key("gsi1sk", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    req.send().await.expect("create table");
    name
}

/// A topic with a queue subscribed to it (SNS envelope, not raw), optionally filtered.
pub async fn topic_with_queue(
    sdk: &aws_config::SdkConfig,
    filter_policy: Option<&str>,
) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("topic"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = subscribe_queue(sdk, &topic, filter_policy).await;
    (topic, queue_url)
}

/// A new queue subscribed to `topic` (SNS envelope, not raw), optionally filtered; its URL.
pub async fn subscribe_queue(
    sdk: &aws_config::SdkConfig,
    topic: &str,
    filter_policy: Option<&str>,
) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("queue"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let mut sub = sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(queue_arn);
    if let Some(policy) = filter_policy {
        sub = sub.attributes("FilterPolicy", policy);
    }
    sub.send().await.unwrap();
    queue_url
}

/// Receives until `want` messages arrived or the deadline passed; returns the bodies.
pub async fn receive(
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
    want: usize,
    within: Duration,
) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = Instant::now() + within;
    let mut bodies = Vec::new();
    while bodies.len() < want && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            // Short polls: a long poll would hold the single-threaded emulator.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for m in messages {
            bodies.extend(m.body);
            if let Some(handle) = m.receipt_handle {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    bodies
}

/// Drains whatever arrives within a short window (to prove nothing more came). SNS to
/// SQS delivery is synchronous in the emulator, so a short window is plenty.
pub async fn drain(sdk: &aws_config::SdkConfig, queue_url: &str) -> Vec<String> {
    receive(sdk, queue_url, usize::MAX, Duration::from_millis(500)).await
}
