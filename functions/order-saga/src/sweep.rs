//! The sweeper, run on a schedule: an order whose deadline passed a margin ago without
//! its `StepTimeout` arriving (the delayed message was lost, or the stream record that
//! carried its outbox ran out of retries) is timed out here, through the same saga
//! transition the message would have caused. A forward step is undone; an undo is tried
//! again, and after its last try the order ends COMPENSATION_FAILED: every swept order
//! reaches rest in a bounded number of sweeps.

use chrono::{DateTime, SecondsFormat, Utc};
use dishpatch::config::Env;
use dishpatch::emf::metrics::ORDERS_SWEPT;
use dishpatch::emf::Line;
use dishpatch::error::StoreError;
use dishpatch::orchestration::Timings;
use dishpatch::order::Order;
use dishpatch::orders::OrderStore;
use dishpatch::saga::{self, SagaEvent, Timeout};
use dishpatch::transition::{self, Applied, Cause};
use serde::Serialize;

/// What the timeline records as the cause of a swept transition.
pub const CAUSE: &str = "SweepOverdue";
/// Re-reads when another writer won the conditional write.
const ATTEMPTS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepConfig {
    /// How long past its deadline an order is left to its own `StepTimeout` first.
    pub margin_seconds: u32,
    /// Orders driven per run at most; the next run takes the rest.
    pub batch: u32,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            margin_seconds: 60,
            batch: 100,
        }
    }
}

impl SweepConfig {
    /// `SWEEP_MARGIN_SECONDS`, `SWEEP_BATCH_SIZE`; unset or unreadable keep the defaults.
    pub fn from_env(env: &Env) -> Self {
        let d = SweepConfig::default();
        let num = |name: &str, default: u32| {
            env.get(name)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(default)
        };
        SweepConfig {
            margin_seconds: num("SWEEP_MARGIN_SECONDS", d.margin_seconds),
            batch: num("SWEEP_BATCH_SIZE", d.batch).max(1),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Orders the index listed as overdue.
    pub overdue: usize,
    /// Orders moved on.
    pub driven: usize,
    /// Orders that had moved on by themselves since (the index lags the table).
    pub skipped: usize,
}

pub async fn sweep(
    orders: &dyn OrderStore,
    timings: &Timings,
    config: &SweepConfig,
    at: DateTime<Utc>,
) -> Result<Summary, StoreError> {
    let before = (at - chrono::Duration::seconds(config.margin_seconds.into()))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let ids = orders.overdue(&before, config.batch).await?;
    let mut summary = Summary {
        overdue: ids.len(),
        ..Summary::default()
    };
    for id in ids {
        match drive(orders, timings, &id, &before).await? {
            true => summary.driven += 1,
            false => summary.skipped += 1,
        }
    }
    if summary.overdue > 0 {
        tracing::info!(
            overdue = summary.overdue,
            driven = summary.driven,
            skipped = summary.skipped,
            "sweep done"
        );
    }
    Ok(summary)
}

/// Times out the step `order_id` waits on, if it is still overdue. `true`: moved on.
async fn drive(
    orders: &dyn OrderStore,
    timings: &Timings,
    order_id: &str,
    before: &str,
) -> Result<bool, StoreError> {
    let cause = Cause {
        name: CAUSE,
        message: None,
    };
    let decide = |order: &Order| match overdue(order, before) {
        Some(due) => Ok(SagaEvent::StepTimeout {
            step: due.step,
            attempt: due.attempt,
        }),
        None => Err(order.status()),
    };
    let applied =
        transition::apply_with(orders, timings, order_id, decide, cause, ATTEMPTS).await?;
    Ok(match applied {
        Applied::Moved { from, to } => {
            // Decided on `from`, so this is the deadline it missed.
            if let Some(due) = overdue(&from, before) {
                report(&from, &to, due);
            }
            true
        }
        Applied::Declined(status) => {
            tracing::info!(
                orderId = order_id,
                status = status.as_str(),
                "swept order moved on meanwhile"
            );
            false
        }
        Applied::Ignored { order, why } => left_as_it_is(&order, why),
        Applied::Refused { order, error } => left_as_it_is(&order, &error.to_string()),
        // Gone, or still changing under us (alive): the next run looks again.
        Applied::Missing | Applied::Contended => false,
    })
}

/// The step timeout `order` has been due since before `before`, if any.
fn overdue(order: &Order, before: &str) -> Option<Timeout> {
    let overdue = order.deadline.as_deref().is_some_and(|d| d < before);
    saga::awaiting(&order.saga).filter(|_| overdue)
}

fn left_as_it_is(order: &Order, why: &str) -> bool {
    tracing::warn!(orderId = %order.order_id, status = order.status().as_str(), why,
        "overdue order whose deadline the saga does not take; left as it is");
    false
}

/// One log line and one metric per order moved on.
fn report(before: &Order, after: &Order, due: Timeout) {
    let (from, to) = (before.status().as_str(), after.status().as_str());
    tracing::warn!(
        orderId = %before.order_id, from, to, step = due.step.as_str(), attempt = due.attempt,
        deadline = before.deadline.as_deref().unwrap_or_default(),
        "overdue order timed out by the sweeper"
    );
    swept(before, from, to, due, Utc::now().timestamp_millis()).emit();
}

/// `OrdersSwept` by `Step` (count 1); the order, its move and the missed deadline ride
/// along as properties.
pub fn swept(order: &Order, from: &str, to: &str, due: Timeout, timestamp_ms: i64) -> Line {
    Line::at(timestamp_ms)
        .count(&ORDERS_SWEPT, [due.step.as_str()])
        .property("orderId", order.order_id.as_str())
        .property("from", from)
        .property("to", to)
        .property("attempt", due.attempt)
        .property("deadline", order.deadline.clone())
}
