//! The spans the local stack recorded, by trace or by order, with the AWS calls the
//! proxy saw in the same traces: what the operator console draws as a waterfall.
//!
//! * `GET /_local/traces/{traceId}`: `{traceId, spans, awsCalls}` (the id as 32 hex
//!   digits or X-Ray's `1-…-…`);
//! * `GET /_local/traces?orderId={orderId}`: the same for every trace that touched the
//!   order (one, when its whole saga ran here).
//!
//! A span is `{traceId, spanId, parentSpanId, name, function, start, end, attributes}`
//! ([`RecordedSpan`]; times in epoch microseconds). The spans are the process's
//! ([`dishpatch::runtime::trace::recorded::store`]), which `dishpatch-local` fills;
//! AWS calls are listed when the stack runs its proxy.

use std::collections::BTreeSet;
use std::sync::Arc;

use dishpatch::runtime::trace::recorded::{store, RecordedSpan};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::awsproxy::{CallLog, TracedCall};

/// Where the endpoint is served, on the gateway's port.
pub const PREFIX: &str = "/_local/traces";

/// Answers the endpoint's requests.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    calls: Option<Arc<CallLog>>,
}

impl Traces {
    /// With the AWS calls of `calls` (the proxy's log), when there is one.
    pub fn new(calls: Option<Arc<CallLog>>) -> Traces {
        Traces { calls }
    }

    /// The spans of trace `trace_id` and the AWS calls made in it.
    pub fn trace(&self, trace_id: &str) -> Value {
        self.of(store().trace(trace_id))
    }

    /// The spans of every trace that touched `order_id`, and their AWS calls.
    pub fn order(&self, order_id: &str) -> Value {
        self.of(store().order(order_id))
    }

    fn of(&self, spans: Vec<RecordedSpan>) -> Value {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
        let calls: Vec<TracedCall> = self
            .calls
            .as_ref()
            .map(|log| log.snapshot())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.trace_id.as_deref().is_some_and(|t| ids.contains(t)))
            .collect();
        json!({
            "traceIds": ids,
            "spans": spans,
            "awsCalls": calls,
        })
    }

    /// The gateway's handler for [`PREFIX`].
    pub fn handler(self) -> crate::gateway::MountHandler {
        Arc::new(move |req, _peer| {
            let answer = self.respond(req.uri().path(), req.uri().query());
            Box::pin(async move { answer })
        })
    }

    /// The answer to a GET of `path` (with its query) under [`PREFIX`].
    pub fn respond(&self, path: &str, query: Option<&str>) -> hyper::Response<Full<Bytes>> {
        let rest = path.strip_prefix(PREFIX).unwrap_or(path).trim_matches('/');
        let order = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("orderId="));
        let (status, body) = match (rest, order) {
            ("", Some(order)) => (StatusCode::OK, self.order(order)),
            ("", None) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "GET /_local/traces/{traceId} or /_local/traces?orderId={orderId}"}),
            ),
            (id, _) if !id.contains('/') => (StatusCode::OK, self.trace(id)),
            _ => (StatusCode::NOT_FOUND, json!({"error": "no such path"})),
        };
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
    }
}
