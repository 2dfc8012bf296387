//! Reading a queue: its ARN, its depth, its messages without consuming them, and the
//! order each is about.

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};
use serde_json::Value;

use crate::checker::Depth;
use crate::{Error, Result};

/// The ARN of the queue at `url` (`name` names it in an error); `None` when the
/// service gives none.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str, name: &str) -> Result<Option<String>> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::aws(format!("get attributes of queue {name}"), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)))
}

/// The depth of the queue at `url`, as SQS reports it (`name` names it in an error).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str, name: &str) -> Result<Depth> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| Error::aws(format!("attributes of queue {name}"), e))?
        .attributes
        .unwrap_or_default();
    let n = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        visible: n(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// Reads every message of a queue without consuming it: receives until empty (each
/// received message stays invisible meanwhile, so none is read twice), then makes them
/// all visible again. Meant for DLQs and taps, which nothing else consumes. At most
/// 1,000 messages.
pub async fn peek(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<String>> {
    let mut bodies = Vec::new();
    let mut handles = Vec::new();
    while bodies.len() < 1000 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(30)
            .send()
            .await
            .map_err(|e| Error::aws(format!("receive from {url}"), e))?;
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            bodies.push(m.body.unwrap_or_default());
            handles.extend(m.receipt_handle);
        }
    }
    for chunk in handles.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        sqs.change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::aws(format!("restore visibility in {url}"), e))?;
    }
    Ok(bodies)
}

/// The order a message is about: the envelope's `orderId` (or `data.orderId`), also
/// inside an SNS notification's `Message`.
pub fn order_id_of(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let v = match v.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).unwrap_or(v),
        None => v,
    };
    v.get("orderId")
        .or_else(|| v.pointer("/data/orderId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_come_out_of_envelopes_and_sns_notifications() {
        let env = r#"{"id":"e","type":"CompensationFailed","orderId":"o-7","data":{}}"#;
        assert_eq!(order_id_of(env).as_deref(), Some("o-7"));
        let sns = serde_json::json!({"Type": "Notification", "Message": env}).to_string();
        assert_eq!(order_id_of(&sns).as_deref(), Some("o-7"));
        assert_eq!(
            order_id_of(r#"{"data":{"orderId":"o-8"}}"#).as_deref(),
            Some("o-8")
        );
        assert_eq!(order_id_of("garbage"), None);
    }
}
