//! One saga step on a stored order: read it, transition, advance, write conditionally
//! on the version read, and read again when another writer got there first. The cancel
//! route, the step-result handler and the sweeper all move orders through here; each
//! maps the [`Applied`] outcome to its own answer. The write that wins emits the
//! saga's metrics ([`metrics`]); a lost write, a duplicate or a refusal emits none.

use crate::envelope::{now, Envelope};
use crate::error::StoreError;
use crate::orchestration::{advance, Timings};
use crate::order::Order;
use crate::orders::OrderStore;
use crate::saga::{self, Outcome, SagaError, SagaEvent};
use std::convert::Infallible;

/// What a change is recorded as.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// The cause on the order's timeline.
    pub name: &'a str,
    /// The message being answered: what the write sends follows it (causation and
    /// correlation); `None` starts a new chain.
    pub message: Option<&'a Envelope>,
}

/// What became of the event. `D` is why [`apply_with`]'s `decide` sent none.
#[derive(Debug)]
pub enum Applied<D = Infallible> {
    /// Written, with its outbox.
    Moved { from: Box<Order>, to: Box<Order> },
    /// A duplicate or stale event for the order as read: nothing written.
    Ignored {
        order: Box<Order>,
        why: &'static str,
    },
    /// The saga refuses the event in this state: nothing written.
    Refused { order: Box<Order>, error: SagaError },
    /// `decide` sent no event to the order as read: nothing written.
    Declined(D),
    /// No such order.
    Missing,
    /// Another writer won every one of the attempts.
    Contended,
}

/// Applies `event` to the order, trying the write up to `attempts` times.
pub async fn apply(
    orders: &dyn OrderStore,
    timings: &Timings,
    order_id: &str,
    event: &SagaEvent,
    cause: Cause<'_>,
    attempts: usize,
) -> Result<Applied, StoreError> {
    let decide = |_: &Order| Ok::<_, Infallible>(event.clone());
    apply_with(orders, timings, order_id, decide, cause, attempts).await
}

/// Like [`apply`], with the event decided anew on each read of the order, as what is
/// due (or allowed) can change between a conflict and the next read.
pub async fn apply_with<D>(
    orders: &dyn OrderStore,
    timings: &Timings,
    order_id: &str,
    decide: impl Fn(&Order) -> Result<SagaEvent, D> + Send + Sync,
    cause: Cause<'_>,
    attempts: usize,
) -> Result<Applied<D>, StoreError> {
    for _ in 0..attempts {
        if let Some(applied) = attempt(orders, timings, order_id, &decide, cause).await? {
            return Ok(applied);
        }
    }
    Ok(Applied::Contended)
}

/// One read and at most one write; `None` when the write lost to another writer.
async fn attempt<D>(
    orders: &dyn OrderStore,
    timings: &Timings,
    order_id: &str,
    decide: &(impl Fn(&Order) -> Result<SagaEvent, D> + Sync),
    cause: Cause<'_>,
) -> Result<Option<Applied<D>>, StoreError> {
    let Some(order) = orders.get(order_id).await? else {
        return Ok(Some(Applied::Missing));
    };
    let event = match decide(&order) {
        Ok(event) => event,
        Err(why) => return Ok(Some(Applied::Declined(why))),
    };
    let order = Box::new(order);
    let transition = match saga::transition(&order.saga, &event) {
        Ok(Outcome::Apply(t)) => t,
        Ok(Outcome::Ignore(why)) => return Ok(Some(Applied::Ignored { order, why })),
        Err(error) => return Ok(Some(Applied::Refused { order, error })),
    };
    let (next, outbox) = advance(
        &order,
        &transition,
        cause.name,
        cause.message,
        &now(),
        timings,
    );
    match orders.save(&next, Some(order.version), &outbox).await {
        Ok(()) => {
            metrics::moved(&order, &next, &event);
            Ok(Some(Applied::Moved {
                from: order,
                to: Box::new(next),
            }))
        }
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub mod metrics;

#[cfg(test)]
mod tests;
