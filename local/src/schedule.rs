//! Schedule triggers: what EventBridge does for a function's `Schedule` events, done
//! locally with a timer. Each enabled `rate(...)` event invokes its function with an
//! EventBridge scheduled event (`detail-type: Scheduled Event`) once per period, the
//! first one period after start. A `cron(...)` schedule is not run (logged).
//!
//! Tests and demos want minutes to pass sooner: [`LocalStackOptions::schedule_interval`]
//! or `DISHPATCH_SCHEDULE_INTERVAL_MS` replaces every schedule's period.
//!
//! [`LocalStackOptions::schedule_interval`]: crate::stack::LocalStackOptions::schedule_interval

use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::functions::LocalFunction;

/// The environment variable that sets every schedule's period, in milliseconds.
pub const INTERVAL_ENV: &str = "DISHPATCH_SCHEDULE_INTERVAL_MS";

/// One schedule to run.
#[derive(Debug, Clone)]
pub struct ScheduleSource {
    /// The rule's ARN, as the event's `resources` names it.
    pub rule_arn: String,
    pub region: String,
    pub account_id: String,
    pub interval: Duration,
}

/// The period `DISHPATCH_SCHEDULE_INTERVAL_MS` sets, if any.
pub fn interval_from_env() -> Option<Duration> {
    std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// An EventBridge scheduled event, as Lambda receives it.
pub fn scheduled_event(source: &ScheduleSource, time: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": source.account_id,
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": source.region,
        "resources": [source.rule_arn],
        "detail": {},
    })
}

/// Invokes `function` every `source.interval` until the task is aborted. A failed
/// invocation is logged; EventBridge's own retries of it are not emulated.
pub fn spawn_scheduler(source: ScheduleSource, function: LocalFunction) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + source.interval;
        let mut ticks = tokio::time::interval_at(start, source.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let event = scheduled_event(&source, chrono::Utc::now());
            match function.invoke(event).await {
                Ok(out) => tracing::debug!(rule = %source.rule_arn, %out, "schedule invoked"),
                Err(e) => {
                    tracing::error!(rule = %source.rule_arn, error = %e, "scheduled invocation failed")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_the_shape_the_runtime_dispatches() {
        let source = ScheduleSource {
            rule_arn: "arn:aws:events:us-east-1:123456789012:rule/p-OrderSagaFunction-SweepOverdue"
                .into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            interval: Duration::from_secs(60),
        };
        let at = "2026-11-22T10:00:00Z".parse().unwrap();
        let e = scheduled_event(&source, at);
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["time"], "2026-11-22T10:00:00Z");
        assert_eq!(e["resources"][0], source.rule_arn.as_str());
        let parsed: dishpatch::runtime::Scheduled = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.time, "2026-11-22T10:00:00Z");
    }
}
