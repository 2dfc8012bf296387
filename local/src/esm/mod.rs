//! Event-source mappings: what the Lambda service does for SQS and DynamoDB stream
//! triggers, done locally by polling the emulator.
//!
//! **SQS.** One poller per SQS event. On moto it short-polls (`WaitTimeSeconds 0`: moto
//! serves one request at a time and a long poll would stall every other client) with a
//! small idle backoff (25 ms doubling to 200 ms, reset when messages arrive); on an
//! emulator that serves requests concurrently it long-polls
//! ([`EsmConfig::receive_wait_seconds`]). It collects up to `BatchSize` messages or
//! until `MaximumBatchingWindowInSeconds` has elapsed since the first one, **capped
//! locally** at [`EsmConfig::max_batching_window`] (100 ms by default: a one-second
//! window only adds latency on a laptop); a receive that drains the queue is followed by
//! one wait for the rest of the window and one last receive. The batch is delivered
//! as Lambda's `aws:sqs` event; with `ReportBatchItemFailures` the reported
//! `batchItemFailures` stay in the queue and the rest are deleted; an invocation error
//! (or, without `ReportBatchItemFailures`, any failure) keeps the whole batch. Kept
//! messages are made visible again after [`EsmConfig::retry_delay`] (1 s by default)
//! rather than the queue's 70 s visibility timeout, so the emulator's own
//! `RedrivePolicy` moves a poison message to the DLQ after `maxReceiveCount` receives,
//! as in AWS, only sooner.
//!
//! **Chaos switches (tests).** [`EsmConfig::duplicate_deliveries`] delivers every
//! message twice (or the share [`EsmConfig::duplicate_share`] of them).
//! [`EsmConfig::shuffle_deliveries`] delivers out of order: each received message is,
//! with probability 1/3, held back in the poller for a random time up to
//! [`EsmConfig::shuffle_max_hold`], so messages received later overtake it; every batch
//! is handed over in a scrambled order; and with duplicates on, the second copy is held
//! back too, so it arrives later, between other messages, rather than right after the
//! first. Held messages stay in flight (received, invisible) in the queue, so they count
//! in `ApproximateNumberOfMessagesNotVisible` and nothing is lost if the poller stops.
//! They are held in memory rather than made visible again with a delay because every
//! receive counts toward the DLQ's `maxReceiveCount`. A message is deleted (or retried)
//! once all its copies were delivered. The shuffling poller receives only while it holds
//! fewer than `BatchSize` messages and delivers the ones longest due first (scrambled
//! within the batch), so a busy poller does not pile up received messages: one held past
//! the queue's visibility timeout would be received again, and every receive counts
//! toward the DLQ's `maxReceiveCount`. The decisions come from a small PRNG seeded by
//! [`EsmConfig::shuffle_seed`] and the queue's logical id, so one seed replays the same
//! decisions for the same arrival order (arrival timing itself is not deterministic).
//!
//! **Concurrency.** [`EsmConfig::sqs_concurrency`] pollers share each SQS queue (one by
//! default), each handling one batch at a time, as Lambda runs several batches of a
//! mapping at once.
//! Stream records are never shuffled: a shard is ordered in AWS too.
//!
//! **DynamoDB streams.** One poller per stream event: `DescribeStream`,
//! `GetShardIterator` (`TRIM_HORIZON` or `LATEST` per `StartingPosition`), `GetRecords`
//! in a loop; records become Lambda's `aws:dynamodb` event. A reported failure retries
//! from that record (records before it are done); an invocation error retries the
//! batch (halved each time with `BisectBatchOnFunctionError`). After
//! `MaximumRetryAttempts` (or [`EsmConfig::default_stream_retries`] when the template
//! sets none) the record (or batch) is skipped with an error log and, if the template
//! names an `OnFailure` SQS destination, a Lambda-style failure record is sent there.

use std::time::Duration;

mod chaos;
mod events;
mod on_failure;
mod sqs;
mod stream;

pub use chaos::SplitMix64;
pub use events::{parse_item_failures, sqs_event, stream_event};
pub use sqs::{receive_batch, receive_batch_waiting, spawn_sqs_poller, SqsSource};
pub use stream::{spawn_stream_poller, StreamSource};

/// Knobs of the local event-source mappings.
#[derive(Debug, Clone)]
pub struct EsmConfig {
    /// Upper bound applied to the template's `MaximumBatchingWindowInSeconds`.
    pub max_batching_window: Duration,
    /// How soon a failed SQS message (or stream batch) is retried (rounded up to whole
    /// seconds for SQS, whose visibility timeout has a one-second resolution).
    pub retry_delay: Duration,
    /// Deliver every SQS batch twice (the second time as a redelivery with
    /// `ApproximateReceiveCount` + 1): proves handlers are idempotent. Off by default.
    pub duplicate_deliveries: bool,
    /// With `duplicate_deliveries`, the share of messages (of batches, unshuffled)
    /// delivered twice, decided per message id; 1.0 (the default): all of them.
    pub duplicate_share: f64,
    /// Deliver SQS messages out of order (see the module docs). Off by default.
    pub shuffle_deliveries: bool,
    /// Seed of the shuffle decisions; `None`: 0 (the local stack picks and logs a random
    /// one, or takes `DISHPATCH_SHUFFLE_SEED`).
    pub shuffle_seed: Option<u64>,
    /// The longest a message (or its duplicate) is held back when shuffling.
    pub shuffle_max_hold: Duration,
    /// Idle backoff between empty polls: starts at `idle_backoff_min`, doubles up to
    /// `idle_backoff_max`.
    pub idle_backoff_min: Duration,
    pub idle_backoff_max: Duration,
    /// Retries of a failing stream record when the template sets no
    /// `MaximumRetryAttempts` (Lambda's default would retry until the record expires).
    pub default_stream_retries: u32,
    /// `WaitTimeSeconds` of a receive while a poller has nothing gathered: 0 (short
    /// polls and the idle backoff) on moto, which serves one request at a time, so a
    /// long poll would stall every other client; an emulator that serves requests
    /// concurrently is long-polled as Lambda does, with no empty receives in between.
    /// Default: [`receive_wait_for`] the emulator `DISHPATCH_EMULATOR` names.
    pub receive_wait_seconds: i32,
    /// Batches of one SQS mapping handled at once: that many pollers share the queue,
    /// as Lambda scales a mapping's pollers up to its `ScalingConfig.MaximumConcurrency`
    /// (10 in the template). 1 (the default): one batch at a time, so one slow
    /// invocation (a card call waiting out its timeouts) holds up the whole queue.
    pub sqs_concurrency: usize,
    /// Batches of one stream shard handled at once, split by item key (Lambda's
    /// `ParallelizationFactor`, 1 to 10): one item's records stay in order. 1 (the
    /// default, as the template leaves it): the shard one batch at a time.
    pub stream_parallelization: usize,
}

/// The receive wait for an emulator (a `DISHPATCH_EMULATOR` name): 0 for moto, 2 s for
/// the others (ministack when none is named), which serve requests concurrently.
pub fn receive_wait_for(emulator: Option<&str>) -> i32 {
    match emulator.map(str::trim) {
        Some("moto") => 0,
        _ => 2,
    }
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            max_batching_window: Duration::from_millis(100),
            retry_delay: Duration::from_secs(1),
            duplicate_deliveries: false,
            duplicate_share: 1.0,
            shuffle_deliveries: false,
            shuffle_seed: None,
            shuffle_max_hold: Duration::from_millis(600),
            idle_backoff_min: Duration::from_millis(25),
            idle_backoff_max: Duration::from_millis(200),
            default_stream_retries: 10,
            receive_wait_seconds: receive_wait_for(
                std::env::var("DISHPATCH_EMULATOR").ok().as_deref(),
            ),
            sqs_concurrency: 1,
            stream_parallelization: 1,
        }
    }
}

struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(super) fn new(cfg: &EsmConfig) -> Backoff {
        Backoff {
            min: cfg.idle_backoff_min,
            max: cfg.idle_backoff_max.max(cfg.idle_backoff_min),
            current: cfg.idle_backoff_min,
        }
    }
    /// Sleeps the current backoff (at most `cap`) and doubles it.
    pub(super) async fn wait(&mut self, cap: Option<Duration>) {
        tokio::time::sleep(cap.map_or(self.current, |c| self.current.min(c))).await;
        self.current = (self.current * 2).min(self.max);
    }
    pub(super) fn reset(&mut self) {
        self.current = self.min;
    }
}
