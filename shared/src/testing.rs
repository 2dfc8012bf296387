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
        Ok(self.orders.lock().unwrap().iter().find(|o| o.order_id == order_id).cloned())
    }

    async fn save(&self, order: &Order, expected: Option<u64>, outbox: &[Envelope]) -> Result<(), StoreError> {
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

    async fn list_for_customer(&self, customer_id: &str, page_size: u32, page_token: Option<&str>) -> Result<Page, StoreError> {
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
            Some(t) => t.parse().map_err(|_| StoreError::Corrupt("invalid page token".into()))?,
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
        event["pathParameters"] = path_params.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
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
        event["requestContext"]["authorizer"] = serde_json::json!({"jwt": {"claims": {"sub": sub, "roles": roles}, "scopes": null}});
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
