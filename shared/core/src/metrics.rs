//! Metric names: the one list of what dishpatch emits into CloudWatch (namespace
//! [`METRICS_NAMESPACE`]), with each metric's unit and dimensions. The functions emit
//! only these, and the template's alarms and dashboard may name only these (a test
//! compares them), so a renamed metric cannot leave an alarm watching nothing.
//!
//! Dimensions are low-cardinality on purpose (an outcome, a step, a result): a
//! CloudWatch metric is billed per distinct set of dimension values, and an order id
//! would make one metric per order. Ids ride along as EMF properties instead.

pub const METRICS_NAMESPACE: &str = "dishpatch";

/// How CloudWatch aggregates a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// A gauge with no unit (the breaker state: 0 closed, 1 half-open, 2 open).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One metric: its name, unit and the dimensions every data point carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub dimensions: &'static [&'static str],
    /// What a data point means, for the docs and the dashboard.
    pub help: &'static str,
}

macro_rules! metrics {
    ($($id:ident = $name:literal, $unit:ident, [$($dim:literal),*], $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: Metric = Metric {
                name: $name,
                unit: Unit::$unit,
                dimensions: &[$($dim),*],
                help: $help,
            };
        )*
        /// Every metric dishpatch emits.
        pub const ALL: &[Metric] = &[$($id),*];
    };
}

metrics! {
    SAGA_STARTED = "SagaStarted", Count, [],
        "An order was placed and its saga began.";
    SAGA_TRANSITIONS = "SagaTransitions", Count, ["Status"],
        "An order entered a saga status: RESERVED, PAID, DISPATCHED, DELIVERED, CANCELLING, CANCELLED, COMPENSATION_FAILED (the funnel).";
    SAGA_EXECUTIONS = "SagaExecutions", Count, ["Outcome"],
        "A saga ended: DELIVERED, CANCELLED or COMPENSATION_FAILED.";
    SAGA_COMPENSATIONS = "SagaCompensations", Count, ["Outcome"],
        "A saga's compensation ended: COMPLETED (the order is CANCELLED) or FAILED.";
    SAGA_DURATION = "SagaDuration", Milliseconds, ["Outcome"],
        "From placement to the end of the saga's own work: DISPATCHED (a courier has it) or CANCELLED. The courier's ride is not saga latency.";
    STEP_LATENCY = "StepLatency", Milliseconds, ["Step"],
        "From a step's command to its result reaching the saga, by step: INVENTORY, PAYMENT, DELIVERY.";
    WALLET_OPERATIONS = "WalletOperations", Count, ["Operation", "Result"],
        "A wallet operation (CAPTURE, REFUND, TOP_UP, CREDIT) by result: OK or REJECTED (funds, limits, currency).";
    PROVIDER_REQUESTS = "ProviderRequests", Count, ["Result"],
        "A card provider request, each attempt of a call (retries included): SUCCESS (an answer, a decline included), FAILURE, TIMEOUT or REJECTED (by the open breaker; not sent).";
    PROVIDER_RETRIES = "ProviderRetries", Count, ["Retry"],
        "A retried card provider call, by retry number (1 to 3).";
    BREAKER_STATE = "BreakerState", None, ["Provider"],
        "The payment breaker's state after a transition (Provider `psp`): 0 closed, 1 half-open, 2 open.";
    BREAKER_OPENED = "BreakerOpened", Count, ["Provider"],
        "The payment breaker opened.";
    BREAKER_HALF_OPENED = "BreakerHalfOpened", Count, ["Provider"],
        "The payment breaker let a probe through.";
    BREAKER_CLOSED = "BreakerClosed", Count, ["Provider"],
        "The payment breaker closed again.";
    MESSAGES_PARKED = "MessagesParked", Count, ["Code"],
        "A message parked in its dead-letter queue, by failure code (MALFORMED_MESSAGE, UNKNOWN_MESSAGE_TYPE, UNSUPPORTED_MESSAGE_VERSION, UNKNOWN_REFERENCE, INVALID_CONTENT, UNSUPPORTED, RETRIES_EXHAUSTED).";
    STALE_NOTIFICATIONS = "StaleNotificationsDropped", Count, [],
        "A notification fact older than the order's state, dropped.";
    ORDERS_SWEPT = "OrdersSwept", Count, ["Step"],
        "An overdue order moved on by the sweeper, by the step it waited on (INVENTORY, PAYMENT, DELIVERY).";
}

/// The metric named `name`, if dishpatch emits one.
pub fn by_name(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_dimensions_few() {
        let names: BTreeSet<_> = ALL.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), ALL.len());
        // EMF allows 30 dimensions; a handful keeps the metric count per order bounded.
        assert!(ALL.iter().all(|m| m.dimensions.len() <= 2));
        assert_eq!(by_name("SagaDuration"), Some(&SAGA_DURATION));
        assert_eq!(by_name("nope"), None);
    }
}
