//! The AWS emulator for these tests: `AWS_ENDPOINT_URL` if set, else a moto server this
//! test binary starts once. Tests that race writes use [`serial_sdk`] instead: a moto of
//! their own that handles one request at a time.
//!
//! Why: moto's threaded server applies a TransactWriteItems non-atomically (it checks
//! conditions and writes item by item while other requests run, and rolls a failed one
//! back by restoring a table snapshot over other requests' writes), so two racing
//! transactions can both "win" there, which DynamoDB (serializable transactions) never
//! allows. A server that runs requests one at a time is the faithful model; the clients
//! still race, since every read and write is its own request and they interleave freely.

#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin");

/// moto's own server, but with werkzeug's single-threaded loop.
const SERIAL_MOTO: &str = "import sys\n\
from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n\
run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), \
threaded=False, request_handler=MotoRequestHandler)\n";

struct Emulator {
    endpoint: String,
    /// Holds the pipe whose closing (when this process exits) stops the server.
    _server: Option<Mutex<Child>>,
}

fn shared() -> &'static Emulator {
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => Emulator {
            endpoint,
            _server: None,
        },
        _ => start(&format!("{VENV}/moto_server"), &["-H", "127.0.0.1", "-p"]),
    })
}

fn serial() -> &'static Emulator {
    static SERIAL: OnceLock<Emulator> = OnceLock::new();
    SERIAL.get_or_init(|| start(&format!("{VENV}/python"), &["-c", SERIAL_MOTO]))
}

/// Starts `program args.. PORT` on a free loopback port and waits until it listens.
fn start(program: &str, args: &[&str]) -> Emulator {
    assert!(
        std::path::Path::new(program).exists(),
        "{program} is missing: run scripts/setup"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The shell waits on our stdin pipe, which closes when this process exits, then
    // stops the server: a static is never dropped.
    let mut server = Command::new("sh")
        .arg("-c")
        .arg(r#""$@" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg("sh")
        .arg(program)
        .args(args)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{program} did not listen on {port} within 30 s"
        );
        if let Ok(Some(status)) = server.try_wait() {
            panic!("{program} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Emulator {
        endpoint: format!("http://127.0.0.1:{port}"),
        _server: Some(Mutex::new(server)),
    }
}

async fn sdk_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "emulator"))
        .load()
        .await
}

/// The emulator most tests use (`AWS_ENDPOINT_URL`, or our own moto).
pub async fn sdk() -> SdkConfig {
    sdk_for(&shared().endpoint).await
}

/// Our own one-request-at-a-time moto, for tests that race conditional writes.
pub async fn serial_sdk() -> SdkConfig {
    sdk_for(&serial().endpoint).await
}

/// A name no other test (or earlier run against a shared emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A table with the template's key schema (pk/sk strings), on demand.
pub async fn create_table(sdk: &SdkConfig, prefix: &str) -> String {
    let name = unique(prefix);
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
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    name
}

/// An order-events topic with a queue subscribed to it (not raw: as the template does),
/// to read back what a function publishes.
pub struct Events {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Events {
    pub async fn new(sdk: &SdkConfig) -> Events {
        let sns = aws_sdk_sns::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let topic_arn = sns
            .create_topic()
            .name(unique("events"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("events"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
            .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .unwrap();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Events {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// `(eventType attribute, envelope JSON)` of the next `count` messages, waiting up to 10 s.
    pub async fn take(&self, count: usize) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.len() < count {
            assert!(
                Instant::now() < deadline,
                "only {} of {count} events arrived: {out:?}",
                out.len()
            );
            let resp = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in resp.messages.unwrap_or_default() {
                let sns: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let kind = sns["MessageAttributes"]["eventType"]["Value"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let envelope: serde_json::Value =
                    serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
                out.push((kind, envelope));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

/// An SQS batch event of one command, as Lambda delivers it.
pub fn sqs_event(envelope_json: &str) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "messageId": unique("msg"),
        "body": envelope_json,
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1"
    }]})
}

/// An HTTP API (payload v2) event for `route`.
pub fn http_event(
    method: &str,
    route: &str,
    path: &str,
    params: serde_json::Value,
    claims: Option<(&str, &str)>,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut ctx = serde_json::json!({
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "requestId": unique("req"),
        "routeKey": route,
        "stage": "$default",
        "time": "22/Nov/2026:10:00:00 +0000",
        "timeEpoch": 1795341600000u64
    });
    if let Some((sub, roles)) = claims {
        ctx["authorizer"] =
            serde_json::json!({"jwt": {"claims": {"sub": sub, "roles": roles}, "scopes": null}});
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": ctx,
        "pathParameters": params,
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// Status and JSON body of an HTTP invocation's response.
pub fn http_result(resp: &serde_json::Value) -> (u16, serde_json::Value) {
    let body = serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap();
    (resp["statusCode"].as_u64().unwrap() as u16, body)
}
