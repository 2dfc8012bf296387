//! The `OnFailure` destination of a stream mapping: a Lambda-style record of the
//! skipped batch, sent to SQS.

use aws_sdk_dynamodbstreams::types::Record;
use serde_json::json;

use super::events::sequence_number;
use super::stream::StreamPoller;

impl StreamPoller {
    pub(super) async fn send_to_failure_destination(
        &self,
        shard_id: &str,
        records: &[Record],
        attempts: u32,
    ) {
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
