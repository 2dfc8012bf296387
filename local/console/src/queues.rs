//! Queue depths, and the dead-letter queues as the operator CLI lists and shows them
//! ([`dishpatch_ops::dlq`]), in the JSON the page reads.

use dishpatch_invariants::messages::queue_depth;
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
        let read = match target.queue_url(&q.logical_id).await {
            Err(e) => Err(e.to_string()),
            Ok(url) => queue_depth(&sqs, &url, &q.logical_id)
                .await
                .map_err(|e| e.to_string()),
        };
        let (d, error) = match read {
            Ok(d) => (d, None),
            Err(e) => (Default::default(), Some(e)),
        };
        let depth = Depth {
            logical_id: q.logical_id.clone(),
            visible: d.visible,
            in_flight: d.in_flight,
            delayed: d.delayed,
            error,
        };
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
