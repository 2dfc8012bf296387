//! One entry point per Lambda, whatever triggers it: HTTP API (payload v2), SQS
//! batches, DynamoDB stream batches, or EventBridge scheduled events. The local stack calls [`invoke`] too, so
//! the code path it exercises is the one that deploys.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::Value;

/// The trace context the runtime's spans carry (re-exported for the local stack).
pub use dishpatch_sdk::trace;
use tracing::Instrument;

use crate::envelope::{DecodeError, Envelope, MessageType};
use crate::error::Problem;

pub mod dead_letters;
pub mod deadline;
pub mod spans;
use dead_letters::{DeadLetters, Failure};

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

    /// Handles an EventBridge scheduled event (a `Schedule` trigger); its answer is the
    /// invocation's result. An `Err` fails the invocation, which EventBridge retries.
    async fn scheduled(&self, _event: &Scheduled) -> Result<Value, MessageError> {
        Err(MessageError::Unsupported)
    }

    /// Where this function parks the messages it cannot process, with the reason
    /// ([`dead_letters`]). `None`: failures are left to the queue's redrive policy.
    fn dead_letters(&self) -> Option<&dyn DeadLetters> {
        None
    }
}

/// The fields of an EventBridge scheduled event (`detail-type: Scheduled Event`) a
/// handler may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Scheduled {
    /// The scheduled time (RFC 3339), not the time of delivery.
    #[serde(default)]
    pub time: String,
    /// The rule's ARN.
    #[serde(default)]
    pub resources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Cannot ever be read (bad JSON, unknown type or version): parked on its first receive.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Decoded, but cannot ever succeed either: it names nothing of ours or carries a value
    /// no handler may act on. Parked like a decode error, under its own code.
    #[error("refused: {reason}")]
    Permanent { code: PermanentCode, reason: String },
    #[error("this function does not handle that message")]
    Unsupported,
    /// May succeed later (AWS error, contention): retried.
    #[error("transient: {0}")]
    Transient(String),
}

/// Why a decoded message is refused for good (its `failureCode` in the DLQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermanentCode {
    /// It names an order or a top-up that does not exist here.
    UnknownReference,
    /// A value is out of bounds or unsafe to act on: text too long, an id that is no id,
    /// a negative amount, too many lines.
    InvalidContent,
}

impl PermanentCode {
    pub fn as_str(self) -> &'static str {
        match self {
            PermanentCode::UnknownReference => "UNKNOWN_REFERENCE",
            PermanentCode::InvalidContent => "INVALID_CONTENT",
        }
    }
}

impl MessageError {
    /// The message names something that does not exist here.
    pub fn unknown_reference(reason: impl Into<String>) -> Self {
        MessageError::Permanent {
            code: PermanentCode::UnknownReference,
            reason: reason.into(),
        }
    }

    /// The message carries a value no handler may act on.
    pub fn invalid_content(reason: impl Into<String>) -> Self {
        MessageError::Permanent {
            code: PermanentCode::InvalidContent,
            reason: reason.into(),
        }
    }

    /// The stable code a parked message carries.
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::Decode(e) => e.code(),
            MessageError::Permanent { code, .. } => code.as_str(),
            MessageError::Unsupported => "UNSUPPORTED",
            MessageError::Transient(_) => "RETRIES_EXHAUSTED",
        }
    }

    fn permanent(&self) -> bool {
        !matches!(self, MessageError::Transient(_))
    }
}

impl From<crate::error::StoreError> for MessageError {
    fn from(e: crate::error::StoreError) -> Self {
        MessageError::Transient(e.to_string())
    }
}

/// Dispatches a raw Lambda event by its shape, within the invocation's deadline
/// ([`deadline`]) and its span ([`spans`]): the function, request id and trace id of
/// every line logged and every AWS call made while it runs.
pub async fn invoke(f: &dyn Function, event: Value, ctx: Context) -> Result<Value, Error> {
    crate::envelope::trace::set_source(spans::traceparent);
    let (span, trace) = spans::invocation(&ctx);
    let run = async move {
        match ctx.deadline {
            0 => dispatch(f, event, ctx).await,
            at => deadline::with_deadline(at, dispatch(f, event, ctx)).await,
        }
    };
    trace::scope(trace, run).instrument(span).await
}

async fn dispatch(f: &dyn Function, event: Value, ctx: Context) -> Result<Value, Error> {
    let source = event
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if event.pointer("/requestContext/http").is_some() {
        let req: LambdaRequest = serde_json::from_value(event)?;
        let req: Request = req.into();
        let req = lambda_http::RequestExt::with_lambda_context(req, ctx);
        let resp = match crate::http::body_bytes(&req).len() {
            n if n > crate::http::MAX_BODY_BYTES => {
                crate::http::problem(&req, crate::http::too_large(n))
            }
            _ => f.http(req).await,
        };
        Ok(serde_json::to_value(to_v2_response(resp))?)
    } else if source.as_deref() == Some("aws:sqs") {
        let batch: SqsEvent = serde_json::from_value(event)?;
        let function = &ctx.env_config.function_name;
        Ok(serde_json::to_value(sqs_batch(f, batch, function).await)?)
    } else if source.as_deref() == Some("aws:dynamodb") {
        let batch: StreamEvent = serde_json::from_value(event)?;
        let function = &ctx.env_config.function_name;
        Ok(stream_batch(f, batch, function).await)
    } else if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let scheduled: Scheduled = serde_json::from_value(event)?;
        Ok(f.scheduled(&scheduled).await?)
    } else if event
        .get("Records")
        .is_some_and(|r| r.as_array().is_some_and(Vec::is_empty))
    {
        Ok(serde_json::json!({"batchItemFailures": []}))
    } else {
        Err("unrecognised event shape: expected an HTTP API v2 request, SQS or DynamoDB stream batch, or a scheduled event".into())
    }
}

/// Runs a function under the Lambda runtime: logs, config, and the dispatcher. Spans
/// are sent at the end of each invocation, before Lambda freezes the process.
/// (Without the runtime's own tracing layer: [`invoke`]'s span carries the request
/// id, and a second span would repeat it on every line.)
pub async fn run<F: Function>(f: F) -> Result<(), Error> {
    let f = &f;
    lambda_runtime::Runtime::new(lambda_runtime::service_fn(
        move |ev: LambdaEvent<Value>| async move {
            let out = invoke(f, ev.payload, ev.context).await;
            trace::export::flush();
            out
        },
    ))
    .run()
    .await
}

async fn sqs_batch(f: &dyn Function, batch: SqsEvent, function: &str) -> SqsBatchResponse {
    let mut failures = Vec::new();
    // In order: a batch rarely holds two messages of one order, but when it does the
    // saga's conditional writes would make one of them retry anyway.
    for msg in batch.records {
        let body = msg.body.as_deref().unwrap_or("");
        let decoded = Envelope::decode(body);
        let (span, trace) = spans::message(function, &msg, decoded.as_ref().ok());
        let handled = async {
            let Err(e) = one_message(f, decoded).await else {
                return true;
            };
            park(f, &msg, &e, function).await
        };
        if !trace::scope(trace, handled).instrument(span).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = msg.message_id.clone().unwrap_or_default();
            failures.push(failure);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

/// Parks a failed message in the function's DLQ when it can never succeed or this is
/// its last receive. `true`: parked (the item counts as handled).
async fn park(f: &dyn Function, msg: &SqsMessage, e: &MessageError, function: &str) -> bool {
    let receive_count: u32 = msg
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let due = f
        .dead_letters()
        .filter(|d| e.permanent() || receive_count >= d.max_receives());
    let Some(dead_letters) = due else {
        if e.permanent() {
            tracing::error!(error = %e, receive_count,
                "message can never be processed; it goes to the DLQ after its retries");
        } else {
            tracing::warn!(error = %e, receive_count,
                "message failed; it will be retried");
        }
        return false;
    };
    let failure = Failure {
        code: e.code(),
        reason: e.to_string(),
        function: function.to_owned(),
        receive_count,
    };
    match dead_letters.park(msg, &failure).await {
        Ok(()) => {
            tracing::error!(code = failure.code, error = %e, receive_count,
                "message parked in the dead-letter queue");
            true
        }
        Err(park_error) => {
            tracing::error!(error = %e, park_error, receive_count,
                "could not park the message; it is retried and left to the redrive policy");
            false
        }
    }
}

async fn one_message(
    f: &dyn Function,
    decoded: Result<(Envelope, MessageType), DecodeError>,
) -> Result<(), MessageError> {
    let (envelope, kind) = decoded?;
    tracing::debug!("handling message");
    f.message(envelope, kind).await
}

async fn stream_batch(f: &dyn Function, batch: StreamEvent, function: &str) -> Value {
    // Stream records of a shard must be handled in order: stop at the first failure
    // and report it, so Lambda retries from there.
    for record in &batch.records {
        let (span, trace) = spans::record(function, record);
        let handled = trace::scope(trace, f.stream_record(record)).instrument(span.clone());
        if let Err(e) = handled.await {
            let seq = record.change.sequence_number.clone().unwrap_or_default();
            span.in_scope(
                || tracing::warn!(sequence_number = %seq, error = %e, "stream record failed"),
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails every message with `error`, or for good when the body is not an envelope.
    struct Failing {
        parked: Mutex<Vec<Failure>>,
        park_fails: bool,
        with_dlq: bool,
        error: fn() -> MessageError,
    }

    #[async_trait::async_trait]
    impl DeadLetters for Failing {
        fn max_receives(&self) -> u32 {
            3
        }
        async fn park(&self, _msg: &SqsMessage, failure: &Failure) -> Result<(), String> {
            if self.park_fails {
                return Err("dlq unreachable".into());
            }
            self.parked.lock().unwrap().push(failure.clone());
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl Function for Failing {
        async fn message(&self, _: Envelope, _: MessageType) -> Result<(), MessageError> {
            Err((self.error)())
        }
        fn dead_letters(&self) -> Option<&dyn DeadLetters> {
            self.with_dlq.then_some(self as &dyn DeadLetters)
        }
    }

    fn failing(with_dlq: bool, park_fails: bool) -> Failing {
        Failing {
            parked: Mutex::new(Vec::new()),
            park_fails,
            with_dlq,
            error: || MessageError::Transient("table throttled".into()),
        }
    }

    fn message(id: &str, body: &str, receive_count: u32) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        m
    }

    fn envelope_body() -> String {
        Envelope::new(MessageType::ReserveInventory, "o-1", serde_json::json!({})).to_json()
    }

    async fn failed_ids(f: &Failing, records: Vec<SqsMessage>) -> Vec<String> {
        let mut batch = SqsEvent::default();
        batch.records = records;
        sqs_batch(f, batch, "inventory")
            .await
            .batch_item_failures
            .into_iter()
            .map(|i| i.item_identifier)
            .collect()
    }

    #[tokio::test]
    async fn undecodable_messages_are_parked_at_once_with_their_reason() {
        let f = failing(true, false);
        let failed = failed_ids(&f, vec![message("m-1", "not json", 1)]).await;
        assert!(failed.is_empty(), "parked counts as handled: {failed:?}");
        let parked = f.parked.lock().unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].code, "MALFORMED_MESSAGE");
        assert_eq!(parked[0].function, "inventory");
        assert!(!parked[0].reason.is_empty());
    }

    #[tokio::test]
    async fn refused_messages_are_parked_at_once_under_their_own_code() {
        let mut f = failing(true, false);
        f.error = || MessageError::unknown_reference("no order o-1");
        let failed = failed_ids(&f, vec![message("m-1", &envelope_body(), 1)]).await;
        assert!(failed.is_empty(), "parked counts as handled: {failed:?}");
        let parked = f.parked.lock().unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].code, "UNKNOWN_REFERENCE");
        assert_eq!(parked[0].receive_count, 1);
        assert!(parked[0].reason.contains("no order o-1"), "{parked:?}");
    }

    #[test]
    fn every_failure_has_a_distinct_stable_code() {
        let codes = [
            MessageError::Decode(DecodeError::Malformed(String::new())).code(),
            MessageError::Decode(DecodeError::UnknownType(String::new())).code(),
            MessageError::Decode(DecodeError::UnsupportedVersion(String::new())).code(),
            MessageError::unknown_reference("").code(),
            MessageError::invalid_content("").code(),
            MessageError::Unsupported.code(),
            MessageError::Transient(String::new()).code(),
        ];
        let mut distinct = codes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len(), "{codes:?}");
        assert_eq!(MessageError::invalid_content("x").code(), "INVALID_CONTENT");
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_the_last_receive_then_parked() {
        let f = failing(true, false);
        let body = envelope_body();
        let failed = failed_ids(&f, vec![message("m-1", &body, 1), message("m-2", &body, 2)]).await;
        assert_eq!(failed, ["m-1", "m-2"]);
        assert!(f.parked.lock().unwrap().is_empty());

        let failed = failed_ids(&f, vec![message("m-1", &body, 3)]).await;
        assert!(failed.is_empty());
        let parked = f.parked.lock().unwrap();
        assert_eq!(parked[0].code, "RETRIES_EXHAUSTED");
        assert_eq!(parked[0].receive_count, 3);
        assert!(parked[0].reason.contains("table throttled"), "{parked:?}");
    }

    #[tokio::test]
    async fn without_a_dlq_or_when_parking_fails_the_item_is_reported_failed() {
        for f in [failing(false, false), failing(true, true)] {
            let failed = failed_ids(&f, vec![message("m-1", "not json", 3)]).await;
            assert_eq!(failed, ["m-1"]);
            assert!(f.parked.lock().unwrap().is_empty());
        }
    }

    struct Sweeping;

    #[async_trait::async_trait]
    impl Function for Sweeping {
        async fn scheduled(&self, event: &Scheduled) -> Result<Value, MessageError> {
            Ok(serde_json::json!({"at": event.time, "rule": event.resources}))
        }
    }

    #[tokio::test]
    async fn scheduled_events_reach_their_handler() {
        let event = serde_json::json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}
        });
        let out = invoke(&Sweeping, event.clone(), Context::default())
            .await
            .unwrap();
        assert_eq!(out["at"], "2026-11-22T10:00:00Z");
        assert_eq!(
            out["rule"][0],
            "arn:aws:events:us-east-1:123456789012:rule/sweep"
        );
        // A function without a schedule fails the invocation, so it is seen.
        assert!(invoke(&failing(false, false), event, Context::default())
            .await
            .is_err());
    }
}
