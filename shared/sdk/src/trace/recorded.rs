//! Spans kept in memory, by trace: what the local stack shows of a trace
//! (`GET /_local/traces/{traceId}`) and what tests assert on. Installed as the span
//! exporter by [`crate::logging::Logs::record_spans`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde::Serialize;

/// A finished span, as the operator console draws it in a waterfall.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a trace's root.
    pub parent_span_id: Option<String>,
    /// `invoke`, `message` or `record` (the runtime's spans), or a handler's own.
    pub name: String,
    /// The function it ran in, as Lambda names it.
    pub function: Option<String>,
    /// Epoch microseconds.
    pub start: u64,
    pub end: u64,
    /// Its fields (`orderId`, `messageType`, `requestId`, ...), as strings.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// The most spans kept; the oldest traces go first. A soak must not grow the local
/// stack without bound.
const MAX_SPANS: usize = 100_000;

/// Every span recorded by this process, by trace id.
#[derive(Debug, Clone, Default)]
pub struct SpanStore(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    by_trace: HashMap<String, Vec<RecordedSpan>>,
    order: std::collections::VecDeque<String>,
    len: usize,
}

/// The process's store: spans come from one global subscriber.
pub fn store() -> &'static SpanStore {
    static STORE: OnceLock<SpanStore> = OnceLock::new();
    STORE.get_or_init(SpanStore::default)
}

impl SpanStore {
    /// The spans of trace `trace_id` (32 hex digits, or X-Ray's `1-…-…`), by start.
    pub fn trace(&self, trace_id: &str) -> Vec<RecordedSpan> {
        let id = trace_id
            .strip_prefix("1-")
            .map_or_else(|| trace_id.to_owned(), |x| x.replace('-', ""));
        let mut spans = self
            .lock()
            .by_trace
            .get(&id.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        spans.sort_by_key(|s| s.start);
        spans
    }

    /// The spans of every trace that has one whose `orderId` is `order_id`.
    pub fn order(&self, order_id: &str) -> Vec<RecordedSpan> {
        let inner = self.lock();
        let mut spans: Vec<RecordedSpan> = inner
            .by_trace
            .values()
            .filter(|t| {
                t.iter()
                    .any(|s| s.attributes.get("orderId").is_some_and(|o| o == order_id))
            })
            .flatten()
            .cloned()
            .collect();
        spans.sort_by_key(|s| s.start);
        spans
    }

    fn add(&self, span: RecordedSpan) {
        let mut inner = self.lock();
        if !inner.by_trace.contains_key(&span.trace_id) {
            inner.order.push_back(span.trace_id.clone());
        }
        inner
            .by_trace
            .entry(span.trace_id.clone())
            .or_default()
            .push(span);
        inner.len += 1;
        while inner.len > MAX_SPANS {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            let dropped = inner.by_trace.remove(&oldest).map_or(0, |t| t.len());
            inner.len -= dropped;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SpanExporter for SpanStore {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch {
            self.add(recorded(span));
        }
        Ok(())
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn recorded(span: SpanData) -> RecordedSpan {
    let attributes: serde_json::Map<String, serde_json::Value> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
        .collect();
    let parent = span.parent_span_id;
    RecordedSpan {
        trace_id: span.span_context.trace_id().to_string(),
        span_id: span.span_context.span_id().to_string(),
        parent_span_id: (parent != opentelemetry::trace::SpanId::INVALID)
            .then(|| parent.to_string()),
        name: span.name.into_owned(),
        function: attributes
            .get("function")
            .and_then(|f| f.as_str())
            .map(str::to_owned),
        start: micros(span.start_time),
        end: micros(span.end_time),
        attributes,
    }
}
