//! The chaos soak: many orders through the whole local stack while every fault class
//! is injected, then the invariant checker at rest.
//!
//! ```text
//! dishpatch-local soak --orders 1000 --seed 7 --crash-rate 0.02 --psp-failure-rate 0.05
//! ```
//!
//! Fault classes (each with its knob in [`SoakConfig`]):
//!
//! * **handler crashes mid-batch**: every SQS-driven function is wrapped by
//!   [`crate::faults::crash_mid_batch`]; the crashed batch comes back whole;
//! * **duplicate and delayed deliveries**: the event-source mapping's
//!   `duplicate_deliveries` and `shuffle_deliveries` (messages held back up to
//!   [`SoakConfig::max_hold`], batches scrambled);
//! * **card provider**: a share of card orders carry decline, timeout,
//!   charge-then-timeout and error tokens; the sandbox fails a share of calls, adds
//!   latency, and goes down for short windows ([`chaos`]);
//! * **courier shortage**: fewer couriers than orders in flight;
//! * **customer cancels** at random moments; **out of stock** (a scarce item) and
//!   **insufficient funds** (small wallets) happen as they would;
//! * **AWS API errors and throttling** between the functions and the emulator: the
//!   local stack's [`crate::awsproxy`] answers a share of the functions' calls with
//!   the service's throttling error or a 500, or applies the call and loses its answer.
//!
//! At the end it waits until every accepted order is terminal and the queues are
//! drained, runs the [`crate::invariants`] checker plus the card provider's ledger
//! ([`ledger`]), and prints [`SoakReport`]. Violations make the CLI exit non-zero.

mod chaos;
mod counting;
mod driver;
pub mod ledger;
mod report;
mod setup;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::awsproxy::{AwsFaults, AwsProxyConfig};
use crate::faults::{self, CrashPlan};
use crate::invariants::CheckOptions;
use crate::template::Template;
use crate::{LocalStack, LocalStackOptions, Result};

pub use chaos::Outages;
pub use counting::{Counts, MessageCounts};
pub use driver::{Outcome, Plan};
pub use report::{Inputs, SoakReport};

/// Functions driven by SQS, in the template's order: the ones that crash and whose
/// messages are counted.
pub fn sqs_functions() -> Result<Vec<String>> {
    let template = Template::embedded()?;
    let driven = template
        .functions
        .iter()
        .filter(|f| f.sqs_events().next().is_some());
    Ok(driven.map(|f| f.binary.clone()).collect())
}

/// The most orders in flight [`SoakConfig::scaled`] gives a long run.
pub const MAX_SCALED_CONCURRENCY: usize = 192;

/// What to run and which faults to inject. [`SoakConfig::default`] is the full
/// 1,000-order run with every fault class on; [`SoakConfig::short`] the CI version.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub orders: usize,
    pub seed: u64,
    /// Orders in flight at once (placed and not yet terminal).
    pub concurrency: usize,
    /// Batches of each SQS queue handled at once (the event-source mapping's
    /// concurrency; Lambda runs up to the template's `MaximumConcurrency`, 10), and
    /// batches of a table stream handled at once (split by item key, as Lambda's
    /// `ParallelizationFactor` does).
    pub pollers: usize,
    /// Soak customers (each with a wallet).
    pub customers: usize,
    /// Share of customers whose wallet holds little (insufficient funds).
    pub poor_customer_share: f64,
    /// Couriers in all (the demo's two plus extra ones).
    pub couriers: usize,
    /// Longest a courier takes to deliver once dispatched.
    pub courier_delay_max: Duration,
    /// Chance per message (after the first of a batch) that the invocation crashes.
    pub crash_rate: f64,
    pub duplicate_deliveries: bool,
    /// The share of messages delivered twice (with `duplicate_deliveries`).
    pub duplicate_share: f64,
    /// Out-of-order, delayed deliveries (the event-source mapping's shuffle).
    pub shuffle_deliveries: bool,
    /// The longest a message is held back when shuffling.
    pub max_hold: Duration,
    /// How soon a failed or crashed SQS message comes back.
    pub retry_delay: Duration,
    /// Share of orders paid by card.
    pub card_share: f64,
    /// Shares of card orders with each fault token (the rest: `tok_visa`).
    pub decline_share: f64,
    pub charge_then_timeout_share: f64,
    pub timeout_share: f64,
    pub error_token_share: f64,
    /// The sandbox's share of calls answered 503, and latency added to each call.
    pub psp_failure_rate: f64,
    pub psp_latency: Duration,
    /// A provider outage of `psp_outage` every `psp_outage_every` while orders are
    /// placed (zero: none).
    pub psp_outage_every: Duration,
    pub psp_outage: Duration,
    /// Share of orders the customer cancels, at a random moment within `cancel_within`
    /// of placing it.
    pub cancel_share: f64,
    pub cancel_within: Duration,
    /// Share of orders with a line of the scarce item, and its stock.
    pub scarce_share: f64,
    pub scarce_stock: i64,
    /// Saga deadlines (`STEP_TIMEOUT_SECONDS`, `COMPENSATION_TIMEOUT_SECONDS`).
    pub step_timeout_secs: u32,
    pub compensation_timeout_secs: u32,
    /// Shares of the functions' AWS calls answered with a 500, with a throttling
    /// error, or applied and then answered with a 500 (a lost response).
    pub aws_error_rate: f64,
    pub aws_throttle_rate: f64,
    pub aws_lost_response_rate: f64,
    /// How long the stack may take to come to rest after the last order settled.
    pub settle_timeout: Duration,
    /// Count a dead letter of a terminal order as a violation (else it is listed).
    pub strict_dead_letters: bool,
    pub endpoint: Option<String>,
    pub prefix: String,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            orders: 1000,
            seed: 1,
            concurrency: 32,
            pollers: 4,
            customers: 60,
            poor_customer_share: 0.1,
            couriers: 10,
            courier_delay_max: Duration::from_millis(1500),
            crash_rate: 0.02,
            duplicate_deliveries: true,
            duplicate_share: 0.25,
            shuffle_deliveries: true,
            max_hold: Duration::from_millis(600),
            retry_delay: Duration::from_secs(2),
            card_share: 0.3,
            decline_share: 0.08,
            charge_then_timeout_share: 0.04,
            timeout_share: 0.005,
            error_token_share: 0.03,
            psp_failure_rate: 0.05,
            psp_latency: Duration::from_millis(20),
            psp_outage_every: Duration::from_secs(120),
            psp_outage: Duration::from_secs(2),
            cancel_share: 0.12,
            cancel_within: Duration::from_secs(4),
            scarce_share: 0.08,
            scarce_stock: 30,
            step_timeout_secs: 40,
            compensation_timeout_secs: 20,
            aws_error_rate: 0.005,
            aws_throttle_rate: 0.01,
            aws_lost_response_rate: 0.002,
            settle_timeout: Duration::from_secs(600),
            strict_dead_letters: false,
            endpoint: None,
            prefix: "soak".to_owned(),
        }
    }
}

impl SoakConfig {
    /// The full run sized for `orders`: the default's fault mix, with what is per
    /// order kept per order. Up to 1,000 orders this is [`SoakConfig::default`] with
    /// `orders` set. Beyond, the orders in flight grow with the run (32 per 1,000, up to
    /// [`MAX_SCALED_CONCURRENCY`]) and the couriers with them (10 for 32: the same
    /// shortage); customers (60 per 1,000, a tenth of them poor) and the scarce item's
    /// stock (30 units per 1,000) grow with the orders, so wallets and stock run out
    /// for the same share of orders as at 1,000.
    pub fn scaled(orders: usize) -> Self {
        let d = SoakConfig::default();
        let per_thousand = |n: usize| (orders * n).div_ceil(1000);
        let concurrency = per_thousand(d.concurrency).clamp(d.concurrency, MAX_SCALED_CONCURRENCY);
        SoakConfig {
            orders,
            concurrency,
            couriers: (concurrency * d.couriers).div_ceil(d.concurrency),
            customers: per_thousand(d.customers).max(d.customers),
            scarce_stock: (per_thousand(d.scarce_stock as usize) as i64).max(d.scarce_stock),
            ..d
        }
    }

    /// The CI version: 100 orders, every fault class on, stock scaled down, short saga
    /// deadlines.
    pub fn short() -> Self {
        SoakConfig {
            orders: 100,
            concurrency: 24,
            couriers: 8,
            scarce_stock: 6,
            customers: 20,
            courier_delay_max: Duration::from_millis(800),
            psp_outage_every: Duration::from_secs(40),
            // Short deadlines keep the tail (timeouts, undo retries) within the test;
            // healthy steps that overrun them are compensated, which is exercise too.
            step_timeout_secs: 15,
            compensation_timeout_secs: 6,
            settle_timeout: Duration::from_secs(120),
            ..Default::default()
        }
    }
}

/// Runs the soak on a fresh stack (prefix `config.prefix`) and returns its report.
pub async fn run(config: &SoakConfig) -> Result<SoakReport> {
    let started = Instant::now();
    let crash = CrashPlan {
        // Longer than a crashed batch takes to come back (held copies, retry delay,
        // a poll): its redelivery runs clean.
        cooldown: config.retry_delay * 3 + config.max_hold + Duration::from_secs(1),
        ..CrashPlan::new(config.crash_rate, config.seed)
    };
    let counts = MessageCounts::default();
    let mut opts = LocalStackOptions::new(&config.prefix)
        .retry_delay(config.retry_delay)
        .duplicate_deliveries(config.duplicate_deliveries)
        .shuffle_deliveries(config.shuffle_deliveries)
        .shuffle_seed(config.seed)
        .function_env(
            "*",
            "STEP_TIMEOUT_SECONDS",
            &config.step_timeout_secs.to_string(),
        )
        .function_env(
            "*",
            "COMPENSATION_TIMEOUT_SECONDS",
            &config.compensation_timeout_secs.to_string(),
        );
    opts.esm.shuffle_max_hold = config.max_hold;
    opts.esm.duplicate_share = config.duplicate_share;
    opts.esm.sqs_concurrency = config.pollers.max(1);
    opts.esm.stream_parallelization = config.pollers.clamp(1, 10);
    // Idle pollers cost a single-threaded emulator (moto) more than the latency they
    // save; one that serves requests concurrently is long-polled (`receive_wait_for`).
    if opts.esm.receive_wait_seconds == 0 {
        opts.esm.idle_backoff_max = Duration::from_millis(400);
    }
    if let Some(e) = &config.endpoint {
        opts = opts.endpoint(e);
    }
    for (i, name) in sqs_functions()?.into_iter().enumerate() {
        // Each function its own decision sequence, one shared count.
        let plan = CrashPlan {
            seed: config.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)),
            ..crash.clone()
        };
        let counts = counts.clone();
        opts = opts.wrap_function(&name.clone(), move |inner| {
            let counted = counts.wrap(&name, inner);
            if plan.rate > 0.0 {
                faults::crash_mid_batch(counted, plan.clone())
            } else {
                counted
            }
        });
    }
    // Always through the proxy: its call counts go in the summary.
    opts = opts.aws_proxy(
        AwsProxyConfig::default()
            .meter_units(false)
            .faults(AwsFaults {
                error_rate: config.aws_error_rate,
                throttle_rate: config.aws_throttle_rate,
                lost_response_rate: config.aws_lost_response_rate,
                seed: config.seed,
            }),
    );
    let local = LocalStack::start(opts).await?;
    let result = drive(config, &local, &crash, &counts, started).await;
    local.shutdown();
    result
}

async fn drive(
    config: &SoakConfig,
    local: &LocalStack,
    crash: &CrashPlan,
    counts: &MessageCounts,
    started: Instant,
) -> Result<SoakReport> {
    let world = setup::prepare(config, local).await?;
    let psp = local.psp.as_ref().map(|p| p.handle());
    let chaos = psp.clone().map(|h| chaos::start(config, h));

    let outcomes = driver::run(config, local, &world).await;
    let placing_done = started.elapsed();
    let outages = match chaos {
        Some(c) => c.stop().await,
        None => chaos::Outages::default(),
    };

    // At rest: every order terminal, the queues drained, then every invariant.
    let opts = CheckOptions::quiescent().initial_balances(world.initial_balances.clone());
    let checked = settle(&local.checker(), &opts, config.settle_timeout).await?;
    let orders = ledger::scan_orders(local).await?;
    let ledger = match &psp {
        Some(h) => ledger::check(&h.charges(), &orders),
        None => Vec::new(),
    };
    Ok(SoakReport::new(report::Inputs {
        config: config.clone(),
        outcomes,
        orders,
        checked,
        ledger,
        crashes: crash.crashes.load(std::sync::atomic::Ordering::Relaxed),
        counts: counts.snapshot(),
        aws: local.aws_proxy().map(|p| p.counts()),
        outages,
        placing: placing_done,
        duration: started.elapsed(),
        couriers: world.couriers,
        shuffle_seed: local.shuffle_seed,
    }))
}

/// Waits until no work queue holds a visible or in-flight message, then checks. Unlike
/// [`crate::invariants::Checker::check_at_quiescence`] it does not wait for dead letters
/// to go away: here they are expected (see [`SoakReport`]). Other violations are
/// re-checked until `timeout` (a stream relay may lag a write); queues still busy then
/// are reported as `messages.quiescent`.
async fn settle(
    checker: &crate::invariants::Checker,
    opts: &CheckOptions,
    timeout: Duration,
) -> Result<crate::invariants::Report> {
    use crate::invariants::Invariant;
    let deadline = Instant::now() + timeout;
    let idle = || async {
        let backlog = checker.backlog().await?;
        Ok::<bool, crate::Error>(backlog.values().all(|d| d.busy() == 0))
    };
    loop {
        if idle().await? {
            let report = checker.check(opts).await?;
            let real = report
                .violations
                .iter()
                .any(|v| v.invariant != Invariant::NoDeadLetters);
            tokio::time::sleep(Duration::from_millis(250)).await;
            if (!real || Instant::now() >= deadline) && idle().await? {
                return Ok(report);
            }
        }
        if Instant::now() >= deadline {
            // Adds the busy queues to the report.
            return Ok(checker.check_at_quiescence(opts, Duration::ZERO).await?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Hides the panic messages of injected crashes (hundreds of them in a long run); any
/// other panic is printed as before.
pub fn quiet_injected_crashes() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if msg != Some(faults::CRASH_MESSAGE) {
            previous(info);
        }
    }));
}

/// Orders by a key, for the summary.
pub type Tally = BTreeMap<String, usize>;

/// Shared between the order tasks: the state of the world the soak set up.
#[derive(Debug, Clone)]
pub struct World {
    pub customers: Arc<Vec<String>>,
    pub initial_balances: Vec<(String, i64)>,
    pub couriers: usize,
}
