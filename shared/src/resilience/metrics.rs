//! Breaker transitions as CloudWatch Embedded Metric Format (EMF) log lines: CloudWatch
//! turns each line into a metric with no API call (none of the `PutMetricData` latency
//! or cost inside the invocation), and the line stays searchable in Logs Insights.
//!
//! Namespace `dishpatch`, dimension `Provider`, metric `BreakerOpened`, `BreakerClosed`
//! or `BreakerHalfOpened`, count 1; `from`, `to`, `calls`, `failures`, `failureRate` and
//! `transitions` ride along as properties (for `dishpatch breaker status`).

use std::sync::OnceLock;

use super::breaker::{BreakerState, Transition};
use serde_json::{json, Value};

type Forwarder = Box<dyn Fn(&str) + Send + Sync>;
static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

/// Writes an EMF line to stdout, where CloudWatch Logs turns it into metrics, and hands
/// it to the process's forwarder if one is set.
pub fn emit(line: &str) {
    println!("{line}");
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

pub use dishpatch_core::metrics::METRICS_NAMESPACE;

/// The metric a transition into `to` counts toward.
pub fn metric_name(to: BreakerState) -> &'static str {
    match to {
        BreakerState::Open => "BreakerOpened",
        BreakerState::Closed => "BreakerClosed",
        BreakerState::HalfOpen => "BreakerHalfOpened",
    }
}

/// One EMF JSON line (no newline) for `t`, stamped `timestamp_ms` (epoch millis).
pub fn emf_line(t: &Transition, timestamp_ms: i64) -> String {
    let name = metric_name(t.to);
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Provider"]],
                // One-second resolution: `breaker status` orders transitions by time,
                // and an opening and the half-open 30 s later would share a minute.
                "Metrics": [{ "Name": name, "Unit": "Count", "StorageResolution": 1 }],
            }],
        },
        "Provider": t.provider,
        "from": t.from.as_str(),
        "to": t.to.as_str(),
        "calls": t.calls,
        "failures": t.failures,
        "failureRate": t.failure_rate(),
        "transitions": t.transitions,
    });
    if let Value::Object(members) = &mut line {
        members.insert(name.to_owned(), json!(1));
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn opened() -> Transition {
        Transition {
            provider: "psp".into(),
            from: BreakerState::Closed,
            to: BreakerState::Open,
            calls: 10,
            failures: 10,
            at: Duration::from_secs(3),
            transitions: 1,
        }
    }

    /// What CloudWatch requires of an EMF line: every metric and dimension it declares
    /// is a top-level member (a number, a string).
    fn assert_valid_emf(v: &Value) {
        let directives = v["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        assert!(v["_aws"]["Timestamp"].is_i64());
        for d in directives {
            assert!(d["Namespace"].is_string());
            for set in d["Dimensions"].as_array().unwrap() {
                for key in set.as_array().unwrap() {
                    assert!(v[key.as_str().unwrap()].is_string(), "dimension {key}");
                }
            }
            for m in d["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "metric {m}");
            }
        }
    }

    #[test]
    fn an_opening_renders_as_a_breaker_opened_count() {
        let line = emf_line(&opened(), 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_valid_emf(&v);
        assert_eq!(
            v,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "dishpatch",
                        "Dimensions": [["Provider"]],
                        "Metrics": [{ "Name": "BreakerOpened", "Unit": "Count", "StorageResolution": 1 }],
                    }],
                },
                "Provider": "psp",
                "BreakerOpened": 1,
                "from": "CLOSED",
                "to": "OPEN",
                "calls": 10,
                "failures": 10,
                "failureRate": 1.0,
                "transitions": 1,
            })
        );
    }

    #[test]
    fn each_target_state_has_its_metric() {
        for (to, name) in [
            (BreakerState::Closed, "BreakerClosed"),
            (BreakerState::HalfOpen, "BreakerHalfOpened"),
            (BreakerState::Open, "BreakerOpened"),
        ] {
            let t = Transition {
                to,
                calls: 0,
                failures: 0,
                ..opened()
            };
            let v: Value = serde_json::from_str(&emf_line(&t, 0)).unwrap();
            assert_valid_emf(&v);
            assert_eq!(
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
                name
            );
            assert_eq!(v[name], 1);
            // No calls: a rate of 0, never NaN (which JSON cannot carry).
            assert_eq!(v["failureRate"], 0.0);
        }
    }
}
