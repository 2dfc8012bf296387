//! Event-source mappings: what the Lambda service does for SQS and DynamoDB stream
//! triggers, done locally by polling the emulator.
//!
//! **SQS.** One poller per SQS event. It short-polls (`WaitTimeSeconds 0`: moto is
//! single-threaded and a long poll would stall every other client) with a small idle
//! backoff (25 ms doubling to 200 ms, reset when messages arrive). It collects up to
//! `BatchSize` messages or until `MaximumBatchingWindowInSeconds` has elapsed since the
//! first one, **capped locally** at [`EsmConfig::max_batching_window`] (100 ms by
//! default: a one-second window only adds latency on a laptop). The batch is delivered
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
//! once all its copies were delivered. The decisions come from a small PRNG seeded by
//! [`EsmConfig::shuffle_seed`] and the queue's logical id, so one seed replays the same
//! decisions for the same arrival order (arrival timing itself is not deterministic).
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use crate::functions::LocalFunction;

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
        }
    }
}

struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(cfg: &EsmConfig) -> Backoff {
        Backoff {
            min: cfg.idle_backoff_min,
            max: cfg.idle_backoff_max.max(cfg.idle_backoff_min),
            current: cfg.idle_backoff_min,
        }
    }
    /// Sleeps the current backoff (at most `cap`) and doubles it.
    async fn wait(&mut self, cap: Option<Duration>) {
        tokio::time::sleep(cap.map_or(self.current, |c| self.current.min(c))).await;
        self.current = (self.current * 2).min(self.max);
    }
    fn reset(&mut self) {
        self.current = self.min;
    }
}

// ------------------------------------------------------------------------ SQS

/// An SQS event source of a function.
#[derive(Debug, Clone)]
pub struct SqsSource {
    /// The queue's logical id in the template (logs, shuffle seed).
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    /// `BatchSize` (Lambda allows up to 10,000 with a batching window; receives are
    /// done 10 at a time).
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`, before the local cap.
    pub batching_window: Duration,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
}

/// Starts a poller delivering `source` to `function`. Abort the handle to stop it.
pub fn spawn_sqs_poller(
    sdk: &SdkConfig,
    source: SqsSource,
    function: LocalFunction,
    cfg: EsmConfig,
) -> JoinHandle<()> {
    let client = aws_sdk_sqs::Client::new(sdk);
    tokio::spawn(async move {
        let poller = SqsPoller {
            client,
            source,
            function,
            cfg,
        };
        poller.run().await
    })
}

struct SqsPoller {
    client: aws_sdk_sqs::Client,
    source: SqsSource,
    function: LocalFunction,
    cfg: EsmConfig,
}

impl SqsPoller {
    async fn run(self) {
        if self.cfg.shuffle_deliveries {
            return self.run_shuffled().await;
        }
        let batch_size = self.source.batch_size.max(1);
        let window = self
            .source
            .batching_window
            .min(self.cfg.max_batching_window);
        let mut idle = Backoff::new(&self.cfg);
        tracing::debug!(queue = %self.source.queue_arn, function = %self.function.name, "sqs poller started");
        loop {
            let batch = self.gather(batch_size, window, &mut idle, None).await;
            self.deliver(batch).await;
        }
    }

    /// One batch, received as Lambda's poller gathers it: once a first message arrives,
    /// receive until the batch is full or the batching window has passed; while nothing
    /// arrives, back off. With `wake_at` (a held message coming due) the idle wait ends
    /// then, and the batch may be empty.
    async fn gather(
        &self,
        batch_size: usize,
        window: Duration,
        idle: &mut Backoff,
        wake_at: Option<Instant>,
    ) -> Vec<Message> {
        let mut batch: Vec<Message> = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            let want = (batch_size - batch.len()).min(10) as i32;
            let received = match self.receive(want).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(queue = %self.source.queue_url, error = %e, "receive failed");
                    tokio::time::sleep(self.cfg.idle_backoff_max).await;
                    Vec::new()
                }
            };
            let got = !received.is_empty();
            if got {
                first_at.get_or_insert_with(Instant::now);
                batch.extend(received);
                idle.reset();
            }
            if batch.len() >= batch_size {
                return batch;
            }
            match first_at {
                None => {
                    let now = Instant::now();
                    if wake_at.is_some_and(|d| d <= now) {
                        return batch;
                    }
                    idle.wait(wake_at.map(|d| d - now)).await;
                }
                Some(t) => {
                    let elapsed = t.elapsed();
                    if elapsed >= window {
                        return batch;
                    }
                    if !got {
                        tokio::time::sleep((window - elapsed).min(self.cfg.idle_backoff_min)).await;
                    }
                }
            }
        }
    }

    /// Whether the message `id` (or the batch it heads) is delivered twice.
    fn duplicates(&self, id: &str) -> bool {
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

    async fn receive(&self, max: i32) -> Result<Vec<Message>, String> {
        receive_batch(&self.client, &self.source.queue_url, max).await
    }

    async fn deliver(&self, batch: Vec<Message>) {
        let ids: Vec<String> = batch
            .iter()
            .map(|m| m.message_id.clone().unwrap_or_default())
            .collect();
        let first = batch.first().and_then(|m| m.message_id.as_deref());
        let deliveries = if self.duplicates(first.unwrap_or_default()) {
            2
        } else {
            1
        };
        let mut failed: HashSet<String> = HashSet::new();
        for attempt in 0..deliveries {
            let event = sqs_event(&batch, &self.source.queue_arn, &self.source.region, attempt);
            let outcome = self.function.invoke(event).await;
            failed.extend(batch_failures(
                outcome,
                &ids,
                self.source.report_batch_item_failures,
            ));
        }
        tracing::debug!(
            function = %self.function.name, batch = batch.len(), failed = failed.len(),
            "sqs batch delivered"
        );
        let (fail, ok): (Vec<&Message>, Vec<&Message>) = batch
            .iter()
            .partition(|m| failed.contains(m.message_id.as_deref().unwrap_or_default()));
        self.delete(&ok).await;
        self.retry_later(&fail).await;
    }

    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) if !out.failed.is_empty() => {
                    tracing::warn!(queue = %self.source.queue_url, failed = ?out.failed, "some deletes failed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    queue = %self.source.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                    "delete failed; the messages will be redelivered"
                ),
            }
        }
    }

    async fn retry_later(&self, messages: &[&Message]) {
        let d = self.cfg.retry_delay;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        let secs = secs.min(43_200) as i32;
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .visibility_timeout(secs)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(
                    queue = %self.source.queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                    "could not shorten the visibility timeout; retry after the queue's timeout"
                );
            }
        }
    }
}

/// One short-poll receive as the poller does it: up to `max` (1-10) messages, no wait,
/// every system attribute and message attribute.
pub async fn receive_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
) -> Result<Vec<Message>, String> {
    client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map(|o| o.messages.unwrap_or_default())
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// Which message ids failed, from an invocation outcome (Lambda's rules: an error or an
/// invalid response fails the whole batch; without `ReportBatchItemFailures` the
/// response is ignored).
fn batch_failures(
    outcome: Result<Value, crate::functions::InvokeError>,
    ids: &[String],
    report: bool,
) -> Vec<String> {
    let resp = match outcome {
        Ok(v) => v,
        Err(_) => return ids.to_vec(),
    };
    if !report {
        return Vec::new();
    }
    match parse_item_failures(&resp) {
        Ok(f) if f.iter().all(|id| ids.contains(id)) => f,
        Ok(f) => {
            tracing::warn!(
                ?f,
                "batchItemFailures names unknown items: the whole batch fails"
            );
            ids.to_vec()
        }
        Err(e) => {
            tracing::warn!(error = %e, "invalid partial batch response: the whole batch fails");
            ids.to_vec()
        }
    }
}

/// `{"batchItemFailures": [{"itemIdentifier": id}]}` -> ids. Null / empty / missing
/// means success.
pub fn parse_item_failures(resp: &Value) -> Result<Vec<String>, String> {
    match resp.get("batchItemFailures") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i.get("itemIdentifier") {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                other => Err(format!("bad itemIdentifier: {other:?}")),
            })
            .collect(),
        Some(other) => Err(format!("batchItemFailures is not a list: {other}")),
    }
}

/// Lambda's `aws:sqs` event for a batch. `redelivery` adds to `ApproximateReceiveCount`
/// (used by duplicate deliveries).
pub fn sqs_event(batch: &[Message], queue_arn: &str, region: &str, redelivery: u32) -> Value {
    sqs_event_of(batch.iter().map(|m| (m, redelivery)), queue_arn, region)
}

/// [`sqs_event`] with a redelivery count per message.
fn sqs_event_of<'a>(
    batch: impl Iterator<Item = (&'a Message, u32)>,
    queue_arn: &str,
    region: &str,
) -> Value {
    let records: Vec<Value> = batch
        .map(|(m, redelivery)| {
            let mut attributes = Map::new();
            for (k, v) in m.attributes.iter().flatten() {
                attributes.insert(k.as_str().to_owned(), Value::String(v.clone()));
            }
            if redelivery > 0 {
                let n: u32 = attributes
                    .get("ApproximateReceiveCount")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                attributes.insert(
                    "ApproximateReceiveCount".into(),
                    Value::String((n + redelivery).to_string()),
                );
            }
            let mut message_attributes = Map::new();
            for (k, a) in m.message_attributes.iter().flatten() {
                let b64 = |b: &aws_sdk_sqs::primitives::Blob| {
                    base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                };
                let mut o = Map::new();
                if let Some(s) = &a.string_value {
                    o.insert("stringValue".into(), Value::String(s.clone()));
                }
                if let Some(b) = &a.binary_value {
                    o.insert("binaryValue".into(), Value::String(b64(b)));
                }
                o.insert(
                    "stringListValues".into(),
                    json!(a.string_list_values.clone().unwrap_or_default()),
                );
                o.insert(
                    "binaryListValues".into(),
                    json!(a
                        .binary_list_values
                        .iter()
                        .flatten()
                        .map(b64)
                        .collect::<Vec<_>>()),
                );
                o.insert("dataType".into(), Value::String(a.data_type.clone()));
                message_attributes.insert(k.clone(), Value::Object(o));
            }
            let mut r = json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body.clone().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            });
            if let Some(md5) = &m.md5_of_message_attributes {
                r["md5OfMessageAttributes"] = Value::String(md5.clone());
            }
            r
        })
        .collect();
    json!({ "Records": records })
}

// ------------------------------------------------------------- SQS, shuffled

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
    /// The poll loop with [`EsmConfig::shuffle_deliveries`]: like [`SqsPoller::run`],
    /// but messages are held back and batches scrambled (see the module docs).
    async fn run_shuffled(self) {
        let batch_size = self.source.batch_size.max(1);
        let window = self
            .source
            .batching_window
            .min(self.cfg.max_batching_window);
        let max_hold = self.cfg.shuffle_max_hold;
        let seed = self.cfg.shuffle_seed.unwrap_or(0);
        let mut rng = SplitMix64::for_queue(seed, &self.source.name);
        let mut idle = Backoff::new(&self.cfg);
        let mut held: Vec<Held> = Vec::new();
        tracing::debug!(
            queue = %self.source.name, function = %self.function.name, seed,
            "sqs poller started (shuffled deliveries)"
        );
        loop {
            // Receive, as the plain poller does, but wake up for held messages coming due.
            let next_due = held.iter().map(|h| h.due).min();
            let fresh = self.gather(batch_size, window, &mut idle, next_due).await;

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

            // Deliver what is due, scrambled.
            let mut ready: Vec<usize> = (0..held.len()).filter(|&i| held[i].due <= now).collect();
            rng.shuffle(&mut ready);
            ready.truncate(batch_size);
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

// ---------------------------------------------------------- DynamoDB streams

/// A DynamoDB stream event source of a function.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub stream_arn: String,
    pub region: String,
    pub batch_size: usize,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub maximum_retry_attempts: Option<u32>,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// URL of the SQS on-failure destination, if any.
    pub on_failure_queue_url: Option<String>,
}

/// Starts a stream poller. Abort the handle to stop it.
pub fn spawn_stream_poller(
    sdk: &SdkConfig,
    source: StreamSource,
    function: LocalFunction,
    cfg: EsmConfig,
) -> JoinHandle<()> {
    let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    tokio::spawn(async move {
        StreamPoller {
            streams,
            sqs,
            source,
            function,
            cfg,
        }
        .run()
        .await
    })
}

struct StreamPoller {
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    source: StreamSource,
    function: LocalFunction,
    cfg: EsmConfig,
}

struct Shard {
    id: String,
    iterator: Option<String>,
    /// Fetched but not yet processed (in order).
    pending: VecDeque<Record>,
    last_sequence: Option<String>,
    /// Failed attempts of the record (or batch) at the head of `pending`.
    attempts: u32,
    /// Current batch limit (halved when bisecting).
    limit: usize,
}

impl StreamPoller {
    async fn run(self) {
        let mut idle = Backoff::new(&self.cfg);
        let mut shards = loop {
            match self.open_shards().await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(stream = %self.source.stream_arn, error = %e, "cannot open stream; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        tracing::debug!(stream = %self.source.stream_arn, shards = shards.len(), "stream poller started");
        loop {
            let mut progressed = false;
            for shard in shards.iter_mut() {
                progressed |= self.step(shard).await;
            }
            if progressed {
                idle.reset();
            } else {
                idle.wait(None).await;
            }
        }
    }

    async fn open_shards(&self) -> Result<Vec<Shard>, String> {
        let desc = self
            .streams
            .describe_stream()
            .stream_arn(&self.source.stream_arn)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?;
        let shards = desc
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default();
        let position = match self.source.starting_position.as_str() {
            "LATEST" => ShardIteratorType::Latest,
            _ => ShardIteratorType::TrimHorizon,
        };
        let mut out = Vec::new();
        for s in shards {
            let id = s.shard_id.unwrap_or_default();
            let iterator = self.iterator(&id, position.clone(), None).await?;
            out.push(Shard {
                id,
                iterator,
                pending: VecDeque::new(),
                last_sequence: None,
                attempts: 0,
                limit: self.source.batch_size.max(1),
            });
        }
        Ok(out)
    }

    async fn iterator(
        &self,
        shard_id: &str,
        kind: ShardIteratorType,
        sequence: Option<&str>,
    ) -> Result<Option<String>, String> {
        self.streams
            .get_shard_iterator()
            .stream_arn(&self.source.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence.map(str::to_owned))
            .send()
            .await
            .map(|o| o.shard_iterator)
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())
    }

    /// Fetches and/or delivers one batch of a shard; whether anything happened.
    async fn step(&self, shard: &mut Shard) -> bool {
        if shard.pending.is_empty() {
            let Some(it) = shard.iterator.clone() else {
                return false; // closed shard, fully read
            };
            match self
                .streams
                .get_records()
                .shard_iterator(it)
                .limit(self.source.batch_size.clamp(1, 1000) as i32)
                .send()
                .await
            {
                Ok(out) => {
                    shard.iterator = out.next_shard_iterator;
                    shard.pending.extend(out.records.unwrap_or_default());
                }
                Err(e) => {
                    let expired = e
                        .as_service_error()
                        .is_some_and(|e| e.is_expired_iterator_exception());
                    tracing::warn!(
                        stream = %self.source.stream_arn, shard = %shard.id,
                        error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e),
                        "get records failed"
                    );
                    if expired {
                        let (kind, seq) = match &shard.last_sequence {
                            Some(s) => (ShardIteratorType::AfterSequenceNumber, Some(s.as_str())),
                            None => (ShardIteratorType::TrimHorizon, None),
                        };
                        if let Ok(it) = self.iterator(&shard.id, kind, seq).await {
                            shard.iterator = it;
                        }
                    }
                    return false;
                }
            }
            if shard.pending.is_empty() {
                return false;
            }
        }
        let n = shard.limit.min(shard.pending.len()).max(1);
        let batch: Vec<Record> = shard.pending.iter().take(n).cloned().collect();
        let seqs: Vec<String> = batch.iter().map(sequence_number).collect();
        let event = stream_event(&batch, &self.source.stream_arn, &self.source.region);
        let outcome = self.function.invoke(event).await;

        let failed_at: Option<usize> = match &outcome {
            Err(_) => Some(0),
            Ok(_) if !self.source.report_batch_item_failures => None,
            Ok(resp) => match parse_item_failures(resp) {
                Ok(f) if f.is_empty() => None,
                // The earliest reported failure: everything before it succeeded.
                Ok(f) => match f
                    .iter()
                    .filter_map(|id| seqs.iter().position(|s| s == id))
                    .min()
                {
                    Some(i) => Some(i),
                    None => Some(0),
                },
                Err(_) => Some(0),
            },
        };
        let done = failed_at.unwrap_or(n);
        for _ in 0..done {
            if let Some(r) = shard.pending.pop_front() {
                shard.last_sequence = Some(sequence_number(&r));
            }
        }
        let Some(_) = failed_at else {
            shard.attempts = 0;
            shard.limit = self.source.batch_size.max(1);
            return true;
        };
        if done > 0 {
            // Progress: the failing record is now at the head, with fresh attempts.
            shard.attempts = 0;
        }
        shard.attempts += 1;
        let whole_batch_error = outcome.is_err();
        if whole_batch_error && self.source.bisect_batch_on_function_error && n > 1 {
            shard.limit = (n / 2).max(1);
        }
        let max = self
            .source
            .maximum_retry_attempts
            .unwrap_or(self.cfg.default_stream_retries);
        if shard.attempts > max {
            // Give up on the head record (or the whole failing batch, when the error
            // could not be narrowed down).
            let skip =
                if whole_batch_error && !(self.source.bisect_batch_on_function_error && n > 1) {
                    n - done
                } else {
                    1
                };
            let skipped: Vec<Record> = (0..skip)
                .filter_map(|_| shard.pending.pop_front())
                .collect();
            if let Some(last) = skipped.last() {
                shard.last_sequence = Some(sequence_number(last));
            }
            tracing::error!(
                stream = %self.source.stream_arn, function = %self.function.name,
                first = %skipped.first().map(sequence_number).unwrap_or_default(),
                records = skipped.len(), attempts = shard.attempts,
                "stream records exhausted their retries and are skipped"
            );
            self.send_to_failure_destination(&shard.id, &skipped, shard.attempts)
                .await;
            shard.attempts = 0;
            shard.limit = self.source.batch_size.max(1);
        } else {
            tokio::time::sleep(self.cfg.retry_delay.min(Duration::from_secs(5))).await;
        }
        true
    }

    async fn send_to_failure_destination(&self, shard_id: &str, records: &[Record], attempts: u32) {
        let Some(url) = &self.source.on_failure_queue_url else {
            return;
        };
        if records.is_empty() {
            return;
        }
        let arrival = |r: &Record| {
            r.dynamodb
                .as_ref()
                .and_then(|d| d.approximate_creation_date_time)
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
                .map(|t| t.to_rfc3339())
        };
        let body = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function.arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence_number(&records[0]),
                "endSequenceNumber": sequence_number(&records[records.len() - 1]),
                "approximateArrivalOfFirstRecord": arrival(&records[0]),
                "approximateArrivalOfLastRecord": arrival(&records[records.len() - 1]),
                "batchSize": records.len(),
                "streamArn": self.source.stream_arn,
            },
        });
        if let Err(e) = self
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
        {
            tracing::error!(
                queue = %url, error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                "could not record the failed stream batch"
            );
        }
    }
}

fn sequence_number(r: &Record) -> String {
    r.dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.clone())
        .unwrap_or_default()
}

fn image(
    m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<Value> {
    let m = m?;
    let item = serde_dynamo::Item::from(m.clone());
    serde_json::to_value(item).ok()
}

/// Lambda's `aws:dynamodb` event for a batch of stream records (images in DynamoDB JSON).
pub fn stream_event(batch: &[Record], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let mut dynamodb = Map::new();
            if let Some(d) = &r.dynamodb {
                if let Some(t) = d.approximate_creation_date_time {
                    dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
                }
                if let Some(k) = image(d.keys.as_ref()) {
                    dynamodb.insert("Keys".into(), k);
                }
                if let Some(n) = image(d.new_image.as_ref()) {
                    dynamodb.insert("NewImage".into(), n);
                }
                if let Some(o) = image(d.old_image.as_ref()) {
                    dynamodb.insert("OldImage".into(), o);
                }
                if let Some(s) = &d.sequence_number {
                    dynamodb.insert("SequenceNumber".into(), json!(s));
                }
                if let Some(s) = d.size_bytes {
                    dynamodb.insert("SizeBytes".into(), json!(s));
                }
                if let Some(v) = &d.stream_view_type {
                    dynamodb.insert("StreamViewType".into(), json!(v.as_str()));
                }
            }
            let mut rec = json!({
                "eventID": r.event_id,
                "eventName": r.event_name.as_ref().map(|e| e.as_str()),
                "eventVersion": r.event_version.clone().unwrap_or_else(|| "1.1".into()),
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            });
            if let Some(u) = &r.user_identity {
                rec["userIdentity"] = json!({"type": u.r#type, "principalId": u.principal_id});
            }
            rec
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, StreamRecord, StreamViewType,
    };
    use aws_sdk_sqs::types::MessageAttributeValue;

    #[test]
    fn sqs_event_has_lambdas_shape() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{\"a\":1}")
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("ReserveInventory")
                    .build()
                    .unwrap(),
            )
            .build();
        let ev = sqs_event(
            std::slice::from_ref(&m),
            "arn:aws:sqs:us-east-1:1:q",
            "us-east-1",
            0,
        );
        let r = &ev["Records"][0];
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:1:q");
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(
            r["messageAttributes"]["type"]["stringValue"],
            "ReserveInventory"
        );
        assert_eq!(r["messageAttributes"]["type"]["dataType"], "String");
        // The shared runtime's types accept it.
        let parsed: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(ev).unwrap();
        assert_eq!(parsed.records[0].body.as_deref(), Some("{\"a\":1}"));
        let dup = sqs_event(&[m], "arn", "us-east-1", 1);
        assert_eq!(
            dup["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
    }

    #[test]
    fn stream_event_has_lambdas_shape() {
        let rec = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", AttributeValue::S("ORDER#1".into()))
                    .new_image("pk", AttributeValue::S("ORDER#1".into()))
                    .new_image("total", AttributeValue::N("950".into()))
                    .sequence_number("100")
                    .size_bytes(42)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .approximate_creation_date_time(aws_smithy_types_now())
                    .build(),
            )
            .build();
        let ev = stream_event(&[rec], "arn:stream", "eu-west-1");
        let r = &ev["Records"][0];
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["eventName"], "INSERT");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["dynamodb"]["NewImage"]["total"], json!({"N": "950"}));
        assert_eq!(r["dynamodb"]["Keys"]["pk"], json!({"S": "ORDER#1"}));
        assert!(r["dynamodb"].get("OldImage").is_none());
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(ev).unwrap();
        assert_eq!(
            parsed.records[0].change.sequence_number.as_deref(),
            Some("100")
        );
    }

    fn aws_smithy_types_now() -> aws_sdk_dynamodbstreams::primitives::DateTime {
        aws_sdk_dynamodbstreams::primitives::DateTime::from_secs(1_700_000_000)
    }

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

    #[test]
    fn redeliveries_count_per_message() {
        let m = |id: &str| {
            Message::builder()
                .message_id(id)
                .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
                .build()
        };
        let (a, b) = (m("a"), m("b"));
        let ev = sqs_event_of([(&a, 0), (&b, 1)].into_iter(), "arn", "us-east-1");
        assert_eq!(
            ev["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "1"
        );
        assert_eq!(
            ev["Records"][1]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
    }

    #[test]
    fn item_failures_parse() {
        assert_eq!(
            parse_item_failures(&json!({})).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_item_failures(&json!({"batchItemFailures": null})).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_item_failures(&json!({"batchItemFailures": [{"itemIdentifier": "a"}]})).unwrap(),
            vec!["a".to_owned()]
        );
        assert!(
            parse_item_failures(&json!({"batchItemFailures": [{"itemIdentifier": ""}]})).is_err()
        );
        let ids = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            batch_failures(
                Ok(json!({"batchItemFailures": [{"itemIdentifier": "x"}]})),
                &ids,
                true
            ),
            ids
        );
        assert!(batch_failures(
            Ok(json!({"batchItemFailures": [{"itemIdentifier": "a"}]})),
            &ids,
            false
        )
        .is_empty());
    }
}
