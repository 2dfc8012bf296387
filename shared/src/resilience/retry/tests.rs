use super::*;
use crate::resilience::ManualClock;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::Mutex;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An operation that answers from a script, one entry per attempt, taking `latency`
/// of clock time each.
struct Scripted<'a> {
    clock: &'a ManualClock,
    latency: Duration,
    answers: Mutex<VecDeque<Result<&'static str, Fault>>>,
    attempts: Mutex<u32>,
}

impl<'a> Scripted<'a> {
    fn new(clock: &'a ManualClock, answers: &[Result<&'static str, Fault>]) -> Self {
        Scripted {
            clock,
            latency: Duration::ZERO,
            answers: Mutex::new(answers.iter().cloned().collect()),
            attempts: Mutex::new(0),
        }
    }

    fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    async fn attempt(&self) -> Result<&'static str, Fault> {
        *self.attempts.lock().unwrap() += 1;
        self.clock.advance(self.latency);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("no more scripted answers")
    }

    fn attempts(&self) -> u32 {
        *self.attempts.lock().unwrap()
    }
}

async fn run(clock: &ManualClock, op: &Scripted<'_>, call: Call) -> Result<&'static str, Fault> {
    retry(&RetryPolicy::default(), clock, clock, call, || op.attempt()).await
}

fn within_jitter(slept: &[Duration]) {
    let nominal = [ms(500), ms(1000), ms(2000)];
    for (i, d) in slept.iter().enumerate() {
        let n = nominal[i];
        assert!(
            *d >= n.mul_f64(0.8) && *d <= n.mul_f64(1.2),
            "retry {i}: waited {d:?}, nominal {n:?}"
        );
    }
}

#[test]
fn default_policy_is_500ms_1s_2s_three_retries_5s_attempts() {
    let p = RetryPolicy::default();
    assert_eq!(
        (0..3).map(|n| p.nominal_delay(n)).collect::<Vec<_>>(),
        vec![ms(500), ms(1000), ms(2000)]
    );
    assert_eq!(p.max_retries, 3);
    assert_eq!(p.attempt_timeout, Duration::from_secs(5));
}

#[test]
fn jitter_is_plus_minus_twenty_percent() {
    let p = RetryPolicy::default();
    assert_eq!(p.delay(0, 0.0), ms(400));
    assert_eq!(p.delay(0, 0.5), ms(500));
    assert_eq!(p.delay(1, 0.0), ms(800));
    assert_eq!(p.delay(2, 1.0), ms(2400));
    // Garbage draws are clamped, never a wild wait.
    assert_eq!(p.delay(0, f64::NAN), ms(500));
    assert_eq!(p.delay(0, 7.0), ms(600));
}

#[test]
fn nominal_delay_saturates_instead_of_overflowing() {
    let p = RetryPolicy::default();
    assert!(p.nominal_delay(40) >= p.nominal_delay(31));
}

#[test]
fn decide_stops_for_each_reason_in_order() {
    let p = RetryPolicy::default();
    let keyed = Call::with_idempotency_key();
    let now = Duration::ZERO;
    let stop = |f, c: &Call, n| p.decide(f, c, n, now, 0.5);
    assert_eq!(
        stop(Fault::Declined, &keyed, 0),
        Decision::Stop(Stop::NotTransient)
    );
    assert_eq!(
        stop(Fault::Status(400), &keyed, 0),
        Decision::Stop(Stop::NotTransient)
    );
    assert_eq!(
        stop(Fault::CircuitOpen, &keyed, 0),
        Decision::Stop(Stop::NotTransient)
    );
    assert_eq!(
        stop(Fault::Status(503), &Call::not_idempotent(), 0),
        Decision::Stop(Stop::NotRepeatable)
    );
    assert_eq!(
        stop(Fault::Timeout, &keyed, 3),
        Decision::Stop(Stop::Exhausted)
    );
    assert_eq!(
        stop(Fault::Network, &keyed, 2),
        Decision::Retry { after: ms(2000) }
    );
    // 500 ms wait + 5 s attempt must end by the deadline.
    let tight = keyed.deadline(Deadline::at(ms(5_499)));
    assert_eq!(
        stop(Fault::Status(502), &tight, 0),
        Decision::Stop(Stop::Deadline)
    );
    let enough = keyed.deadline(Deadline::at(ms(5_500)));
    assert_eq!(
        stop(Fault::Status(502), &enough, 0),
        Decision::Retry { after: ms(500) }
    );
}

#[tokio::test]
async fn two_503s_then_200_succeeds_after_two_retries_within_jitter() {
    let clock = ManualClock::new();
    let op = Scripted::new(
        &clock,
        &[
            Err(Fault::Status(503)),
            Err(Fault::Status(503)),
            Ok("approved"),
        ],
    );
    assert_eq!(
        run(&clock, &op, Call::with_idempotency_key()).await,
        Ok("approved")
    );
    assert_eq!(op.attempts(), 3);
    let slept = clock.slept();
    assert_eq!(slept.len(), 2);
    within_jitter(&slept);
}

#[tokio::test]
async fn a_decline_is_never_retried() {
    for decline in [Fault::Declined, Fault::Status(402)] {
        let clock = ManualClock::new();
        let op = Scripted::new(&clock, &[Err(decline)]);
        assert_eq!(
            run(&clock, &op, Call::with_idempotency_key()).await,
            Err(decline)
        );
        assert_eq!(op.attempts(), 1);
        assert!(clock.slept().is_empty());
    }
}

#[tokio::test]
async fn other_4xx_is_never_retried() {
    for status in [400, 401, 403, 404, 409, 422] {
        let clock = ManualClock::new();
        let op = Scripted::new(&clock, &[Err(Fault::Status(status))]);
        assert_eq!(op_result(&clock, &op).await, Err(Fault::Status(status)));
        assert_eq!(op.attempts(), 1, "{status}");
    }
}

async fn op_result(clock: &ManualClock, op: &Scripted<'_>) -> Result<&'static str, Fault> {
    run(clock, op, Call::idempotent()).await
}

#[tokio::test]
async fn a_non_idempotent_call_without_a_key_is_never_retried() {
    let clock = ManualClock::new();
    let op = Scripted::new(&clock, &[Err(Fault::Status(503))]);
    assert_eq!(
        run(&clock, &op, Call::not_idempotent()).await,
        Err(Fault::Status(503))
    );
    assert_eq!(op.attempts(), 1);
    assert!(clock.slept().is_empty());
}

#[tokio::test]
async fn rate_limited_timeouts_and_network_errors_are_retried() {
    let clock = ManualClock::new();
    let op = Scripted::new(
        &clock,
        &[
            Err(Fault::Status(429)),
            Err(Fault::Timeout),
            Err(Fault::Network),
            Ok("ok"),
        ],
    );
    assert_eq!(run(&clock, &op, Call::idempotent()).await, Ok("ok"));
    assert_eq!(op.attempts(), 4);
    within_jitter(&clock.slept());
}

#[tokio::test]
async fn gives_up_after_three_retries_with_the_last_error() {
    let clock = ManualClock::new();
    let op = Scripted::new(
        &clock,
        &[
            Err(Fault::Status(500)),
            Err(Fault::Status(502)),
            Err(Fault::Status(503)),
            Err(Fault::Status(504)),
        ],
    );
    assert_eq!(
        run(&clock, &op, Call::idempotent()).await,
        Err(Fault::Status(504))
    );
    assert_eq!(op.attempts(), 4);
    let slept = clock.slept();
    assert_eq!(slept.len(), 3);
    within_jitter(&slept);
}

#[tokio::test]
async fn a_deadline_too_short_for_the_next_wait_and_attempt_stops_retrying() {
    // Attempts take 1 s. By the end of attempt 2 (2.4..2.6 s) the next retry needs
    // at least 0.8 s + 5 s, past the 8 s deadline.
    let clock = ManualClock::new();
    let op = Scripted::new(&clock, &[Err(Fault::Timeout), Err(Fault::Timeout)])
        .latency(Duration::from_secs(1));
    let call = Call::idempotent().deadline(Deadline::within(&clock, Duration::from_secs(8)));
    assert_eq!(run(&clock, &op, call).await, Err(Fault::Timeout));
    assert_eq!(op.attempts(), 2);
    assert_eq!(clock.slept().len(), 1);
    assert!(clock.now() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_deadline_already_past_allows_no_retry() {
    let clock = ManualClock::at(Duration::from_secs(10));
    let op = Scripted::new(&clock, &[Err(Fault::Status(503))]);
    let call = Call::idempotent().deadline(Deadline::at(Duration::from_secs(9)));
    assert_eq!(run(&clock, &op, call).await, Err(Fault::Status(503)));
    assert_eq!(op.attempts(), 1);
}

#[test]
fn random_units_are_in_range_and_spread() {
    let draws: Vec<f64> = (0..1000).map(|_| unit_random()).collect();
    assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
    assert!(draws.iter().any(|u| *u < 0.25) && draws.iter().any(|u| *u > 0.75));
}

fn any_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Network),
        Just(Fault::Timeout),
        Just(Fault::Declined),
        Just(Fault::CircuitOpen),
        (100u16..700).prop_map(Fault::Status),
    ]
}

proptest! {
    #[test]
    fn delays_stay_within_twenty_percent(n in 0u32..3, unit in 0.0f64..1.0) {
        let p = RetryPolicy::default();
        let d = p.delay(n, unit);
        let nominal = p.nominal_delay(n);
        prop_assert!(d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2));
    }

    #[test]
    fn decide_never_retries_what_it_must_not(
        fault in any_fault(),
        repeatable in any::<bool>(),
        retries_done in 0u32..6,
        now_ms in 0u64..20_000,
        deadline_ms in proptest::option::of(0u64..30_000),
        unit in 0.0f64..1.0,
    ) {
        let p = RetryPolicy::default();
        let call = Call {
            repeatable,
            deadline: deadline_ms.map(|d| Deadline::at(ms(d))),
        };
        if let Decision::Retry { after } = p.decide(fault, &call, retries_done, ms(now_ms), unit) {
            prop_assert!(fault.is_transient());
            prop_assert!(repeatable);
            prop_assert!(retries_done < p.max_retries);
            if let Some(d) = deadline_ms {
                prop_assert!(ms(now_ms) + after + p.attempt_timeout <= ms(d));
            }
        }
    }
}
