//! Queue depths, and the dead-letter queues as the operator CLI lists and shows them
//! ([`dishpatch_ops::dlq`]), in the JSON the page reads.

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use dishpatch_ops::dlq::{self, DeadLetter, DlqStatus};
use dishpatch_ops::Target;
use serde::Serialize;
use serde_json::{json, Value};

/// One work queue (not a dead-letter queue) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Depth {
    pub logical_id: String,
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
    pub error: Option<String>,
}

/// Every work queue of the template with its approximate depths.
pub async fn depths(target: &Target) -> Vec<Depth> {
    let dlqs = dlq::dead_letter_queues(&target.template);
    let sqs = target.sqs();
    let mut out = Vec::new();
    for q in target
        .template
        .queues
        .iter()
        .filter(|q| !dlqs.contains_key(&q.logical_id))
    {
        let mut depth = Depth {
            logical_id: q.logical_id.clone(),
            visible: 0,
            in_flight: 0,
            delayed: 0,
            error: None,
        };
        let attributes = match target.queue_url(&q.logical_id).await {
            Err(e) => Err(e.to_string()),
            Ok(url) => sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(Attr::ApproximateNumberOfMessages)
                .attribute_names(Attr::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(Attr::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
        };
        match attributes {
            Err(e) => depth.error = Some(e),
            Ok(a) => {
                let get = |n: Attr| {
                    a.attributes()
                        .and_then(|m| m.get(&n))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                depth.visible = get(Attr::ApproximateNumberOfMessages);
                depth.in_flight = get(Attr::ApproximateNumberOfMessagesNotVisible);
                depth.delayed = get(Attr::ApproximateNumberOfMessagesDelayed);
            }
        }
        out.push(depth);
    }
    out
}

/// A dead-letter queue's row: depth, source, and whether it can be redriven.
pub fn dlq_json(d: &DlqStatus) -> Value {
    json!({
        "logicalId": d.logical_id,
        "source": d.source.to_string(),
        "redrivable": matches!(d.source, dlq::Source::Queue { .. }),
        "visible": d.visible,
        "inFlight": d.in_flight,
        "count": d.count(),
        "error": d.error,
    })
}

/// A parked message: why it is there, and what it is.
pub fn letter_json(l: &DeadLetter) -> Value {
    json!({
        "messageId": l.message_id,
        "receiveCount": l.receive_count,
        "sentAt": l.sent_at,
        "type": l.kind,
        "orderId": l.order_id,
        "reason": l.reason.as_ref().map(|r| r.to_string()),
        "code": l.code,
        "redrives": l.redrives,
        "body": l.body,
    })
}

/// What a redrive did.
pub fn redrive_json(r: &dlq::RedriveReport) -> Value {
    json!({
        "moved": r.moved.iter().map(|m| json!({
            "messageId": m.message_id,
            "newMessageId": m.new_message_id,
            "to": m.to,
            "orderId": m.order_id,
            "redrives": m.redrives,
        })).collect::<Vec<_>>(),
        "skipped": r.skipped.iter().map(|(id, why)| json!({"messageId": id, "why": why})).collect::<Vec<_>>(),
        "notFound": r.not_found,
    })
}
