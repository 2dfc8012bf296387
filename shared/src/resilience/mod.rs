//! Resilience for outbound calls to external providers (the card payment provider):
//! retry with backoff and jitter, and a per-provider circuit breaker. Pure logic over an
//! injectable [`Clock`] and [`Sleeper`]; no HTTP or AWS types, so an adapter maps its
//! own errors onto a [`Fault`] by implementing [`Classify`].
//!
//! Layering, as in the seeds' gateway (S004): the retry loop sits *outside* the breaker,
//! so every attempt is one breaker call (retries count toward its statistics) and an open
//! breaker ends the retries at once ([`Fault::CircuitOpen`] is never retried):
//!
//! ```ignore
//! let call = Call::with_idempotency_key().deadline(deadline);
//! let result = retry(&policy, &clock, &TokioSleeper, call, || {
//!     breaker.call(|| psp.authorize(&request)) // reqwest with a 5 s timeout inside
//! })
//! .await; // Result<Authorization, BreakerError<PspError>>
//! ```
//!
//! A transient failure left at the end (provider down, breaker open, deadline) means
//! "try later": the SQS record is reported as a batch item failure and comes back.
//!
//! - [`clock`]: monotonic [`Clock`], [`Sleeper`], [`Deadline`], and a [`ManualClock`]
//!   that is both, for tests.
//! - [`retry`](mod@retry): [`RetryPolicy`] (500 ms, 1 s, 2 s, ±20 % jitter, 3 retries)
//!   and the [`retry()`] helper.
//! - [`breaker`]: [`CircuitBreaker`] (≥ 10 calls and ≥ 50 % failures over 10 s opens it
//!   for 30 s, then one trial call).
//! - [`metrics`]: the breaker's transitions as CloudWatch Embedded Metric Format lines.

pub mod breaker;
pub mod clock;
pub mod metrics;
pub mod retry;

pub use breaker::{
    BreakerConfig, BreakerError, BreakerState, CircuitBreaker, Permit, Rejected, Snapshot,
    Transition,
};
pub use clock::{Clock, Deadline, ManualClock, Sleeper, SystemClock, TokioSleeper};
pub use metrics::{emf_line, METRICS_NAMESPACE};
pub use retry::{retry, Call, Decision, RetryPolicy, Stop};

/// What went wrong with one attempt of an outbound call, as far as retrying and the
/// breaker care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// No answer: connection refused or reset, DNS, TLS.
    Network,
    /// No answer within the attempt's timeout.
    Timeout,
    /// The provider answered with this (non-success) HTTP status.
    Status(u16),
    /// The provider answered and said no (card declined, insufficient funds): a
    /// business outcome, whatever status carried it.
    Declined,
    /// The breaker refused the call; it was not made.
    CircuitOpen,
}

impl Fault {
    /// Worth another try, and a sign the provider is unwell (so it counts against the
    /// breaker): no answer, 408, 429 or 5xx. A decline or another 4xx is an answer from
    /// a healthy provider that a repeat would not change.
    pub fn is_transient(self) -> bool {
        match self {
            Fault::Network | Fault::Timeout => true,
            Fault::Status(s) => s == 408 || s == 429 || (500..=599).contains(&s),
            Fault::Declined | Fault::CircuitOpen => false,
        }
    }
}

/// Maps an adapter's error onto a [`Fault`].
pub trait Classify {
    fn fault(&self) -> Fault;
}

impl Classify for Fault {
    fn fault(&self) -> Fault {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_faults_are_no_answer_408_429_and_5xx() {
        for f in [
            Fault::Network,
            Fault::Timeout,
            Fault::Status(408),
            Fault::Status(429),
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            Fault::Status(504),
            Fault::Status(599),
        ] {
            assert!(f.is_transient(), "{f:?}");
        }
        for f in [
            Fault::Declined,
            Fault::CircuitOpen,
            Fault::Status(400),
            Fault::Status(401),
            Fault::Status(402),
            Fault::Status(404),
            Fault::Status(409),
            Fault::Status(422),
            Fault::Status(200),
            Fault::Status(600),
        ] {
            assert!(!f.is_transient(), "{f:?}");
        }
    }
}
