//! One order's trace, as spans across the functions: what the waterfall draws.
//!
//! The spans come from a [`SpanSource`]; the console asks [`FirstOf`] the recorded
//! spans, then the timeline:
//!
//! * [`RecordedSpans`]: the spans this process recorded (the local stack runs every
//!   function in its own process and keeps their spans in
//!   [`dishpatch_sdk::trace::recorded::store`] when span recording is on), every trace
//!   that touched the order;
//! * [`TimelineSpans`]: when no span was recorded (recording off, or another process
//!   ran the saga), spans derived from what the order's record already shows: its
//!   timeline ([`dishpatch_ops::orders::snapshot`]). Each entry after the first is one
//!   span from the previous entry's time to its own, named for its cause and drawn on
//!   the function whose work it waited for (the inventory, payment or delivery function
//!   for their facts; the API for a placement or a cancel request; the saga for its own
//!   timeouts and sweeps). The span's `writtenBy` attribute names the function that
//!   wrote the entry.
//!
//! Another store (a collector's, X-Ray's) plugs in with [`crate::Console::with_spans`]
//! without changing the endpoint or the page.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use dishpatch_ops::orders::{self, Entry};
use dishpatch_ops::Target;
use dishpatch_sdk::trace::recorded::{self, RecordedSpan};
use serde::Serialize;

use crate::Result;

/// One span, in the shape the page draws (and a tracing backend exports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// The function (template logical id) the span ran in.
    pub function: String,
    /// RFC 3339.
    pub start: String,
    pub end: String,
    pub attributes: BTreeMap<String, String>,
}

/// One order's trace and where its spans came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// `timeline` (derived from the order record) or the span store's name.
    pub source: String,
    pub spans: Vec<Span>,
}

/// Where an order's spans come from.
#[async_trait]
pub trait SpanSource: Send + Sync {
    /// The trace of `order_id`, `None` when there is no such order.
    async fn trace(&self, target: &Target, order_id: &str) -> Result<Option<Trace>>;
}

/// Spans derived from the order's timeline (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineSpans;

#[async_trait]
impl SpanSource for TimelineSpans {
    async fn trace(&self, target: &Target, order_id: &str) -> Result<Option<Trace>> {
        Ok(orders::snapshot(target, order_id)
            .await?
            .map(|(_, timeline)| Trace {
                source: "timeline".to_owned(),
                spans: timeline_spans(order_id, &timeline),
            }))
    }
}

/// The first source that has the order's trace.
pub struct FirstOf(pub Vec<Arc<dyn SpanSource>>);

#[async_trait]
impl SpanSource for FirstOf {
    async fn trace(&self, target: &Target, order_id: &str) -> Result<Option<Trace>> {
        for source in &self.0 {
            if let Some(t) = source.trace(target, order_id).await? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}

/// The spans this process recorded for the order (`None` when there is none).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordedSpans;

#[async_trait]
impl SpanSource for RecordedSpans {
    async fn trace(&self, _: &Target, order_id: &str) -> Result<Option<Trace>> {
        let spans = recorded::store().order(order_id);
        Ok((!spans.is_empty()).then(|| Trace {
            source: "recorded spans".to_owned(),
            spans: spans.into_iter().map(Span::from).collect(),
        }))
    }
}

impl From<RecordedSpan> for Span {
    fn from(s: RecordedSpan) -> Span {
        let at = |micros: u64| {
            i64::try_from(micros)
                .ok()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .unwrap_or_default()
        };
        Span {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            name: s.name,
            function: s.function.unwrap_or_default(),
            start: at(s.start),
            end: at(s.end),
            attributes: s
                .attributes
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(v) => (k, v),
                    other => (k, other.to_string()),
                })
                .collect(),
        }
    }
}

/// The function that wrote a timeline entry caused by `cause`.
pub fn writer(cause: &str) -> &'static str {
    match cause {
        "PlaceOrder" | "CancelRequested" => "OrderApiFunction",
        _ => "OrderSagaFunction",
    }
}

/// The function whose work a timeline entry caused by `cause` waited for.
pub fn worker(cause: &str) -> &'static str {
    const BY_PREFIX: [(&str, &str); 3] = [
        ("Inventory", "InventoryFunction"),
        ("Payment", "PaymentFunction"),
        ("Delivery", "DeliveryFunction"),
    ];
    BY_PREFIX
        .iter()
        .find(|(prefix, _)| cause.starts_with(prefix))
        .map(|(_, f)| *f)
        .unwrap_or_else(|| writer(cause))
}

/// The spans of a timeline: a root span over the whole of it, and one child per entry
/// (the first, the placement, takes no time).
pub fn timeline_spans(order_id: &str, timeline: &[Entry]) -> Vec<Span> {
    let (Some(first), Some(last)) = (timeline.first(), timeline.last()) else {
        return Vec::new();
    };
    let root_id = format!("{:016x}", 0);
    let mut spans = vec![Span {
        trace_id: order_id.to_owned(),
        span_id: root_id.clone(),
        parent_span_id: None,
        name: format!("order {order_id}"),
        function: writer(&first.cause).to_owned(),
        start: first.at.clone(),
        end: last.at.clone(),
        attributes: BTreeMap::from([("status".to_owned(), last.status.clone())]),
    }];
    for (i, e) in timeline.iter().enumerate() {
        let start = if i == 0 { &e.at } else { &timeline[i - 1].at };
        let mut attributes = BTreeMap::from([
            ("status".to_owned(), e.status.clone()),
            ("cause".to_owned(), e.cause.clone()),
            ("writtenBy".to_owned(), writer(&e.cause).to_owned()),
        ]);
        if let Some(d) = &e.detail {
            attributes.insert("detail".to_owned(), d.clone());
        }
        spans.push(Span {
            trace_id: order_id.to_owned(),
            span_id: format!("{:016x}", i + 1),
            parent_span_id: Some(root_id.clone()),
            name: e.cause.clone(),
            function: worker(&e.cause).to_owned(),
            start: start.clone(),
            end: e.at.clone(),
            attributes,
        });
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: &str, status: &str, cause: &str) -> Entry {
        Entry {
            at: at.into(),
            status: status.into(),
            cause: cause.into(),
            detail: None,
        }
    }

    #[test]
    fn each_step_spans_from_the_previous_entry_on_the_function_it_waited_for() {
        let spans = timeline_spans(
            "o-1",
            &[
                entry("t0", "PENDING", "PlaceOrder"),
                entry("t1", "RESERVED", "InventoryReserved"),
                entry("t2", "PAID", "PaymentCaptured"),
                entry("t3", "CANCELLING", "StepTimeout"),
            ],
        );
        assert_eq!(spans.len(), 5);
        let root = &spans[0];
        assert_eq!((root.start.as_str(), root.end.as_str()), ("t0", "t3"));
        assert_eq!(root.parent_span_id, None);
        let steps: Vec<(&str, &str, &str, &str)> = spans[1..]
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.function.as_str(),
                    s.start.as_str(),
                    s.end.as_str(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("PlaceOrder", "OrderApiFunction", "t0", "t0"),
                ("InventoryReserved", "InventoryFunction", "t0", "t1"),
                ("PaymentCaptured", "PaymentFunction", "t1", "t2"),
                ("StepTimeout", "OrderSagaFunction", "t2", "t3"),
            ]
        );
        assert_eq!(spans[2].attributes["writtenBy"], "OrderSagaFunction");
        assert!(spans[1..]
            .iter()
            .all(|s| s.parent_span_id.as_deref() == Some(root.span_id.as_str())));
        assert!(timeline_spans("o-2", &[]).is_empty());
    }

    #[test]
    fn a_recorded_span_keeps_its_ids_and_reads_its_times_as_rfc3339() {
        let recorded = RecordedSpan {
            trace_id: "t".into(),
            span_id: "s".into(),
            parent_span_id: Some("p".into()),
            name: "message".into(),
            function: Some("dishpatch-PaymentFunction".into()),
            start: 1_700_000_000_000_001,
            end: 1_700_000_000_250_000,
            attributes: serde_json::json!({"orderId": "o-1", "attempt": 2})
                .as_object()
                .unwrap()
                .clone(),
        };
        let span = Span::from(recorded);
        assert_eq!(span.start, "2023-11-14T22:13:20.000001Z");
        assert_eq!(span.end, "2023-11-14T22:13:20.250000Z");
        assert_eq!(span.parent_span_id.as_deref(), Some("p"));
        assert_eq!(span.attributes["orderId"], "o-1");
        assert_eq!(span.attributes["attempt"], "2");
    }
}
