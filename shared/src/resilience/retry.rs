//! Retry with exponential backoff and jitter, for outbound calls that are safe to repeat.
//!
//! The numbers are the seeds' gateway policy (S004 R20): after a failed attempt wait
//! 500 ms, 1 s, 2 s (`500 ms × 2^n`), at most 3 retries (4 attempts). Retryable is the
//! union of the seeds' sets (R20, R6): no answer, timeout, 408, 429, 5xx
//! ([`Fault::is_transient`]); never a decline or another 4xx. Only a call that is
//! idempotent or carries an idempotency key is repeated (R20 repeats no POST; a keyed
//! POST is deduplicated by the provider, so it may be).
//!
//! Jitter is **±20 %** around the nominal delay (uniform in `[0.8, 1.2) × nominal`), so
//! concurrent Lambda invocations that failed together spread out, while each delay stays
//! near the documented number (the seeds' `×(0.5 + rand·0.5)` would halve them).
//!
//! The total time is bounded by the call's [`Deadline`] (the Lambda's remaining time):
//! a retry is started only if its wait *and* a whole attempt (`attempt_timeout`, the
//! per-attempt HTTP timeout) end by the deadline.

use super::clock::{Clock, Deadline, Sleeper};
use super::{Classify, Fault};
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait before the first retry; each later one doubles it.
    pub base_delay: Duration,
    pub max_retries: u32,
    /// Relative spread of each wait: `0.2` is ±20 %.
    pub jitter: f64,
    /// The most one attempt can take (the adapter's HTTP timeout); a retry that could
    /// not finish before the deadline is not started.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// The payment provider's: 500 ms, 1 s, 2 s ±20 %, 5 s per attempt.
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(500),
            max_retries: 3,
            jitter: 0.2,
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

/// How an outbound call may be repeated, and by when it must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Idempotent, or carries an idempotency key: a repeat cannot act twice.
    pub repeatable: bool,
    pub deadline: Option<Deadline>,
}

impl Call {
    /// An idempotent operation (a read, a PUT or DELETE of a known resource).
    pub fn idempotent() -> Self {
        Call {
            repeatable: true,
            deadline: None,
        }
    }

    /// A call carrying an idempotency key that the provider deduplicates on.
    pub fn with_idempotency_key() -> Self {
        Call::idempotent()
    }

    /// Neither idempotent nor keyed: a repeat might act twice, so it is never retried.
    pub fn not_idempotent() -> Self {
        Call {
            repeatable: false,
            deadline: None,
        }
    }

    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry { after: Duration },
    Stop(Stop),
}

/// Why no (further) retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// A decline, another 4xx, or an open breaker: repeating would not help.
    NotTransient,
    /// Transient, but the call is not safe to repeat.
    NotRepeatable,
    /// Transient, but every retry has been used.
    Exhausted,
    /// Transient, but the next wait plus an attempt would end after the deadline.
    Deadline,
}

impl Stop {
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::NotTransient => "not_transient",
            Stop::NotRepeatable => "not_repeatable",
            Stop::Exhausted => "exhausted",
            Stop::Deadline => "deadline",
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `n` (0-based), without jitter.
    pub fn nominal_delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor)
    }

    /// The wait before retry `n`, with jitter drawn as `unit` in `[0, 1)`.
    pub fn delay(&self, n: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        self.nominal_delay(n)
            .mul_f64(1.0 - jitter + 2.0 * jitter * unit)
    }

    /// After an attempt failed with `fault`, `retries_done` retries in: retry (after
    /// how long), or stop (why). `unit` is the jitter draw in `[0, 1)`.
    pub fn decide(
        &self,
        fault: Fault,
        call: &Call,
        retries_done: u32,
        now: Duration,
        unit: f64,
    ) -> Decision {
        if !fault.is_transient() {
            return Decision::Stop(Stop::NotTransient);
        }
        if !call.repeatable {
            return Decision::Stop(Stop::NotRepeatable);
        }
        if retries_done >= self.max_retries {
            return Decision::Stop(Stop::Exhausted);
        }
        let after = self.delay(retries_done, unit);
        if let Some(deadline) = call.deadline {
            let done_by = now
                .saturating_add(after)
                .saturating_add(self.attempt_timeout);
            if done_by > deadline.instant() {
                return Decision::Stop(Stop::Deadline);
            }
        }
        Decision::Retry { after }
    }
}

/// Runs `op`, and again after a wait while [`RetryPolicy::decide`] says so. Returns the
/// first success, or the last attempt's error.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    clock: &impl Clock,
    sleeper: &impl Sleeper,
    call: Call,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let mut retries = 0;
    loop {
        let err = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let fault = err.fault();
        match policy.decide(fault, &call, retries, clock.now(), unit_random()) {
            Decision::Retry { after } => {
                tracing::warn!(
                    fault = ?fault,
                    attempt = retries + 1,
                    delay_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                    "outbound call failed; retrying"
                );
                sleeper.sleep(after).await;
                retries += 1;
            }
            Decision::Stop(stop) => {
                // A non-transient answer is the caller's to report; only say why a
                // transient failure was given up on.
                if stop != Stop::NotTransient {
                    tracing::warn!(
                        fault = ?fault,
                        attempts = retries + 1,
                        reason = stop.as_str(),
                        "outbound call failed; not retrying"
                    );
                }
                return Err(err);
            }
        }
    }
}

/// Uniform in `[0, 1)` from a per-thread xorshift64, seeded from a v4 UUID: jitter needs
/// spread between invocations, not cryptographic randomness.
fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0 | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        // The top 53 bits fill an f64's mantissa exactly.
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests;
