//! The AWS emulator for this test binary: `AWS_ENDPOINT_URL` if set, else a moto server
//! started once on a free port. The server exits with the test binary (its shell
//! wrapper waits on our stdin pipe, which closes when we exit).

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

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        match std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(endpoint) => Emulator {
                endpoint,
                _server: None,
            },
            None => start_moto(),
        }
    })
}

fn start_moto() -> Emulator {
    let moto = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/moto_server");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg(moto)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {moto}: {e}"));
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

pub async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&emulator().endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
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
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
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

/// Drains whatever arrives within a short window (to prove nothing more came).
pub async fn drain(sdk: &aws_config::SdkConfig, queue_url: &str) -> Vec<String> {
    receive(sdk, queue_url, usize::MAX, Duration::from_secs(2)).await
}
