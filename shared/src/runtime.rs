//! One entry point per Lambda, whatever triggers it: HTTP API (payload v2), SQS
//! batches, or DynamoDB stream batches. The local stack calls [`invoke`] too, so
//! the code path it exercises is the one that deploys.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::Value;

use crate::envelope::{DecodeError, Envelope, MessageType};
use crate::error::Problem;

#[async_trait::async_trait]
pub trait Function: Send + Sync + 'static {
    async fn http(&self, req: Request) -> Response<Body> {
        crate::http::problem(&req, Problem::not_found("route"))
    }

    /// Handles one message of an SQS batch. An `Err` reports it as a batch item failure.
    async fn message(&self, _envelope: Envelope, _kind: MessageType) -> Result<(), MessageError> {
        Err(MessageError::Unsupported)
    }

    /// Handles one DynamoDB stream record (its new image, as JSON).
    async fn stream_record(
        &self,
        _record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        Err(MessageError::Unsupported)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Cannot ever succeed: the message goes to the DLQ after its retries.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("this function does not handle that message")]
    Unsupported,
    /// May succeed later (AWS error, contention): retried.
    #[error("transient: {0}")]
    Transient(String),
}

impl From<crate::error::StoreError> for MessageError {
    fn from(e: crate::error::StoreError) -> Self {
        MessageError::Transient(e.to_string())
    }
}

/// Dispatches a raw Lambda event by its shape.
pub async fn invoke(f: &dyn Function, event: Value, ctx: Context) -> Result<Value, Error> {
    let source = event
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if event.pointer("/requestContext/http").is_some() {
        let req: LambdaRequest = serde_json::from_value(event)?;
        let req: Request = req.into();
        let req = lambda_http::RequestExt::with_lambda_context(req, ctx);
        let resp = f.http(req).await;
        Ok(serde_json::to_value(to_v2_response(resp))?)
    } else if source.as_deref() == Some("aws:sqs") {
        let batch: SqsEvent = serde_json::from_value(event)?;
        Ok(serde_json::to_value(sqs_batch(f, batch).await)?)
    } else if source.as_deref() == Some("aws:dynamodb") {
        let batch: StreamEvent = serde_json::from_value(event)?;
        Ok(stream_batch(f, batch).await)
    } else if event
        .get("Records")
        .is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
    {
        Ok(serde_json::json!({"batchItemFailures": []}))
    } else {
        Err("unrecognised event shape: expected an HTTP API v2 request, SQS or DynamoDB stream batch".into())
    }
}

/// Runs a function under the Lambda runtime: logs, config, and the dispatcher.
pub async fn run<F: Function>(f: F) -> Result<(), Error> {
    let f = &f;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: LambdaEvent<Value>| async move { invoke(f, ev.payload, ev.context).await },
    ))
    .await
}

async fn sqs_batch(f: &dyn Function, batch: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    // In order: a batch rarely holds two messages of one order, but when it does the
    // saga's conditional writes would make one of them retry anyway.
    for msg in batch.records {
        let id = msg.message_id.clone().unwrap_or_default();
        if let Err(e) = one_message(f, &msg).await {
            let receive_count = msg.attributes.get("ApproximateReceiveCount").cloned();
            match &e {
                MessageError::Transient(_) => {
                    tracing::warn!(message_id = %id, error = %e, "message failed; it will be retried")
                }
                _ => tracing::error!(
                    message_id = %id, error = %e, receive_count = receive_count.as_deref(),
                    "message can never be processed; it goes to the DLQ after its retries"
                ),
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

async fn one_message(f: &dyn Function, msg: &SqsMessage) -> Result<(), MessageError> {
    let body = msg.body.as_deref().unwrap_or("");
    let (envelope, kind) = Envelope::decode(body)?;
    tracing::info!(
        order_id = %envelope.order_id, message_type = %kind, message_id = %envelope.id,
        correlation_id = %envelope.correlation_id, "handling message"
    );
    f.message(envelope, kind).await
}

async fn stream_batch(f: &dyn Function, batch: StreamEvent) -> Value {
    // Stream records of a shard must be handled in order: stop at the first failure
    // and report it, so Lambda retries from there.
    for record in &batch.records {
        if let Err(e) = f.stream_record(record).await {
            let seq = record.change.sequence_number.clone().unwrap_or_default();
            tracing::warn!(sequence_number = %seq, error = %e, "stream record failed");
            return serde_json::json!({"batchItemFailures": [{"itemIdentifier": seq}]});
        }
    }
    serde_json::json!({"batchItemFailures": []})
}

fn to_v2_response(resp: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = resp.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = parts.status.as_u16() as i64;
    out.headers = parts.headers;
    match body {
        Body::Text(s) => out.body = Some(EventBody::Text(s)),
        Body::Binary(b) => {
            use base64::Engine;
            out.body = Some(EventBody::Text(
                base64::engine::general_purpose::STANDARD.encode(b),
            ));
            out.is_base64_encoded = true;
        }
        _ => {}
    }
    out
}
