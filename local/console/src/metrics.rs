//! The `dishpatch` metrics as CloudWatch holds them: every metric of
//! [`dishpatch_core::metrics::ALL`] that `ListMetrics` finds (each dimension set its
//! own series), its recent datapoints from `GetMetricData`. Whichever metrics the
//! functions emit show up; the rest are listed as waiting for data.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use dishpatch_core::metrics::{self as names, Unit};
use dishpatch_ops::breaker::{list_metrics, points, query_index, stat_query};
use dishpatch_ops::Target;
use serde::Serialize;

use crate::{Error, Result};

/// How far back the charts look, and their bucket width.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const PERIOD: Duration = Duration::from_secs(10);
/// `GetMetricData` takes at most this many queries per call.
const QUERIES_PER_CALL: usize = 500;

/// One metric with one set of dimension values, over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub name: String,
    pub unit: &'static str,
    /// `Sum` for counts, `Average` for durations, `Maximum` for gauges.
    pub stat: &'static str,
    pub dimensions: BTreeMap<String, String>,
    pub help: &'static str,
    /// `[epoch ms, value]`, oldest first; periods without data are absent.
    pub points: Vec<(i64, f64)>,
}

/// The series with data, and the known metrics without any yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub period_secs: u64,
    pub window_secs: u64,
    pub series: Vec<Series>,
    pub waiting: Vec<&'static str>,
}

/// The statistic a chart of `unit` shows.
pub fn stat(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "Sum",
        Unit::Milliseconds => "Average",
        Unit::None => "Maximum",
    }
}

/// Every known metric's series over the last [`WINDOW`].
pub async fn read(target: &Target) -> Result<Metrics> {
    let cw = aws_sdk_cloudwatch::Client::new(&target.sdk);
    let mut found: Vec<Series> = Vec::new();
    for m in list_metrics(&cw).await? {
        let Some(known) = m.metric_name().and_then(names::by_name) else {
            continue;
        };
        let dimensions = m
            .dimensions()
            .iter()
            .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
            .collect();
        let series = Series {
            name: known.name.to_owned(),
            unit: known.unit.as_str(),
            stat: stat(known.unit),
            dimensions,
            help: known.help,
            points: Vec::new(),
        };
        if !found.contains(&series) {
            found.push(series);
        }
    }
    let now = SystemTime::now();
    for (chunk_no, chunk) in found.chunks_mut(QUERIES_PER_CALL).enumerate() {
        let mut query = cw
            .get_metric_data()
            .start_time(DateTime::from(now - WINDOW))
            .end_time(DateTime::from(now + PERIOD));
        for (i, s) in chunk.iter().enumerate() {
            let dimensions: Vec<(&str, &str)> = s
                .dimensions
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let period = PERIOD.as_secs() as i32;
            query = query.metric_data_queries(stat_query(i, &s.name, &dimensions, period, s.stat));
        }
        let data = query
            .send()
            .await
            .map_err(|e| Error::aws(format!("metric data (batch {chunk_no})"), e))?;
        for r in data.metric_data_results() {
            if let Some(s) = query_index(r).and_then(|i| chunk.get_mut(i)) {
                s.points = points(r);
                s.points.sort_by_key(|p| p.0);
            }
        }
    }
    found.sort_by(|a, b| (&a.name, &a.dimensions).cmp(&(&b.name, &b.dimensions)));
    let waiting = names::ALL
        .iter()
        .map(|m| m.name)
        .filter(|n| !found.iter().any(|s| s.name == *n))
        .collect();
    Ok(Metrics {
        period_secs: PERIOD.as_secs(),
        window_secs: WINDOW.as_secs(),
        series: found,
        waiting,
    })
}
