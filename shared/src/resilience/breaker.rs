//! A circuit breaker per provider, with the seeds' gateway numbers (S004 CB6, opossum):
//!
//! - **CLOSED**: calls go through; their outcomes fill a sliding window of the last
//!   10 s. A failure that leaves ≥ 10 calls and ≥ 50 % failures in the window opens it.
//! - **OPEN**: calls fail fast (the operation is not run) for 30 s.
//! - **HALF_OPEN**: the first call after the 30 s is a trial; others fail fast while it
//!   is in flight. Its success closes the breaker (with an empty window); its failure
//!   opens it for another 30 s.
//!
//! "Failure" is a transient fault ([`Fault::is_transient`]: no answer, 408, 429, 5xx); a
//! decline or another 4xx is a healthy provider answering. The breaker opens only on a
//! failure, never on a success that happens to find old failures in the window.
//!
//! One breaker is shared by the concurrent invocations of a Lambda container (a
//! `static`), so state sits behind a mutex. A result is counted only in the state it was
//! admitted in: a slow call started before the breaker opened cannot close it. A trial
//! whose caller goes away without a result (its future dropped) frees the slot for the
//! next caller instead of leaving the breaker half-open forever.
//!
//! Every transition is logged (`tracing`), counted ([`Snapshot::transitions`]) and
//! passed to a sink, by default CloudWatch EMF lines on stdout
//! ([`super::metrics::emit_transition`]). State is per container, as the seeds' AWS notes
//! accept: it fails fast locally; it is not a fleet-wide switch.

use super::clock::{Clock, SystemClock};
use super::metrics::emit_transition;
use super::{Classify, Fault};
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// How far back outcomes count.
    pub window: Duration,
    /// Fewer calls than this in the window never open the breaker.
    pub min_calls: u32,
    /// Failures, as a percentage of the window's calls, that open it.
    pub failure_rate_percent: u32,
    /// How long it stays open before a trial call.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(10),
            min_calls: 10,
            failure_rate_percent: 50,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of state, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub provider: String,
    pub from: BreakerState,
    pub to: BreakerState,
    /// The calls that decided it: the window's when opening from CLOSED, the trial (1)
    /// when leaving HALF_OPEN, none when the open time ran out.
    pub calls: u32,
    pub failures: u32,
    /// On the breaker's clock.
    pub at: Duration,
    /// Transitions so far, this one included.
    pub transitions: u64,
}

impl Transition {
    pub fn failure_rate(&self) -> f64 {
        rate(self.failures, self.calls)
    }
}

fn rate(failures: u32, calls: u32) -> f64 {
    if calls == 0 {
        0.0
    } else {
        f64::from(failures) / f64::from(calls)
    }
}

/// The breaker's state for metrics and the operator CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub provider: String,
    /// As last changed: an OPEN breaker past its open time shows OPEN until the next
    /// call makes it HALF_OPEN.
    pub state: BreakerState,
    pub calls_in_window: u32,
    pub failures_in_window: u32,
    /// On the breaker's clock, while OPEN or HALF_OPEN.
    #[serde(rename = "openedAtMs", serialize_with = "as_millis")]
    pub opened_at: Option<Duration>,
    pub transitions: u64,
    pub trial_in_flight: bool,
}

fn as_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

/// The breaker refused a call; it was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker for {provider} is {state}: call not made")]
pub struct Rejected {
    pub provider: String,
    pub state: BreakerState,
    /// Until the breaker lets a trial through; zero while another trial is in flight.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError<E> {
    #[error(transparent)]
    Rejected(Rejected),
    #[error(transparent)]
    Call(E),
}

impl<E: Classify> Classify for BreakerError<E> {
    fn fault(&self) -> Fault {
        match self {
            BreakerError::Rejected(_) => Fault::CircuitOpen,
            BreakerError::Call(e) => e.fault(),
        }
    }
}

type Sink = Arc<dyn Fn(&Transition) + Send + Sync>;

pub struct CircuitBreaker {
    provider: String,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    sink: Sink,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("inner", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Transitions go to stdout as EMF lines until [`CircuitBreaker::on_transition`].
    pub fn new(provider: impl Into<String>, config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        CircuitBreaker {
            provider: provider.into(),
            config,
            clock,
            sink: Arc::new(|t: &Transition| {
                emit_transition(t, chrono::Utc::now().timestamp_millis());
            }),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The default numbers on the system clock.
    pub fn with_defaults(provider: impl Into<String>) -> Self {
        CircuitBreaker::new(provider, BreakerConfig::default(), Arc::new(SystemClock))
    }

    /// Where transitions go besides the log (replacing the EMF line on stdout).
    pub fn on_transition(mut self, sink: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Runs `op` if the breaker admits it, and records its outcome: a transient fault
    /// is a failure, anything else (a success, a decline, another 4xx) a success.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let permit = self.acquire().map_err(BreakerError::Rejected)?;
        let result = op().await;
        permit.record(match &result {
            Ok(_) => true,
            Err(e) => !e.fault().is_transient(),
        });
        result.map_err(BreakerError::Call)
    }

    /// Asks to make a call; the [`Permit`] records its outcome. For adapters whose
    /// outcome is not a `Result` of a [`Classify`] error; prefer [`CircuitBreaker::call`].
    pub fn acquire(&self) -> Result<Permit<'_>, Rejected> {
        // Read under the lock, so outcomes enter the window in time order.
        let mut inner = self.lock();
        let now = self.clock.now();
        let (admission, change) = inner.admit(now, &self.config);
        drop(inner);
        self.announce(change, now);
        match admission {
            Admission::Allowed { generation, trial } => Ok(Permit {
                breaker: self,
                generation,
                trial,
                done: false,
            }),
            Admission::Refused { state, retry_after } => Err(Rejected {
                provider: self.provider.clone(),
                state,
                retry_after,
            }),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = self.clock.now();
        let inner = self.lock();
        let (calls, failures) = inner.window_counts(now, &self.config);
        Snapshot {
            provider: self.provider.clone(),
            state: inner.state,
            calls_in_window: calls,
            failures_in_window: failures,
            opened_at: inner.opened_at,
            transitions: inner.transitions,
            trial_in_flight: inner.trial_in_flight,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    fn complete(&self, generation: u64, trial: bool, healthy: bool) {
        let mut inner = self.lock();
        let now = self.clock.now();
        let change = inner.complete(now, &self.config, generation, trial, healthy);
        drop(inner);
        self.announce(change, now);
    }

    fn abandon(&self, generation: u64, trial: bool) {
        self.lock().abandon(generation, trial);
    }

    /// Logs and emits a change, outside the lock.
    fn announce(&self, change: Option<Change>, now: Duration) {
        let Some(c) = change else { return };
        let t = Transition {
            provider: self.provider.clone(),
            from: c.from,
            to: c.to,
            calls: c.calls,
            failures: c.failures,
            at: now,
            transitions: c.transitions,
        };
        macro_rules! log {
            ($level:ident, $msg:literal) => {
                tracing::$level!(
                    provider = %t.provider,
                    from = t.from.as_str(),
                    to = t.to.as_str(),
                    failure_rate = t.failure_rate(),
                    calls = t.calls,
                    failures = t.failures,
                    transitions = t.transitions,
                    $msg
                )
            };
        }
        match t.to {
            BreakerState::Open => log!(warn, "circuit breaker opened"),
            BreakerState::HalfOpen => log!(info, "circuit breaker half-open: trial call"),
            BreakerState::Closed => log!(info, "circuit breaker closed"),
        }
        (self.sink)(&t);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent between statements, so a panic elsewhere while
        // holding the lock leaves nothing half-done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Leave to make one call. Record its outcome with [`Permit::record`]; dropping it
/// unrecorded (the caller gave up) counts for nothing, and frees a trial slot.
#[must_use = "record the call's outcome"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    trial: bool,
    done: bool,
}

impl Permit<'_> {
    /// The HALF_OPEN trial: its outcome closes or reopens the breaker.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// `healthy`: the provider answered (success, decline, non-transient 4xx).
    pub fn record(mut self, healthy: bool) {
        self.done = true;
        self.breaker.complete(self.generation, self.trial, healthy);
    }

    pub fn success(self) {
        self.record(true);
    }

    pub fn failure(self) {
        self.record(false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.abandon(self.generation, self.trial);
        }
    }
}

enum Admission {
    Allowed {
        generation: u64,
        trial: bool,
    },
    Refused {
        state: BreakerState,
        retry_after: Duration,
    },
}

struct Change {
    from: BreakerState,
    to: BreakerState,
    calls: u32,
    failures: u32,
    transitions: u64,
}

/// Outcomes completed in the same millisecond share a bucket, which bounds the window
/// to one entry per millisecond however busy the provider.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    at_ms: u64,
    calls: u32,
    failures: u32,
}

/// The state machine, free of clock and locking.
#[derive(Debug)]
struct Inner {
    state: BreakerState,
    window: VecDeque<Bucket>,
    opened_at: Option<Duration>,
    trial_in_flight: bool,
    /// Also the generation: a permit counts only if no transition happened since it
    /// was issued.
    transitions: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            state: BreakerState::Closed,
            window: VecDeque::new(),
            opened_at: None,
            trial_in_flight: false,
            transitions: 0,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    fn admit(&mut self, now: Duration, cfg: &BreakerConfig) -> (Admission, Option<Change>) {
        match self.state {
            BreakerState::Closed => (self.allowed(false), None),
            BreakerState::Open => {
                let half_open_at = self
                    .opened_at
                    .unwrap_or_default()
                    .saturating_add(cfg.open_for);
                if now < half_open_at {
                    let refused = Admission::Refused {
                        state: BreakerState::Open,
                        retry_after: half_open_at - now,
                    };
                    return (refused, None);
                }
                let change = self.go(BreakerState::HalfOpen, 0, 0);
                self.trial_in_flight = true;
                (self.allowed(true), Some(change))
            }
            BreakerState::HalfOpen if self.trial_in_flight => {
                let refused = Admission::Refused {
                    state: BreakerState::HalfOpen,
                    retry_after: Duration::ZERO,
                };
                (refused, None)
            }
            BreakerState::HalfOpen => {
                self.trial_in_flight = true;
                (self.allowed(true), None)
            }
        }
    }

    fn allowed(&self, trial: bool) -> Admission {
        Admission::Allowed {
            generation: self.transitions,
            trial,
        }
    }

    fn complete(
        &mut self,
        now: Duration,
        cfg: &BreakerConfig,
        generation: u64,
        trial: bool,
        healthy: bool,
    ) -> Option<Change> {
        if generation != self.transitions {
            return None; // admitted in an earlier state
        }
        match (self.state, trial) {
            (BreakerState::Closed, false) => {
                self.prune(now, cfg);
                self.push(now, healthy);
                if healthy {
                    return None;
                }
                let (calls, failures) = self.window_counts(now, cfg);
                let trips = calls >= cfg.min_calls
                    && u64::from(failures) * 100
                        >= u64::from(calls) * u64::from(cfg.failure_rate_percent);
                trips.then(|| {
                    self.opened_at = Some(now);
                    self.go(BreakerState::Open, calls, failures)
                })
            }
            (BreakerState::HalfOpen, true) => {
                self.trial_in_flight = false;
                if healthy {
                    self.window.clear();
                    self.opened_at = None;
                    Some(self.go(BreakerState::Closed, 1, 0))
                } else {
                    self.opened_at = Some(now);
                    Some(self.go(BreakerState::Open, 1, 1))
                }
            }
            // Unreachable with a current generation; nothing to count.
            _ => None,
        }
    }

    fn abandon(&mut self, generation: u64, trial: bool) {
        if trial && generation == self.transitions && self.state == BreakerState::HalfOpen {
            self.trial_in_flight = false;
        }
    }

    fn go(&mut self, to: BreakerState, calls: u32, failures: u32) -> Change {
        let from = self.state;
        self.state = to;
        self.transitions += 1;
        Change {
            from,
            to,
            calls,
            failures,
            transitions: self.transitions,
        }
    }

    fn in_window(at_ms: u64, now: Duration, cfg: &BreakerConfig) -> bool {
        millis(now).saturating_sub(at_ms) < millis(cfg.window)
    }

    fn prune(&mut self, now: Duration, cfg: &BreakerConfig) {
        while self
            .window
            .front()
            .is_some_and(|b| !Self::in_window(b.at_ms, now, cfg))
        {
            self.window.pop_front();
        }
    }

    fn push(&mut self, now: Duration, healthy: bool) {
        let at_ms = millis(now);
        let failed = u32::from(!healthy);
        match self.window.back_mut() {
            Some(b) if b.at_ms == at_ms => {
                b.calls = b.calls.saturating_add(1);
                b.failures = b.failures.saturating_add(failed);
            }
            _ => self.window.push_back(Bucket {
                at_ms,
                calls: 1,
                failures: failed,
            }),
        }
    }

    fn window_counts(&self, now: Duration, cfg: &BreakerConfig) -> (u32, u32) {
        self.window
            .iter()
            .filter(|b| Self::in_window(b.at_ms, now, cfg))
            .fold((0u32, 0u32), |(c, f), b| {
                (c.saturating_add(b.calls), f.saturating_add(b.failures))
            })
    }
}

#[cfg(test)]
mod tests;
