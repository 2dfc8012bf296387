//! Metric names: the CloudWatch namespace every function emits into and the operator
//! CLI reads from.

pub const METRICS_NAMESPACE: &str = "dishpatch";
