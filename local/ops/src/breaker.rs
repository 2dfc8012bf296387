//! `breaker status` from CloudWatch: each payment container's breaker logs its
//! transitions as EMF (`BreakerOpened` / `BreakerHalfOpened` / `BreakerClosed`,
//! namespace `dishpatch`, dimension `Provider`), CloudWatch turns them into metrics, and
//! the latest transition per provider is its state. Locally the stack puts the same
//! metrics to the emulator (`dishpatch_local::cloudwatch`).
//!
//! The state is a fleet view: each container has a breaker of its own, so "OPEN" means
//! the latest transition any container made was an opening.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat};
use dishpatch_core::metrics::METRICS_NAMESPACE;

use crate::Target;
use crate::{Error, Result};

/// Metric name -> the state it records a move into.
const METRICS: [(&str, &str); 3] = [
    ("BreakerOpened", "OPEN"),
    ("BreakerHalfOpened", "HALF_OPEN"),
    ("BreakerClosed", "CLOSED"),
];
/// CloudWatch keeps one-second data for three hours; beyond that, minutes.
const FINE_WINDOW: Duration = Duration::from_secs(3 * 3600);

/// One transition seen in the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Epoch milliseconds (the start of its period).
    pub at_ms: i64,
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    pub provider: String,
    /// `None`: no transition in the window (a breaker starts CLOSED).
    pub latest: Option<Seen>,
    pub transitions: usize,
}

impl fmt::Display for ProviderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.latest {
            None => write!(f, "{}: CLOSED (no transition in the window)", self.provider),
            Some(s) => {
                let at = chrono::DateTime::from_timestamp_millis(s.at_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                write!(
                    f,
                    "{}: {} since {at} ({} transition(s) in the window)",
                    self.provider, s.state, self.transitions
                )
            }
        }
    }
}

/// The latest state among `seen`. A half-open trial resolves within milliseconds, so
/// when a half-opening shares its period with an opening or a closing, that one came
/// after it.
pub fn latest(seen: &[Seen]) -> Option<Seen> {
    let rank = |s: &Seen| (s.at_ms, s.state != "HALF_OPEN");
    seen.iter().max_by_key(|s| rank(s)).cloned()
}

/// Every provider's breaker transitions over the last `window`, oldest first.
pub async fn history(target: &Target, window: Duration) -> Result<BTreeMap<String, Vec<Seen>>> {
    let cw = aws_sdk_cloudwatch::Client::new(&target.sdk);
    let mut providers = std::collections::BTreeSet::new();
    for m in list_metrics(&cw).await? {
        if !METRICS.iter().any(|(n, _)| Some(*n) == m.metric_name()) {
            continue;
        }
        for d in m.dimensions() {
            if d.name() == Some("Provider") {
                providers.extend(d.value().map(str::to_owned));
            }
        }
    }
    let now = SystemTime::now();
    let period = if window <= FINE_WINDOW { 1 } else { 60 };
    let mut out = BTreeMap::new();
    for provider in providers {
        let mut query = cw
            .get_metric_data()
            .start_time(DateTime::from(now - window))
            .end_time(DateTime::from(now + Duration::from_secs(60)));
        for (i, (name, _)) in METRICS.iter().enumerate() {
            let dimensions = [("Provider", provider.as_str())];
            query = query.metric_data_queries(stat_query(i, name, &dimensions, period, "Sum"));
        }
        let data = query
            .send()
            .await
            .map_err(|e| Error::aws(format!("breaker metrics of {provider}"), e))?;
        let mut seen = Vec::new();
        for r in data.metric_data_results() {
            let Some((_, state)) = query_index(r).and_then(|i| METRICS.get(i)) else {
                continue;
            };
            for (at_ms, v) in points(r) {
                if v > 0.0 {
                    seen.push(Seen { at_ms, state });
                }
            }
        }
        seen.sort_by_key(|s| (s.at_ms, s.state != "HALF_OPEN"));
        out.insert(provider, seen);
    }
    Ok(out)
}

/// Every metric of namespace `dishpatch` (`ListMetrics`): each name with each set of
/// dimension values it has data for.
pub async fn list_metrics(cw: &aws_sdk_cloudwatch::Client) -> Result<Vec<Metric>> {
    let mut pages = cw
        .list_metrics()
        .namespace(METRICS_NAMESPACE)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("list the dishpatch metrics", e))?;
        out.extend(page.metrics().iter().cloned());
    }
    Ok(out)
}

/// The `i`th query of a `GetMetricData` call: statistic `stat` of the metric `name`
/// (namespace `dishpatch`) with `dimensions`, per `period` seconds.
pub fn stat_query(
    i: usize,
    name: &str,
    dimensions: &[(&str, &str)],
    period: i32,
    stat: &str,
) -> MetricDataQuery {
    let dimensions = dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect();
    let metric = Metric::builder()
        .namespace(METRICS_NAMESPACE)
        .metric_name(name)
        .set_dimensions(Some(dimensions))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(period)
        .stat(stat)
        .build();
    MetricDataQuery::builder()
        .id(format!("m{i}"))
        .metric_stat(stat)
        .build()
}

/// Which [`stat_query`] a result answers.
pub fn query_index(result: &MetricDataResult) -> Option<usize> {
    result.id()?.strip_prefix('m')?.parse().ok()
}

/// A result's datapoints: (epoch milliseconds, value).
pub fn points(result: &MetricDataResult) -> Vec<(i64, f64)> {
    let at = result
        .timestamps()
        .iter()
        .map(|t| t.to_millis().unwrap_or_default());
    at.zip(result.values().iter().copied()).collect()
}

/// `breaker status`: each provider's latest state over the last `window`.
pub async fn status(target: &Target, window: Duration) -> Result<Vec<ProviderStatus>> {
    Ok(history(target, window)
        .await?
        .into_iter()
        .map(|(provider, seen)| ProviderStatus {
            latest: latest(&seen),
            transitions: seen.len(),
            provider,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(at_ms: i64, state: &'static str) -> Seen {
        Seen { at_ms, state }
    }

    #[test]
    fn the_latest_transition_wins_and_a_trial_resolves_within_its_period() {
        assert_eq!(latest(&[]), None);
        let opened = seen(1_000, "OPEN");
        assert_eq!(latest(std::slice::from_ref(&opened)), Some(opened.clone()));
        let closed = seen(31_000, "CLOSED");
        let half = seen(31_000, "HALF_OPEN");
        assert_eq!(
            latest(&[opened.clone(), closed.clone(), half.clone()]),
            Some(closed)
        );
        let reopened = seen(31_000, "OPEN");
        assert_eq!(latest(&[half.clone(), reopened.clone()]), Some(reopened));
        assert_eq!(latest(&[opened, half.clone()]), Some(half));
    }
}
