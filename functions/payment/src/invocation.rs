//! The Lambda invocation's deadline, for the outbound calls made while one message is
//! handled.
//!
//! [`dishpatch::runtime::Function::message`] gets no Lambda context, so the payment
//! function runs under [`run`], which keeps each invocation's deadline (the context's
//! `deadline`, epoch millis) in a task-local around the shared dispatcher. The messages of
//! an SQS batch are handled one after another inside that task, so every provider call
//! sees the time the whole invocation has left, and a batch stuck behind a slow provider
//! gives up (transiently) before Lambda kills it.
//!
//! Where no deadline is set (the local stack and tests call
//! [`dishpatch::runtime::invoke`] directly) [`deadline_epoch_ms`] is `None` and the
//! provider adapter uses its conservative default budget per call instead.

use dishpatch::runtime::Function;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use std::future::Future;

tokio::task_local! {
    static DEADLINE_MS: u64;
}

/// The current invocation's deadline (epoch millis), when running under [`run`] or
/// [`with_deadline`].
pub fn deadline_epoch_ms() -> Option<u64> {
    DEADLINE_MS.try_with(|d| *d).ok()
}

/// Runs `fut` as if inside an invocation that must end at `deadline_ms` (epoch millis).
pub async fn with_deadline<T>(deadline_ms: u64, fut: impl Future<Output = T>) -> T {
    DEADLINE_MS.scope(deadline_ms, fut).await
}

/// [`dishpatch::runtime::run`], with each invocation's deadline made known to the
/// handlers.
pub async fn run<F: Function>(f: F) -> Result<(), Error> {
    let f = &f;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: LambdaEvent<Value>| async move {
            let deadline = ev.context.deadline;
            with_deadline(
                deadline,
                dishpatch::runtime::invoke(f, ev.payload, ev.context),
            )
            .await
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_seen_only_inside_its_invocation() {
        assert_eq!(deadline_epoch_ms(), None);
        let seen = with_deadline(1_234, async {
            tokio::task::yield_now().await;
            deadline_epoch_ms()
        })
        .await;
        assert_eq!(seen, Some(1_234));
        assert_eq!(deadline_epoch_ms(), None);
    }
}
