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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    wrap(
        inner,
        Intercept {
            select: Arc::new(drop),
            fail: false,
        },
    )
}

/// Serves `inner`, except that the messages `fail` selects fail (a transient error,
/// reported as a batch item failure) without running the handler: they are retried and
/// end in the DLQ, like a service that is down for them.
pub fn fail_messages(
    inner: Arc<dyn Function>,
    fail: impl Fn(&Envelope, MessageType) -> bool + Send + Sync + 'static,
) -> Arc<dyn Function> {
    wrap(
        inner,
        Intercept {
            select: Arc::new(fail),
            fail: true,
        },
    )
}

/// Serves `inner`, except that the stream records `drop` selects (by the messages of
/// their outbox) are skipped without being relayed, like records that ran out of
/// retries: the messages that order write caused are lost.
pub fn drop_stream_records(
    inner: Arc<dyn Function>,
    drop: impl Fn(&[Envelope]) -> bool + Send + Sync + 'static,
) -> Arc<dyn Function> {
    wrap(inner, LostRecords(Box::new(drop)))
}

type OutboxPredicate = Box<dyn Fn(&[Envelope]) -> bool + Send + Sync>;

struct LostRecords(OutboxPredicate);

impl Fault for LostRecords {
    fn before(&self, _: &Envelope, _: MessageType) -> Option<Result<(), MessageError>> {
        None
    }

    fn skip_record(&self, record: &aws_lambda_events::dynamodb::EventRecord) -> bool {
        let Ok(image) = serde_dynamo::from_item::<_, dishpatch::orders::OutboxImage>(
            record.change.new_image.clone(),
        ) else {
            return false;
        };
        let outbox: Vec<Envelope> = image.outbox.into_iter().map(|m| m.envelope).collect();
        let skip = (self.0)(&outbox);
        if skip {
            let kinds: Vec<MessageType> = outbox.iter().map(|e| e.kind).collect();
            tracing::info!(?kinds, "fault injection: stream record dropped");
        }
        skip
    }
}

/// What a fault does before a message reaches the handler: `None` lets it through.
trait Fault: Send + Sync + 'static {
    fn before(&self, envelope: &Envelope, kind: MessageType) -> Option<Result<(), MessageError>>;

    /// Whether a stream record is acknowledged without reaching the handler.
    fn skip_record(&self, _record: &aws_lambda_events::dynamodb::EventRecord) -> bool {
        false
    }
}

/// `inner` with `fault` in front of its messages; everything else passes straight on.
fn wrap(inner: Arc<dyn Function>, fault: impl Fault) -> Arc<dyn Function> {
    Arc::new(Wrapped { inner, fault })
}

struct Wrapped<F> {
    inner: Arc<dyn Function>,
    fault: F,
}

#[async_trait::async_trait]
impl<F: Fault> Function for Wrapped<F> {
    async fn http(&self, req: Request) -> Response<Body> {
        self.inner.http(req).await
    }

    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        match self.fault.before(&envelope, kind) {
            Some(outcome) => outcome,
            None => self.inner.message(envelope, kind).await,
        }
    }

    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        if self.fault.skip_record(record) {
            return Ok(());
        }
        self.inner.stream_record(record).await
    }

    async fn scheduled(
        &self,
        event: &dishpatch::runtime::Scheduled,
    ) -> Result<serde_json::Value, MessageError> {
        self.inner.scheduled(event).await
    }

    fn dead_letters(&self) -> Option<&dyn dishpatch::runtime::dead_letters::DeadLetters> {
        self.inner.dead_letters()
    }
}

struct Intercept {
    select: MessagePredicate,
    /// Fail the selected messages (else drop them).
    fail: bool,
}

impl Fault for Intercept {
    fn before(&self, envelope: &Envelope, kind: MessageType) -> Option<Result<(), MessageError>> {
        if !(self.select)(envelope, kind) {
            return None;
        }
        tracing::info!(
            order_id = %envelope.order_id, kind = kind.as_str(), fail = self.fail,
            "fault injection: message {}", if self.fail { "failed" } else { "dropped" }
        );
        Some(if self.fail {
            Err(MessageError::Transient("fault injection".into()))
        } else {
            Ok(())
        })
    }
}

/// How [`crash_mid_batch`] crashes, and how often it did.
#[derive(Debug, Clone)]
pub struct CrashPlan {
    /// Chance that handling a message crashes the invocation, for every message after
    /// the first of a batch (a batch of one never crashes: "mid-batch" needs earlier
    /// messages that were handled and are then redelivered).
    pub rate: f64,
    /// Seed of the decisions (mixed with the function's name by the caller if wanted).
    pub seed: u64,
    /// No crash within this long of the previous one: set it above the time a crashed
    /// batch takes to come back, so the redelivery runs clean.
    pub cooldown: Duration,
    /// Crashes so far (shared with whoever reports them).
    pub crashes: Arc<AtomicU64>,
}

impl CrashPlan {
    pub fn new(rate: f64, seed: u64) -> CrashPlan {
        CrashPlan {
            rate,
            seed,
            cooldown: Duration::ZERO,
            crashes: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The panic message of an injected crash (a panic hook may hide these).
pub const CRASH_MESSAGE: &str = "fault injection: handler crashed mid-batch";

/// Serves `inner`, except that an SQS invocation sometimes panics while handling a
/// message, after the earlier messages of its batch were handled: the local Lambda
/// reports a crashed invocation and the whole batch comes back, so the handled
/// messages are delivered again (their effects must not happen twice).
///
/// A crash alone should never dead-letter a message (`maxReceiveCount` 3), so: a
/// message is in at most one crash as a handled message (an invocation that has handled
/// a message already caught in a crash never crashes), and no crash follows another
/// within [`CrashPlan::cooldown`], so the redelivered batch, messages after the crash
/// point included, runs clean.
///
/// The batch is recognised by the invocation's task: the local Lambda runs each
/// invocation in a task of its own and handles its messages one after another.
pub fn crash_mid_batch(inner: Arc<dyn Function>, plan: CrashPlan) -> Arc<dyn Function> {
    wrap(
        inner,
        Crasher {
            rng: Mutex::new(crate::esm::SplitMix64::new(plan.seed)),
            plan,
            state: Mutex::new(CrashState::default()),
        },
    )
}

#[derive(Default)]
struct CrashState {
    /// Envelope ids handled so far by each running invocation (pruned when large).
    invocations: HashMap<tokio::task::Id, Vec<String>>,
    /// Envelope ids that were handled in (or crashed) an invocation that crashed.
    crashed: HashSet<String>,
    last_crash: Option<Instant>,
}

struct Crasher {
    plan: CrashPlan,
    rng: Mutex<crate::esm::SplitMix64>,
    state: Mutex<CrashState>,
}

impl Crasher {
    /// Whether handling `id` now crashes the invocation (and records it if so).
    fn crash_now(&self, id: &str) -> bool {
        let Some(task) = tokio::task::try_id() else {
            return false;
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.invocations.len() > 256 && !st.invocations.contains_key(&task) {
            // Finished invocations are never told apart from running ones: forget all.
            st.invocations.clear();
        }
        let handled = st.invocations.entry(task).or_default().clone();
        let cooled = st
            .last_crash
            .is_none_or(|t| t.elapsed() >= self.plan.cooldown);
        let eligible = cooled
            && !handled.is_empty()
            && !st.crashed.contains(id)
            && !handled.iter().any(|h| st.crashed.contains(h));
        let roll = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        };
        if eligible && roll < self.plan.rate {
            st.crashed.extend(handled);
            st.crashed.insert(id.to_owned());
            st.invocations.remove(&task);
            st.last_crash = Some(Instant::now());
            self.plan.crashes.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if let Some(v) = st.invocations.get_mut(&task) {
            v.push(id.to_owned());
        }
        false
    }
}

impl Fault for Crasher {
    fn before(&self, envelope: &Envelope, kind: MessageType) -> Option<Result<(), MessageError>> {
        if self.crash_now(&envelope.id) {
            tracing::info!(
                order_id = %envelope.order_id, kind = kind.as_str(),
                "fault injection: crashing the invocation mid-batch"
            );
            panic!("{CRASH_MESSAGE}");
        }
        None
    }
}
