//! In-memory adapters and request builders for fast handler tests (no I/O).
//! AWS semantics are proven against the emulator, not here.

use crate::aws::publisher::Publisher;
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::order::Order;
use crate::orders::{OrderStore, Page};
use std::sync::Mutex;

#[derive(Default)]
pub struct InMemoryOrderStore {
    pub orders: Mutex<Vec<Order>>,
    /// Every outbox written, in order.
    pub outbox: Mutex<Vec<Envelope>>,
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
        outbox: &[Envelope],
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

#[derive(Default)]
pub struct RecordingPublisher {
    pub sent: Mutex<Vec<Envelope>>,
    /// When set, every publish fails (an SNS/SQS outage).
    pub fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Publisher for RecordingPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Aws("publish failed".into()));
        }
        self.sent.lock().unwrap().push(envelope.clone());
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
    lambda_http::request::from_str(&event.to_string()).expect("test request is a valid v2 event")
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

/// The AWS emulator for tests: `AWS_ENDPOINT_URL` if the test command started one,
/// otherwise a moto server from the project venv, started once per test binary.
pub async fn emulator() -> aws_config::SdkConfig {
    static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let endpoint = ENDPOINT.get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => start_moto(),
    });
    let creds =
        aws_credential_types::Credentials::new("test", "test", None, None, "dishpatch-tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

fn start_moto() -> String {
    let venv = std::env::var("DISHPATCH_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bin = venv.join("bin/python");
    let serial = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/moto_serial.py");
    // Under a shell that kills moto when our end of its stdin closes, which the OS does
    // when the test process exits, even after a panic.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$1" "$2" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg(&bin)
        .arg(&serial)
        .arg(port.to_string())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run scripts/setup first",
                bin.display()
            )
        });
    static MOTO: std::sync::Mutex<Option<std::process::Child>> = std::sync::Mutex::new(None);
    *MOTO.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    format!("http://127.0.0.1:{port}")
}

/// A unique name for per-test resources on the shared emulator.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
