//! The saga's delivery commands: DispatchDelivery and CancelDelivery, and the
//! function's own delayed RetryDispatch.
//!
//! Idempotency: the delivery record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and
//! the publish heals when the command is retried.
//!
//! No free courier: the delivery is recorded WAITING (oldest first in the waiting
//! index), the saga is told (DeliveryWaiting), and a RetryDispatch is queued with a
//! growing delay until the saga's dispatch deadline (`dispatchBy`). A courier freed by
//! a completion or a cancel, or coming on shift, claims the oldest waiting delivery at
//! once ([`hand_off`]). At the deadline the saga cancels the delivery, which takes a
//! waiting one off the queue.
//!
//! A first dispatch and the outcome a record stands for are in `handlers/dispatch.rs`,
//! the wait for a courier (its retries and the hand-off to a freed courier) in
//! `handlers/waiting.rs`, the cancel in `handlers/cancel.rs`.

mod cancel;
mod dispatch;
mod waiting;

pub use cancel::cancel;
pub use dispatch::{dispatch, CANDIDATES, NO_COURIER};
pub use waiting::{hand_off, retry, Waiting};
