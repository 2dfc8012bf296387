//! The runtime's spans: one per invocation, one per SQS message and one per stream
//! record. Their fields are on every line logged inside them, so handlers log what
//! happened and nothing about where; each is a child of the trace it continues
//! ([`dishpatch_sdk::trace`]).
//!
//! They are ERROR-level spans so that they exist whatever the level filter: a WARN
//! line under `AWS_LAMBDA_LOG_LEVEL=WARN` still names its order.

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::sqs::SqsMessage;
use dishpatch_sdk::trace::{self, TraceContext};
use lambda_runtime::Context;
use tracing::field::Empty;
use tracing::Span;

use crate::envelope::{Envelope, MessageType};
use crate::outbox::Outgoing;

/// The current trace as a `traceparent`: a new envelope's ([`crate::envelope::trace`]).
pub fn traceparent() -> Option<String> {
    trace::current().map(|c| c.traceparent())
}

/// The invocation's span, continuing the trace Lambda hands it (`_X_AMZN_TRACE_ID`
/// on AWS, set per invocation by the local stack's invoker).
pub fn invocation(ctx: &Context) -> (Span, TraceContext) {
    let span = tracing::error_span!(
        "invoke",
        function = %ctx.env_config.function_name,
        requestId = %ctx.request_id,
        traceId = Empty,
    );
    let parent = ctx
        .xray_trace_id
        .as_deref()
        .and_then(TraceContext::from_xray);
    let trace = trace::start(&span, parent);
    (span, trace)
}

/// A message's span, continuing its maker's trace: the envelope's `traceparent`, else
/// the `AWSTraceHeader` SQS set from the sender's call, else the invocation's.
pub fn message(
    function: &str,
    msg: &SqsMessage,
    decoded: Option<&(Envelope, MessageType)>,
) -> (Span, TraceContext) {
    let span = tracing::error_span!(
        "message",
        function,
        messageId = Empty,
        messageType = Empty,
        orderId = Empty,
        correlationId = Empty,
        causationId = Empty,
        traceId = Empty,
    );
    let mut parent = msg
        .attributes
        .get("AWSTraceHeader")
        .and_then(|h| TraceContext::from_xray(h));
    match decoded {
        Some((envelope, kind)) => {
            span.record("messageId", envelope.id.as_str());
            span.record("messageType", kind.as_str());
            span.record("orderId", envelope.order_id.as_str());
            span.record("correlationId", envelope.correlation_id.as_str());
            if let Some(c) = &envelope.causation_id {
                span.record("causationId", c.as_str());
            }
            parent = of_envelope(envelope).or(parent);
        }
        // Unreadable: the queue's id is all there is to name it by.
        None => {
            span.record("messageId", msg.message_id.as_deref().unwrap_or_default());
        }
    }
    let trace = trace::start(&span, parent.or_else(trace::current));
    (span, trace)
}

/// A stream record's span. DynamoDB streams carry no trace context: the order write
/// does, once for its outbox (the item's `traceparent`; in items written before, its
/// first outbox entry's envelope).
pub fn record(function: &str, record: &EventRecord) -> (Span, TraceContext) {
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "orderId")]
        order_id: Option<String>,
        #[serde(default)]
        traceparent: Option<String>,
        #[serde(default)]
        outbox: serde_json::Value,
    }
    let span = tracing::error_span!("record", function, orderId = Empty, traceId = Empty);
    let image: Option<Image> = serde_dynamo::from_item(record.change.new_image.clone()).ok();
    if let Some(order) = image.as_ref().and_then(|i| i.order_id.as_deref()) {
        span.record("orderId", order);
    }
    let parent = image.as_ref().and_then(|i| match &i.traceparent {
        Some(tp) => TraceContext::from_traceparent(tp),
        None => serde_json::from_value::<Outgoing>(i.outbox.get(0)?.clone())
            .ok()
            .and_then(|m| of_envelope(&m.envelope)),
    });
    let trace = trace::start(&span, parent.or_else(trace::current));
    (span, trace)
}

fn of_envelope(envelope: &Envelope) -> Option<TraceContext> {
    envelope
        .traceparent
        .as_deref()
        .and_then(TraceContext::from_traceparent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_continues_its_envelopes_trace_else_the_invocations() {
        let maker = TraceContext::root();
        let mut envelope =
            Envelope::new(MessageType::ReserveInventory, "o-1", serde_json::json!({}));
        envelope.traceparent = Some(maker.traceparent());
        let msg = SqsMessage::default();
        let decoded = (envelope.clone(), MessageType::ReserveInventory);
        let (_, trace) = message("inventory", &msg, Some(&decoded));
        assert_eq!(trace.trace_id, maker.trace_id);

        let invocation = TraceContext::root();
        envelope.traceparent = None;
        let decoded = (envelope, MessageType::ReserveInventory);
        let seen = trace::scope(invocation, async {
            message("inventory", &msg, Some(&decoded)).1
        })
        .await;
        assert_eq!(seen.trace_id, invocation.trace_id);
    }

    #[test]
    fn an_invocation_continues_lambdas_trace() {
        let mut ctx = Context::default();
        let lambda = TraceContext::root();
        ctx.xray_trace_id = Some(lambda.xray());
        assert_eq!(invocation(&ctx).1.trace_id, lambda.trace_id);
    }
}
