//! Monotonic time and sleeping, injectable so the breaker and retry logic are tested
//! without waiting.
//!
//! Unlike [`crate::idempotency::Clock`] (wall-clock epoch millis, stored in records),
//! this clock is monotonic: a `Duration` since an arbitrary origin, only ever compared
//! with itself. A wall clock stepping back (NTP) must not reopen or close a breaker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Monotonic "now": time since an origin fixed by the clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// `Instant`-based; the origin is the first use in the process, shared by every
/// `SystemClock`, so readings from different values compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// Waits between retries.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// A clock that moves only when told to. As a [`Sleeper`] it returns at once, having
/// advanced itself by the requested time (and noted it in [`ManualClock::slept`]), so a
/// retry loop under test sees time pass exactly as it would for real.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
    slept: Mutex<Vec<Duration>>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock::default()
    }

    pub fn at(t: Duration) -> Self {
        let c = ManualClock::default();
        c.set(t);
        c
    }

    pub fn set(&self, t: Duration) {
        self.millis.store(as_millis(t), Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.millis.fetch_add(as_millis(d), Ordering::SeqCst);
    }

    /// Every sleep requested so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

impl Sleeper for ManualClock {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        self.slept.lock().unwrap_or_else(|e| e.into_inner()).push(d);
        self.advance(d);
        // Still a yield point, as a real sleep is, so other tasks get to run.
        tokio::task::yield_now()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<S: Sleeper + ?Sized> Sleeper for std::sync::Arc<S> {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(d)
    }
}

impl<S: Sleeper + ?Sized> Sleeper for &S {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(d)
    }
}

fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The instant (on a [`Clock`]) by which work must be finished, e.g. the Lambda
/// invocation's deadline less the time needed to answer after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Duration);

impl Deadline {
    pub fn at(t: Duration) -> Self {
        Deadline(t)
    }

    /// `remaining` from the clock's now.
    pub fn within(clock: &impl Clock, remaining: Duration) -> Self {
        Deadline(clock.now().saturating_add(remaining))
    }

    /// From the Lambda context's deadline (epoch millis) and the wall clock's now
    /// (epoch millis), less `margin` kept for the work after the call. A deadline
    /// already past gives one that is past now.
    pub fn from_epoch_millis(
        clock: &impl Clock,
        deadline_ms: u64,
        now_ms: u64,
        margin: Duration,
    ) -> Self {
        let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Deadline::within(clock, remaining.saturating_sub(margin))
    }

    pub fn instant(self) -> Duration {
        self.0
    }

    pub fn remaining(self, clock: &impl Clock) -> Duration {
        self.0.saturating_sub(clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_shared() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
    }

    #[tokio::test]
    async fn manual_clock_sleeps_by_advancing() {
        let c = ManualClock::at(Duration::from_secs(5));
        c.sleep(Duration::from_millis(500)).await;
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_millis(6_500));
        assert_eq!(c.slept(), vec![Duration::from_millis(500)]);
    }

    #[test]
    fn deadline_from_the_lambda_context_keeps_a_margin() {
        let c = ManualClock::at(Duration::from_secs(100));
        let d =
            Deadline::from_epoch_millis(&c, 1_000_030_000, 1_000_000_000, Duration::from_secs(2));
        assert_eq!(d.instant(), Duration::from_secs(128));
        assert_eq!(d.remaining(&c), Duration::from_secs(28));
        // Already past: nothing remains, never an underflow.
        let late = Deadline::from_epoch_millis(&c, 5, 10, Duration::from_secs(2));
        assert_eq!(late.remaining(&c), Duration::ZERO);
    }
}
