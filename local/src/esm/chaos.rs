//! The chaos switches of the SQS poller: duplicate deliveries and shuffled ones (held
//! back messages, scrambled batches), driven by a seeded PRNG.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::Message;

use super::events::sqs_event_of;
use super::sqs::{batch_failures, SqsPoller};
use super::Backoff;

/// SplitMix64: a tiny, seedable PRNG for the shuffle decisions (no cryptography here).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The seed of one poller: the stack's seed mixed with the queue's logical id.
    pub fn for_queue(seed: u64, queue: &str) -> Self {
        // FNV-1a of the name, so the same seed gives each queue its own sequence.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in queue.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        SplitMix64(seed ^ h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Uniform in `1 ms ..= max`.
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let ms = (max.as_millis() as u64).max(1);
        Duration::from_millis(1 + self.below(ms))
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A received message the shuffling poller has not finished with.
struct Held {
    msg: Message,
    /// Not delivered before this.
    due: Instant,
    /// Copies still to deliver (2 with duplicates, else 1).
    left: u32,
    /// Copies delivered so far (the redelivery count of the next one).
    delivered: u32,
    /// Some copy was reported failed: the message is retried once all are delivered.
    failed: bool,
}

impl SqsPoller {
    /// Whether the message `id` (or the batch it heads) is delivered twice.
    pub(super) fn duplicates(&self, id: &str) -> bool {
        let share = self.cfg.duplicate_share;
        if !self.cfg.duplicate_deliveries || share <= 0.0 {
            return false;
        }
        share >= 1.0 || {
            let seed = self.cfg.shuffle_seed.unwrap_or(0);
            let draw = SplitMix64::for_queue(seed, id).next_u64();
            ((draw >> 11) as f64 / (1u64 << 53) as f64) < share
        }
    }

    /// The poll loop with [`EsmConfig::shuffle_deliveries`]: like [`SqsPoller::run`],
    /// but messages are held back and batches scrambled (see the module docs).
    pub(super) async fn run_shuffled(self) {
        let batch_size = self.source.batch_size.max(1);
        let window = self
            .source
            .batching_window
            .min(self.cfg.max_batching_window);
        let max_hold = self.cfg.shuffle_max_hold;
        let seed = self.cfg.shuffle_seed.unwrap_or(0);
        // The first poller of a mapping keeps the sequence it always had.
        let seed = seed ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(self.index as u64);
        let mut rng = SplitMix64::for_queue(seed, &self.source.name);
        let mut idle = Backoff::new(&self.cfg);
        let mut held: Vec<Held> = Vec::new();
        tracing::debug!(
            queue = %self.source.name, function = %self.function.name, seed,
            "sqs poller started (shuffled deliveries)"
        );
        loop {
            // Receive, as the plain poller does, but wake up for held messages coming due,
            // and only while fewer than a batch are held: a duplicate needs a second
            // delivery, so a busy poller that received a batch every turn would hold
            // ever more received messages, until some outlived the visibility timeout
            // and came back, each receive counting toward the DLQ's maxReceiveCount.
            let next_due = held.iter().map(|h| h.due).min();
            let room = batch_size.saturating_sub(held.len());
            let fresh = if room > 0 {
                self.gather(room, window, &mut idle, next_due).await
            } else {
                if let Some(due) = next_due {
                    tokio::time::sleep_until(due.into()).await;
                }
                Vec::new()
            };

            // Admit the new messages: a third of them are held back a while.
            let now = Instant::now();
            for msg in fresh {
                let due = if rng.chance(1, 3) {
                    let hold = rng.duration_up_to(max_hold);
                    tracing::debug!(
                        queue = %self.source.name,
                        message = msg.message_id.as_deref().unwrap_or_default(),
                        hold_ms = hold.as_millis() as u64,
                        "holding a message back"
                    );
                    now + hold
                } else {
                    now
                };
                let copies = if self.duplicates(msg.message_id.as_deref().unwrap_or_default()) {
                    2
                } else {
                    1
                };
                held.push(Held {
                    msg,
                    due,
                    left: copies,
                    delivered: 0,
                    failed: false,
                });
            }

            // Deliver what is due, longest due first (so none waits on the draw),
            // scrambled within the batch.
            let now = Instant::now();
            let mut ready: Vec<usize> = (0..held.len()).filter(|&i| held[i].due <= now).collect();
            ready.sort_by_key(|&i| held[i].due);
            ready.truncate(batch_size);
            rng.shuffle(&mut ready);
            if !ready.is_empty() {
                self.deliver_held(&mut held, &ready, &mut rng, max_hold)
                    .await;
            }

            // Settle the messages whose every copy was delivered.
            let (done, pending): (Vec<Held>, Vec<Held>) =
                held.into_iter().partition(|h| h.left == 0);
            held = pending;
            let (fail, ok): (Vec<&Held>, Vec<&Held>) = done.iter().partition(|h| h.failed);
            let ok: Vec<&Message> = ok.iter().map(|h| &h.msg).collect();
            let fail: Vec<&Message> = fail.iter().map(|h| &h.msg).collect();
            self.delete(&ok).await;
            self.retry_later(&fail).await;
        }
    }

    async fn deliver_held(
        &self,
        held: &mut [Held],
        ready: &[usize],
        rng: &mut SplitMix64,
        max_hold: Duration,
    ) {
        let ids: Vec<String> = ready
            .iter()
            .map(|&i| held[i].msg.message_id.clone().unwrap_or_default())
            .collect();
        let event = sqs_event_of(
            ready.iter().map(|&i| (&held[i].msg, held[i].delivered)),
            &self.source.queue_arn,
            &self.source.region,
        );
        let outcome = self.function.invoke(event).await;
        let failed: HashSet<String> =
            batch_failures(outcome, &ids, self.source.report_batch_item_failures)
                .into_iter()
                .collect();
        tracing::debug!(
            function = %self.function.name, batch = ready.len(), failed = failed.len(),
            order = ?ids, "sqs batch delivered (shuffled)"
        );
        let now = Instant::now();
        for (&i, id) in ready.iter().zip(&ids) {
            let h = &mut held[i];
            h.delivered += 1;
            h.left -= 1;
            h.failed |= failed.contains(id);
            if h.left > 0 {
                // The duplicate comes later, after other messages.
                h.due = now + rng.duration_up_to(max_hold);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esm::{EsmConfig, SqsSource};
    use crate::functions::LocalFunction;

    #[test]
    fn the_shuffle_is_seeded() {
        let run = |seed| {
            let mut rng = SplitMix64::for_queue(seed, "SagaQueue");
            let mut v: Vec<u32> = (0..10).collect();
            rng.shuffle(&mut v);
            (v, rng.duration_up_to(Duration::from_millis(600)))
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).0, run(8).0);
        let (mut v, d) = run(7);
        assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(600));
        v.sort();
        assert_eq!(v, (0..10).collect::<Vec<_>>());
        let mut other = SplitMix64::for_queue(7, "PaymentQueue");
        assert_ne!(
            SplitMix64::for_queue(7, "SagaQueue").next_u64(),
            other.next_u64()
        );
        let mut rng = SplitMix64::new(1);
        let held = (0..3000).filter(|_| rng.chance(1, 3)).count();
        assert!((800..1200).contains(&held), "{held}");
    }

    #[test]
    fn a_share_of_messages_is_duplicated_by_id() {
        struct Nop;
        impl dishpatch::runtime::Function for Nop {}
        let poller = |duplicates: bool, share: f64| SqsPoller {
            client: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version_latest()
                    .build(),
            ),
            source: SqsSource {
                name: "SagaQueue".into(),
                queue_url: String::new(),
                queue_arn: String::new(),
                region: "us-east-1".into(),
                batch_size: 10,
                batching_window: Duration::ZERO,
                report_batch_item_failures: true,
            },
            index: 0,
            function: LocalFunction::standalone("nop", std::sync::Arc::new(Nop)),
            cfg: EsmConfig {
                duplicate_deliveries: duplicates,
                duplicate_share: share,
                shuffle_seed: Some(7),
                ..EsmConfig::default()
            },
        };
        let ids: Vec<String> = (0..4000).map(|i| format!("m-{i}")).collect();
        let count = |p: &SqsPoller| ids.iter().filter(|id| p.duplicates(id)).count();
        assert_eq!(count(&poller(true, 1.0)), 4000);
        assert_eq!(count(&poller(false, 1.0)), 0);
        assert_eq!(count(&poller(true, 0.0)), 0);
        let quarter = poller(true, 0.25);
        let n = count(&quarter);
        assert!((800..1200).contains(&n), "{n}");
        // Decided by the id (and seed): a redelivered message gets the same answer.
        let again = poller(true, 0.25);
        assert!(ids
            .iter()
            .all(|id| quarter.duplicates(id) == again.duplicates(id)));
    }
}
