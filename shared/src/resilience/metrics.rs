//! Breaker transitions as CloudWatch Embedded Metric Format (EMF) log lines, through
//! [`crate::emf`].
//!
//! Namespace `dishpatch`, dimension `Provider`, metric `BreakerOpened`, `BreakerClosed`
//! or `BreakerHalfOpened`, count 1; `from`, `to`, `calls`, `failures`, `failureRate` and
//! `transitions` ride along as properties (for `dishpatch breaker status`). A second
//! line sets the `BreakerState` gauge (0 closed, 1 half-open, 2 open).

use super::breaker::{BreakerState, Transition};
use crate::emf::Line;
use dishpatch_core::metrics::{self as names, Metric};

pub use crate::emf::{emit, set_forwarder};
pub use dishpatch_core::metrics::METRICS_NAMESPACE;

/// The metric a transition into `to` counts toward.
pub fn metric(to: BreakerState) -> &'static Metric {
    match to {
        BreakerState::Open => &names::BREAKER_OPENED,
        BreakerState::Closed => &names::BREAKER_CLOSED,
        BreakerState::HalfOpen => &names::BREAKER_HALF_OPENED,
    }
}

/// The name of [`metric`].
pub fn metric_name(to: BreakerState) -> &'static str {
    metric(to).name
}

/// [`names::BREAKER_STATE`]'s value for `state`: 0 closed, 1 half-open, 2 open.
pub fn gauge(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    }
}

/// One EMF JSON line (no newline) for `t`, stamped `timestamp_ms` (epoch millis).
pub fn emf_line(t: &Transition, timestamp_ms: i64) -> String {
    line(t, timestamp_ms).render().concat()
}

/// The transition's count, at one-second resolution: `breaker status` orders
/// transitions by time, and an opening and the half-open 30 s later would share a
/// minute.
fn line(t: &Transition, timestamp_ms: i64) -> Line {
    Line::at(timestamp_ms)
        .high_resolution()
        .count(metric(t.to), [t.provider.as_str()])
        .property("from", t.from.as_str())
        .property("to", t.to.as_str())
        .property("calls", t.calls)
        .property("failures", t.failures)
        .property("failureRate", t.failure_rate())
        .property("transitions", t.transitions)
}

/// Emits `t`'s count ([`emf_line`]) and the state it left the breaker in, a line of
/// its own so the count's line stays what `breaker status` reads.
pub fn emit_transition(t: &Transition, timestamp_ms: i64) {
    line(t, timestamp_ms).emit();
    Line::at(timestamp_ms)
        .point(&names::BREAKER_STATE, gauge(t.to), [t.provider.as_str()])
        .emit();
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

    use crate::emf::{assert_valid as assert_valid_emf, Capture};
    use serde_json::{json, Value};

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

    #[test]
    fn a_transition_emits_its_count_and_the_state_it_left() {
        let capture = Capture::start();
        emit_transition(&opened(), 7);
        let lines = capture.lines();
        assert_eq!(lines.len(), 2);
        lines.iter().for_each(assert_valid_emf);
        assert_eq!(lines[0]["BreakerOpened"], 1);
        assert_eq!(lines[1]["BreakerState"], 2);
        assert_eq!(lines[1]["Provider"], "psp");
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({ "Name": "BreakerState", "Unit": "None" })
        );
        assert_eq!(gauge(BreakerState::Closed), 0.0);
        assert_eq!(gauge(BreakerState::HalfOpen), 1.0);
    }
}
