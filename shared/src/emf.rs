//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: CloudWatch Logs turns
//! each line into metrics with no API call (none of `PutMetricData`'s latency or cost
//! inside the invocation), and the line stays searchable in Logs Insights.
//!
//! Every metric comes from the one list, [`dishpatch_core::metrics`]: a [`Line`] takes a
//! [`Metric`] with its dimension values in the metric's order, plus properties (ids,
//! which must never be dimensions), and [`Line::emit`] writes it at once. Points whose
//! dimensions agree share one JSON document; one that would give a dimension another
//! value (a cancellation's `Outcome` is CANCELLED for the execution, COMPLETED for the
//! compensation) starts the next document, still within one call.
//!
//! Written by hand over `serde_json` rather than through the `metrics` facade and its
//! `metrics_cloudwatch_embedded` recorder (0.10, the version for `lambda_runtime` 1.x):
//! that recorder aggregates until a flush, so it needs a flush per invocation; it keeps
//! properties process-wide (concurrent invocations of a container would mix their
//! order ids); it has no `StorageResolution` (the breaker's one-second metrics); and
//! it writes one document per label set, so a delivered order's four saga transitions
//! took 9 lines and 2,292 bytes through it against 4 lines and 1,873 bytes here. Its
//! own cost is small (11 µs to install, about 200 KB of binary); the figures are in
//! docs/benchmarks.md ("Metrics: EMF lines").
//!
//! Nothing is buffered, so nothing needs flushing at the end of an invocation.

use std::cell::RefCell;
use std::sync::OnceLock;

use dishpatch_core::metrics::{Metric, METRICS_NAMESPACE};
use serde_json::{json, Map, Value};

/// The one list of metrics, for the crates that emit them.
pub use dishpatch_core::metrics;

/// The dimension values of a metric without dimensions.
pub const NO_DIMENSIONS: [&str; 0] = [];

type Forwarder = Box<dyn Fn(&str) + Send + Sync>;
static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

thread_local! {
    /// Lines a test on this thread captures instead of printing.
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Writes an EMF line to stdout, where CloudWatch Logs turns it into metrics, and hands
/// it to the process's forwarder if one is set. EMF must be the whole log line, so it
/// never goes through the JSON tracing layer.
pub fn emit(line: &str) {
    let printed = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line.to_owned());
            false
        }
        None => true,
    });
    if printed {
        println!("{line}");
    }
    if let Some(forward) = FORWARDER.get() {
        forward(line);
    }
}

/// Sets where [`emit`] also sends each line: the local stack, which has no CloudWatch
/// Logs, puts the metrics to the emulator's CloudWatch itself. Once per process;
/// `false` if one was already set.
pub fn set_forwarder(forward: impl Fn(&str) + Send + Sync + 'static) -> bool {
    FORWARDER.set(Box::new(forward)).is_ok()
}

/// Collects the lines emitted on this thread, instead of printing them, until
/// [`Capture::lines`] (a `#[tokio::test]` runs its whole test on one thread).
#[derive(Debug)]
pub struct Capture(());

impl Capture {
    pub fn start() -> Self {
        CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
        Capture(())
    }

    /// The lines so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        CAPTURED.with(|c| {
            c.borrow()
                .iter()
                .flatten()
                .map(|l| serde_json::from_str(l).expect("an EMF line is JSON"))
                .collect()
        })
    }

    /// Forgets the lines so far.
    pub fn clear(&self) {
        CAPTURED.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                lines.clear();
            }
        });
    }

    /// The data points named `metric` so far, as (dimension values, value) with the
    /// line each came from.
    pub fn points(&self, metric: &Metric) -> Vec<(Vec<String>, f64, Value)> {
        self.lines()
            .into_iter()
            .filter_map(|line| {
                let value = line.get(metric.name)?.as_f64()?;
                let dims = metric
                    .dimensions
                    .iter()
                    .map(|d| line[*d].as_str().unwrap_or_default().to_owned())
                    .collect();
                Some((dims, value, line))
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURED.with(|c| *c.borrow_mut() = None);
    }
}

struct Point {
    metric: &'static Metric,
    value: f64,
    values: Vec<String>,
}

/// Data points emitted together, with the properties they share.
#[must_use = "a line does nothing until emitted"]
pub struct Line {
    points: Vec<Point>,
    properties: Map<String, Value>,
    timestamp_ms: i64,
    high_resolution: bool,
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl Line {
    /// Stamped now.
    pub fn new() -> Self {
        Line::at(chrono::Utc::now().timestamp_millis())
    }

    /// Stamped `timestamp_ms` (epoch millis).
    pub fn at(timestamp_ms: i64) -> Self {
        Line {
            points: Vec::new(),
            properties: Map::new(),
            timestamp_ms,
            high_resolution: false,
        }
    }

    /// One point of `metric`, with its dimensions' `values` in the order the metric
    /// lists them (checked in tests and debug builds).
    pub fn point<S: Into<String>>(
        mut self,
        metric: &'static Metric,
        value: f64,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        debug_assert_eq!(
            values.len(),
            metric.dimensions.len(),
            "{}: one value per dimension {:?}",
            metric.name,
            metric.dimensions
        );
        self.points.push(Point {
            metric,
            value,
            values,
        });
        self
    }

    /// A count of one.
    pub fn count<S: Into<String>>(
        self,
        metric: &'static Metric,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.point(metric, 1.0, values)
    }

    /// A property every document of the line carries (searchable, not a dimension).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    /// One-second storage resolution for every point (costs more; for metrics read
    /// in time order, such as the breaker's transitions).
    pub fn high_resolution(mut self) -> Self {
        self.high_resolution = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The JSON documents (one per line of output).
    pub fn documents(&self) -> Vec<Value> {
        let mut docs: Vec<Map<String, Value>> = Vec::new();
        for p in &self.points {
            let dims: Vec<(&str, &str)> = p
                .metric
                .dimensions
                .iter()
                .copied()
                .zip(p.values.iter().map(String::as_str))
                .collect();
            let fits = |doc: &Map<String, Value>| {
                !doc.contains_key(p.metric.name)
                    && dims
                        .iter()
                        .all(|(k, v)| doc.get(*k).is_none_or(|have| have == *v))
            };
            let doc = match docs.iter().position(fits) {
                Some(i) => &mut docs[i],
                None => {
                    docs.push(self.document());
                    docs.last_mut().expect("just pushed")
                }
            };
            for (k, v) in &dims {
                doc.insert((*k).to_owned(), json!(v));
            }
            doc.insert(p.metric.name.to_owned(), number(p.value));
            let mut declared = json!({ "Name": p.metric.name, "Unit": p.metric.unit.as_str() });
            if self.high_resolution {
                declared["StorageResolution"] = json!(1);
            }
            let keys: Vec<&str> = p.metric.dimensions.to_vec();
            let directives = doc["_aws"]["CloudWatchMetrics"]
                .as_array_mut()
                .expect("built with directives");
            match directives
                .iter_mut()
                .find(|d| d["Dimensions"][0] == json!(keys))
            {
                Some(d) => d["Metrics"]
                    .as_array_mut()
                    .expect("built with metrics")
                    .push(declared),
                None => directives.push(json!({
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [keys],
                    "Metrics": [declared],
                })),
            }
        }
        docs.into_iter().map(Value::Object).collect()
    }

    /// An empty document with the line's timestamp and properties.
    fn document(&self) -> Map<String, Value> {
        let mut doc = self.properties.clone();
        doc.insert(
            "_aws".into(),
            json!({ "Timestamp": self.timestamp_ms, "CloudWatchMetrics": [] }),
        );
        doc
    }

    /// The output lines (no newlines).
    pub fn render(&self) -> Vec<String> {
        self.documents().iter().map(Value::to_string).collect()
    }

    /// Writes the line(s) now ([`emit`]).
    pub fn emit(self) {
        for line in self.render() {
            emit(&line);
        }
    }
}

/// A whole number without a fraction (`1`, not `1.0`: shorter, and what a count is).
fn number(v: f64) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if v.fract() == 0.0 && v.abs() < EXACT {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// What CloudWatch requires of an EMF document: every metric and dimension it declares
/// is a top-level member (a number, a string) and every metric is on the one list.
#[cfg(any(test, feature = "testing"))]
pub fn assert_valid(v: &Value) {
    let directives = v["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("directives");
    assert!(v["_aws"]["Timestamp"].is_i64(), "{v}");
    for d in directives {
        assert_eq!(d["Namespace"], METRICS_NAMESPACE, "{v}");
        for set in d["Dimensions"].as_array().expect("dimension sets") {
            for key in set.as_array().expect("a dimension set") {
                assert!(v[key.as_str().expect("a key")].is_string(), "{key} in {v}");
            }
        }
        for m in d["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("a name");
            let listed = dishpatch_core::metrics::by_name(name).expect("on the list");
            assert_eq!(m["Unit"], listed.unit.as_str(), "{v}");
            assert_eq!(d["Dimensions"][0], json!(listed.dimensions), "{v}");
            assert!(v[name].is_number(), "metric {name} in {v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dishpatch_core::metrics::{
        SAGA_COMPENSATIONS, SAGA_DURATION, SAGA_EXECUTIONS, SAGA_STARTED, SAGA_TRANSITIONS,
    };

    #[test]
    fn points_that_agree_share_a_document() {
        let line = Line::at(1_700_000_000_000)
            .count(&SAGA_TRANSITIONS, ["DELIVERED"])
            .count(&SAGA_EXECUTIONS, ["DELIVERED"])
            .property("orderId", "o-1");
        let docs = line.documents();
        assert_eq!(docs.len(), 1);
        docs.iter().for_each(assert_valid);
        assert_eq!(
            docs[0],
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": "dishpatch",
                            "Dimensions": [["Status"]],
                            "Metrics": [{ "Name": "SagaTransitions", "Unit": "Count" }],
                        },
                        {
                            "Namespace": "dishpatch",
                            "Dimensions": [["Outcome"]],
                            "Metrics": [{ "Name": "SagaExecutions", "Unit": "Count" }],
                        },
                    ],
                },
                "Status": "DELIVERED",
                "Outcome": "DELIVERED",
                "SagaTransitions": 1,
                "SagaExecutions": 1,
                "orderId": "o-1",
            })
        );
    }

    #[test]
    fn a_dimension_with_another_value_starts_another_document() {
        let line = Line::at(0)
            .count(&SAGA_EXECUTIONS, ["CANCELLED"])
            .count(&SAGA_COMPENSATIONS, ["COMPLETED"])
            .point(&SAGA_DURATION, 1234.0, ["CANCELLED"])
            .count(&SAGA_STARTED, NO_DIMENSIONS)
            .property("orderId", "o-2");
        let docs = line.documents();
        assert_eq!(docs.len(), 2);
        docs.iter().for_each(assert_valid);
        assert_eq!(docs[0]["Outcome"], "CANCELLED");
        assert_eq!(docs[0]["SagaDuration"], 1234);
        assert_eq!(docs[0]["SagaStarted"], 1);
        assert_eq!(docs[1]["Outcome"], "COMPLETED");
        assert_eq!(docs[1]["SagaCompensations"], 1);
        // Ids ride along in every document.
        assert!(docs.iter().all(|d| d["orderId"] == "o-2"));
        // A metric with no dimensions declares the empty set.
        let started = docs[0]["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["Metrics"][0]["Name"] == "SagaStarted")
            .unwrap()
            .clone();
        assert_eq!(started["Dimensions"], json!([[]]));
    }

    #[test]
    fn the_same_metric_twice_takes_two_documents() {
        let docs = Line::at(0)
            .count(&SAGA_TRANSITIONS, ["CANCELLING"])
            .count(&SAGA_TRANSITIONS, ["CANCELLING"])
            .documents();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn high_resolution_marks_every_metric_and_rendering_is_one_line_each() {
        let line = Line::at(0)
            .high_resolution()
            .count(&SAGA_STARTED, NO_DIMENSIONS);
        let docs = line.documents();
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"],
            1
        );
        let rendered = line.render();
        assert_eq!(rendered.len(), 1);
        assert!(!rendered[0].contains('\n'));
    }

    #[test]
    fn a_capture_takes_the_lines_instead_of_stdout() {
        let capture = Capture::start();
        Line::at(0).count(&SAGA_EXECUTIONS, ["DELIVERED"]).emit();
        let points = capture.points(&SAGA_EXECUTIONS);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].0, vec!["DELIVERED".to_owned()]);
        assert_eq!(points[0].1, 1.0);
        capture.clear();
        assert!(capture.lines().is_empty());
        assert!(Line::new().is_empty());
    }

    #[test]
    fn fractions_stay_fractions() {
        assert_eq!(number(2.0), json!(2));
        assert_eq!(number(2.5), json!(2.5));
        assert_eq!(number(f64::MAX), json!(f64::MAX));
    }
}
