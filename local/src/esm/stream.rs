//! The DynamoDB stream poller: reads each shard in order, retries a failing record (or
//! bisects a failing batch) and skips it once its retries are exhausted. With
//! [`EsmConfig::stream_parallelization`] above 1 a shard's records are split by item key
//! into that many lanes handled at once, each in order, as Lambda's
//! `ParallelizationFactor` does: the records of one item stay in order.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use tokio::task::JoinHandle;

use super::events::{parse_item_failures, sequence_number, stream_event};
use super::{Backoff, EsmConfig};
use crate::functions::LocalFunction;

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

pub(super) struct StreamPoller {
    streams: aws_sdk_dynamodbstreams::Client,
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) source: StreamSource,
    pub(super) function: LocalFunction,
    cfg: EsmConfig,
}

struct Shard {
    id: String,
    iterator: Option<String>,
    /// Fetched but not yet processed, by item key (one lane unless parallelized).
    lanes: Vec<Lane>,
    /// The last record fetched (records are fetched once every lane is done).
    last_sequence: Option<String>,
}

/// The records of some item keys of a shard, in stream order.
#[derive(Default)]
struct Lane {
    /// Fetched but not yet processed (in order).
    pending: VecDeque<Record>,
    /// Failed attempts of the record (or batch) at the head of `pending`.
    attempts: u32,
    /// Current batch limit (halved when bisecting).
    limit: usize,
}

/// The lane of a record: by its item key, so one item's records keep their order.
fn lane_of(record: &Record, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let keys = record.dynamodb.as_ref().and_then(|d| d.keys.as_ref());
    let mut keys: Vec<_> = keys.into_iter().flatten().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in keys {
        k.hash(&mut h);
        format!("{v:?}").hash(&mut h);
    }
    (h.finish() % lanes as u64) as usize
}

impl StreamPoller {
    fn lanes(&self) -> usize {
        self.cfg.stream_parallelization.clamp(1, 10)
    }

    async fn run(self) {
        let this = Arc::new(self);
        this.run_shared().await
    }

    async fn run_shared(self: &Arc<Self>) {
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
                lanes: (0..self.lanes())
                    .map(|_| Lane {
                        limit: self.source.batch_size.max(1),
                        ..Lane::default()
                    })
                    .collect(),
                last_sequence: None,
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

    /// Fetches and/or delivers one batch of each lane of a shard; whether anything
    /// happened.
    async fn step(self: &Arc<Self>, shard: &mut Shard) -> bool {
        if shard.lanes.iter().all(|l| l.pending.is_empty()) {
            let Some(it) = shard.iterator.clone() else {
                return false; // closed shard, fully read
            };
            let lanes = shard.lanes.len();
            match self
                .streams
                .get_records()
                .shard_iterator(it)
                .limit((self.source.batch_size * lanes).clamp(1, 1000) as i32)
                .send()
                .await
            {
                Ok(out) => {
                    shard.iterator = out.next_shard_iterator;
                    for r in out.records.unwrap_or_default() {
                        shard.last_sequence = Some(sequence_number(&r));
                        shard.lanes[lane_of(&r, lanes)].pending.push_back(r);
                    }
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
            if shard.lanes.iter().all(|l| l.pending.is_empty()) {
                return false;
            }
        }
        let busy: Vec<usize> = (0..shard.lanes.len())
            .filter(|&i| !shard.lanes[i].pending.is_empty())
            .collect();
        if let [only] = busy[..] {
            return self.deliver(&shard.id, &mut shard.lanes[only]).await;
        }
        // Each busy lane its own task; they come back when all are done.
        let mut running = tokio::task::JoinSet::new();
        for &i in &busy {
            let mut lane = std::mem::take(&mut shard.lanes[i]);
            let this = self.clone();
            let id = shard.id.clone();
            running.spawn(async move {
                let progressed = this.deliver(&id, &mut lane).await;
                (i, lane, progressed)
            });
        }
        let mut progressed = false;
        while let Some(r) = running.join_next().await {
            match r {
                Ok((i, lane, p)) => {
                    shard.lanes[i] = lane;
                    progressed |= p;
                }
                // Only a panic or an abort lands here; an aborted poller stops anyway.
                Err(e) => tracing::error!(error = %e, "a stream lane stopped"),
            }
        }
        progressed
    }

    /// Delivers one batch of a lane; whether anything happened.
    async fn deliver(&self, shard_id: &str, shard: &mut Lane) -> bool {
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
        shard.pending.drain(..done.min(shard.pending.len()));
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
            tracing::error!(
                stream = %self.source.stream_arn, function = %self.function.name,
                first = %skipped.first().map(sequence_number).unwrap_or_default(),
                records = skipped.len(), attempts = shard.attempts,
                "stream records exhausted their retries and are skipped"
            );
            self.send_to_failure_destination(shard_id, &skipped, shard.attempts)
                .await;
            shard.attempts = 0;
            shard.limit = self.source.batch_size.max(1);
        } else {
            tokio::time::sleep(self.cfg.retry_delay.min(Duration::from_secs(5))).await;
        }
        true
    }
}
