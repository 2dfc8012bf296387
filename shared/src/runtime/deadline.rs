//! The Lambda invocation's deadline, for the outbound calls made while it runs.
//!
//! [`super::Function::message`] gets no Lambda context, so [`super::invoke`] keeps the
//! context's `deadline` (epoch millis) in a task-local around the whole event. The
//! messages of an SQS batch are handled one after another inside that task, so every
//! outbound call sees the time the whole invocation has left, and a batch stuck behind
//! a slow dependency gives up (transiently) before Lambda kills it. The local stack
//! invokes through the same function with the template's timeout, so it sees the same
//! deadlines as AWS.

use std::future::Future;

tokio::task_local! {
    static DEADLINE_MS: u64;
}

/// The current invocation's deadline (epoch millis); `None` outside an invocation.
pub fn deadline_epoch_ms() -> Option<u64> {
    DEADLINE_MS.try_with(|d| *d).ok()
}

/// Runs `fut` as if inside an invocation that must end at `deadline_ms` (epoch millis).
pub async fn with_deadline<T>(deadline_ms: u64, fut: impl Future<Output = T>) -> T {
    DEADLINE_MS.scope(deadline_ms, fut).await
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
