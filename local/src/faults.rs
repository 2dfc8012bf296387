//! Fault injection for tests: wrappers around a function's handler, for
//! [`crate::LocalStackOptions::wrap_function`].
//!
//! ```no_run
//! # use dishpatch::envelope::MessageType;
//! use dishpatch_local::{faults, LocalStackOptions};
//! // A delivery service that never answers DispatchDelivery for order o-1.
//! let opts = LocalStackOptions::new("t").wrap_function("delivery", |inner| {
//!     faults::drop_messages(inner, |env, kind| {
//!         kind == MessageType::DispatchDelivery && env.order_id == "o-1"
//!     })
//! });
//! # let _ = opts;
//! ```

use std::sync::Arc;

use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::runtime::{Function, MessageError};
use lambda_http::{Body, Request, Response};

/// Whether a message is to be dropped.
pub type MessagePredicate = Arc<dyn Fn(&Envelope, MessageType) -> bool + Send + Sync>;

/// Serves `inner`, except that the messages `drop` selects are swallowed: acknowledged
/// (deleted from the queue) without running the handler, like a service that lost them.
pub fn drop_messages(
    inner: Arc<dyn Function>,
    drop: impl Fn(&Envelope, MessageType) -> bool + Send + Sync + 'static,
) -> Arc<dyn Function> {
    Arc::new(Intercept {
        inner,
        select: Arc::new(drop),
        fail: false,
    })
}

/// Serves `inner`, except that the messages `fail` selects fail (a transient error,
/// reported as a batch item failure) without running the handler: they are retried and
/// end in the DLQ, like a service that is down for them.
pub fn fail_messages(
    inner: Arc<dyn Function>,
    fail: impl Fn(&Envelope, MessageType) -> bool + Send + Sync + 'static,
) -> Arc<dyn Function> {
    Arc::new(Intercept {
        inner,
        select: Arc::new(fail),
        fail: true,
    })
}

struct Intercept {
    inner: Arc<dyn Function>,
    select: MessagePredicate,
    /// Fail the selected messages (else drop them).
    fail: bool,
}

#[async_trait::async_trait]
impl Function for Intercept {
    async fn http(&self, req: Request) -> Response<Body> {
        self.inner.http(req).await
    }

    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        if (self.select)(&envelope, kind) {
            tracing::info!(
                order_id = %envelope.order_id, kind = kind.as_str(), fail = self.fail,
                "fault injection: message {}", if self.fail { "failed" } else { "dropped" }
            );
            return if self.fail {
                Err(MessageError::Transient("fault injection".into()))
            } else {
                Ok(())
            };
        }
        self.inner.message(envelope, kind).await
    }

    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        self.inner.stream_record(record).await
    }

    fn dead_letters(&self) -> Option<&dyn dishpatch::runtime::dead_letters::DeadLetters> {
        self.inner.dead_letters()
    }
}
