//! The SQS poller: gathers a batch as Lambda's poller does, delivers it, then deletes
//! what succeeded and makes the rest visible again soon.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::events::{parse_item_failures, sqs_event};
use super::{Backoff, EsmConfig};
use crate::functions::LocalFunction;

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
        let n = cfg.sqs_concurrency.max(1);
        // Dropping the set (when this task is aborted) aborts every poller in it.
        let mut pollers = tokio::task::JoinSet::new();
        for index in 0..n {
            let poller = SqsPoller {
                client: client.clone(),
                source: source.clone(),
                function: function.clone(),
                cfg: cfg.clone(),
                index,
            };
            pollers.spawn(poller.run());
        }
        while let Some(r) = pollers.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "an sqs poller stopped");
            }
        }
    })
}

pub(super) struct SqsPoller {
    pub(super) client: aws_sdk_sqs::Client,
    pub(super) source: SqsSource,
    pub(super) function: LocalFunction,
    pub(super) cfg: EsmConfig,
    /// Which of the mapping's [`EsmConfig::sqs_concurrency`] pollers this is (its
    /// shuffle decisions are its own).
    pub(super) index: usize,
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
    /// arrives, long-poll ([`EsmConfig::receive_wait_seconds`]) or back off. A receive
    /// that drains the queue (fewer messages than asked for) is followed by one wait for
    /// the rest of the window and one last receive, not by a receive every few
    /// milliseconds: each receive costs the emulator a scan of the queue. With `wake_at`
    /// (a held message coming due) the idle wait ends then, and the batch may be empty.
    pub(super) async fn gather(
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
            // Long-poll only for a first message, and not while a held one comes due.
            let wait = if first_at.is_none() && wake_at.is_none() {
                self.cfg.receive_wait_seconds
            } else {
                0
            };
            let received = match self.receive(want, wait).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(queue = %self.source.queue_url, error = %e, "receive failed");
                    tokio::time::sleep(self.cfg.idle_backoff_max).await;
                    Vec::new()
                }
            };
            let got = !received.is_empty();
            let drained = received.len() < want as usize;
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
                    if wait == 0 {
                        idle.wait(wake_at.map(|d| d - now)).await;
                    }
                }
                Some(t) => {
                    let elapsed = t.elapsed();
                    if elapsed >= window {
                        return batch;
                    }
                    if drained {
                        // Nothing more waiting now: the rest of the window, then one
                        // last receive (after which the window has passed).
                        tokio::time::sleep(window - elapsed).await;
                    }
                }
            }
        }
    }

    async fn receive(&self, max: i32, wait_seconds: i32) -> Result<Vec<Message>, String> {
        receive_batch_waiting(&self.client, &self.source.queue_url, max, wait_seconds).await
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

    pub(super) async fn delete(&self, messages: &[&Message]) {
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

    pub(super) async fn retry_later(&self, messages: &[&Message]) {
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
    receive_batch_waiting(client, queue_url, max, 0).await
}

/// [`receive_batch`] with a long poll of `wait_seconds` (0-20).
pub async fn receive_batch_waiting(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
    wait_seconds: i32,
) -> Result<Vec<Message>, String> {
    client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(wait_seconds.clamp(0, 20))
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
pub(super) fn batch_failures(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_failures_follow_lambdas_rules() {
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
