//! What CloudWatch Logs does with EMF lines, for the local stack: the functions' EMF
//! lines (see [`dishpatch::resilience::metrics`]) become `PutMetricData` calls to the
//! emulator, so `dishpatch breaker status` reads the same metrics locally as in AWS.

use std::sync::OnceLock;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;

/// One namespace's metrics of an EMF line.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfMetrics {
    pub namespace: String,
    pub data: Vec<MetricDatum>,
}

/// The metrics an EMF line declares, as CloudWatch extracts them; `None` when the line
/// is not EMF.
pub fn extract(line: &str) -> Option<Vec<EmfMetrics>> {
    let v: Value = serde_json::from_str(line).ok()?;
    let aws = v.get("_aws")?;
    let at = aws.get("Timestamp")?.as_i64()?;
    let mut out = Vec::new();
    for directive in aws.get("CloudWatchMetrics")?.as_array()? {
        let namespace = directive.get("Namespace")?.as_str()?.to_owned();
        let dimension_sets: Vec<Vec<Dimension>> = directive
            .get("Dimensions")?
            .as_array()?
            .iter()
            .filter_map(|set| {
                set.as_array()?
                    .iter()
                    .map(|k| {
                        let k = k.as_str()?;
                        Some(
                            Dimension::builder()
                                .name(k)
                                .value(v.get(k)?.as_str()?)
                                .build(),
                        )
                    })
                    .collect()
            })
            .collect();
        let mut data = Vec::new();
        for m in directive.get("Metrics")?.as_array()? {
            let name = m.get("Name")?.as_str()?;
            let value = v.get(name)?.as_f64()?;
            let unit = m.get("Unit").and_then(Value::as_str).unwrap_or("None");
            let resolution = m.get("StorageResolution").and_then(Value::as_i64);
            for dims in &dimension_sets {
                data.push(
                    MetricDatum::builder()
                        .metric_name(name)
                        .value(value)
                        .unit(StandardUnit::from(unit))
                        .timestamp(DateTime::from_millis(at))
                        .set_dimensions(Some(dims.clone()))
                        .set_storage_resolution(resolution.map(|r| r as i32))
                        .build(),
                );
            }
        }
        out.push(EmfMetrics { namespace, data });
    }
    Some(out)
}

/// Forwards this process's EMF lines to the emulator at `sdk`'s endpoint. The first
/// stack of a process sets it up (the forwarder is process-wide); later calls do
/// nothing. The puts run on a thread of their own, so they outlive any one test's
/// runtime and never block the function that emitted the line.
pub fn forward_emf(sdk: &SdkConfig) {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if !dishpatch::resilience::metrics::set_forwarder(move |line| {
        let _ = tx.send(line.to_owned());
    }) {
        return;
    }
    let client = aws_sdk_cloudwatch::Client::new(sdk);
    let spawned = std::thread::Builder::new()
        .name("emf-forwarder".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                while let Some(line) = rx.recv().await {
                    for m in extract(&line).unwrap_or_default() {
                        if let Err(e) = client
                            .put_metric_data()
                            .namespace(&m.namespace)
                            .set_metric_data(Some(m.data))
                            .send()
                            .await
                        {
                            tracing::warn!(
                                error = %aws_sdk_cloudwatch::error::DisplayErrorContext(e),
                                "could not put an EMF metric to the emulator"
                            );
                        }
                    }
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no EMF forwarding: cannot start its thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dishpatch::resilience::breaker::{BreakerState, Transition};
    use std::time::Duration;

    #[test]
    fn a_breaker_transition_becomes_one_datum_per_dimension_set() {
        let t = Transition {
            provider: "psp".into(),
            from: BreakerState::HalfOpen,
            to: BreakerState::Closed,
            calls: 1,
            failures: 0,
            at: Duration::ZERO,
            transitions: 3,
        };
        let line = dishpatch::resilience::emf_line(&t, 1_700_000_000_000);
        let got = extract(&line).expect("EMF");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].namespace, "dishpatch");
        let d = &got[0].data[0];
        assert_eq!(got[0].data.len(), 1);
        assert_eq!(d.metric_name(), Some("BreakerClosed"));
        assert_eq!(d.value(), Some(1.0));
        assert_eq!(d.unit(), Some(&StandardUnit::Count));
        assert_eq!(d.storage_resolution(), Some(1));
        assert_eq!(
            d.timestamp().unwrap().to_millis().unwrap(),
            1_700_000_000_000
        );
        assert_eq!(d.dimensions()[0].name(), Some("Provider"));
        assert_eq!(d.dimensions()[0].value(), Some("psp"));
    }

    #[test]
    fn other_lines_are_not_metrics() {
        assert_eq!(extract("plain text"), None);
        assert_eq!(extract(r#"{"level":"INFO","message":"hi"}"#), None);
    }
}
