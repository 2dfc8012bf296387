//! The operator console of the local stack: one web page (`/console/`) and the JSON API
//! it polls, showing the running system as an operator would watch it in AWS: orders
//! moving through the saga (a funnel and a live list), one order's timeline and its
//! trace as a waterfall, queue and dead-letter depths with the parked reasons and a
//! redrive button, the payment breaker, and the `dishpatch` metrics as small charts.
//!
//! It reads the sources the operator CLI and CloudWatch read, never a bookkeeping of
//! its own: the orders table, the queues, the emulator's CloudWatch metrics (namespace
//! [`dishpatch_core::metrics::METRICS_NAMESPACE`]), and a [`trace::SpanSource`].
//! Timelines, dead-letter queues and the breaker go through the operator CLI's library
//! ([`dishpatch_ops::orders`], [`dishpatch_ops::dlq`], [`dishpatch_ops::breaker`]).
//!
//! It may depend on `dishpatch-ops`, `dishpatch-template`, `dishpatch-core`,
//! `dishpatch-invariants` (queue depths), `dishpatch-sdk` (the recorded spans), the AWS SDK clients and hyper/http for serving; not on the function crates, the shared crate or
//! the emulator, so it reads a deployed stack's names as readily as the local ones.
//!
//! * [`http`]: the routes, the loopback guard on the one write (redrive), the assets
//!   (`assets/`: one HTML, one JS, one CSS file, embedded; no CDN, no external font);
//! * [`orders`]: the order list and the saga funnel, from the orders table;
//! * [`trace`]: the spans of one order's trace behind [`trace::SpanSource`]: those the
//!   process recorded, else [`trace::TimelineSpans`] derives them from the timeline;
//! * [`queues`]: queue depths beside the dead-letter queues;
//! * [`metrics`]: every metric of [`dishpatch_core::metrics::ALL`] with data, as series.
//!
//! The local stack mounts it on its gateway's port under `/console/`.

pub mod http;
pub mod metrics;
pub mod orders;
pub mod queues;
pub mod trace;

use std::sync::{Arc, OnceLock};

use dishpatch_ops::Target;

pub use crate::http::PREFIX;

/// Errors of the console's readers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ops(#[from] dishpatch_ops::Error),
    #[error("{0}")]
    Aws(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An AWS SDK error with its full context.
    pub(crate) fn aws<E: std::error::Error>(context: impl std::fmt::Display, err: E) -> Error {
        Error::Aws(format!(
            "{context}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(err)
        ))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The console of one stack: where to read, and where spans come from.
#[derive(Clone)]
pub struct Console {
    pub target: Target,
    pub spans: Arc<dyn trace::SpanSource>,
    /// `target` with every queue's URL, once they all exist.
    resolved: Arc<OnceLock<Target>>,
}

impl Console {
    /// A console reading `target`: traces from the spans this process recorded, else
    /// derived from the order's timeline.
    pub fn new(target: Target) -> Console {
        Console {
            target,
            spans: Arc::new(trace::FirstOf(vec![
                Arc::new(trace::RecordedSpans),
                Arc::new(trace::TimelineSpans),
            ])),
            resolved: Arc::default(),
        }
    }

    /// The console of a stack named by `prefix` (the local stack's naming).
    pub fn of_stack(
        sdk: &aws_config::SdkConfig,
        template: Arc<dishpatch_template::Template>,
        prefix: &str,
    ) -> Console {
        Console::new(Target::new(sdk.clone(), template, prefix))
    }

    /// [`Console::target`] with every queue's URL looked up once: the page polls every
    /// second or two, and a URL does not change while the stack runs. Until every queue
    /// exists, each call looks them up again.
    pub async fn resolved(&self) -> Target {
        if let Some(t) = self.resolved.get() {
            return t.clone();
        }
        let mut t = self.target.clone();
        for q in &self.target.template.queues {
            match t.queue_url(&q.logical_id).await {
                Ok(url) => t = t.with_queue_url(&q.logical_id, &url),
                Err(_) => return self.target.clone(),
            }
        }
        self.resolved.get_or_init(|| t).clone()
    }

    /// The same console with another span source (a span store, when one exists).
    pub fn with_spans(mut self, spans: Arc<dyn trace::SpanSource>) -> Console {
        self.spans = spans;
        self
    }
}
