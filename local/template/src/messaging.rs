//! Topics, queues (with their redrive policies), queue policies and subscriptions
//! (with their filter policies).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{invalid, TemplateError};
use crate::props::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDef {
    pub logical_id: String,
    pub fifo: bool,
    pub display_name: Option<String>,
    pub content_based_deduplication: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveDef {
    /// Logical id of the dead-letter queue (`deadLetterTargetArn: GetAtt X.Arn`).
    pub dead_letter_queue: String,
    pub max_receive_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub logical_id: String,
    pub fifo: bool,
    /// Seconds; SQS's default is 30.
    pub visibility_timeout: i64,
    /// Static queue attributes, as SQS attribute names and string values (no redrive).
    pub attributes: BTreeMap<String, String>,
    pub redrive: Option<RedriveDef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuePolicyDef {
    pub logical_id: String,
    /// Unresolved entries of `Queues` (each normally `Ref: SomeQueue`: the queue URL).
    pub queues: Vec<Value>,
    /// Unresolved `PolicyDocument`.
    pub policy_document: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEndpoint {
    /// An SQS queue of this template (`Endpoint: GetAtt Q.Arn`).
    Queue(String),
    /// Anything else, unresolved (email, https, a foreign ARN...).
    Other(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionDef {
    pub logical_id: String,
    /// Logical id of the topic (`TopicArn: Ref T`).
    pub topic: String,
    pub protocol: String,
    pub endpoint: SubscriptionEndpoint,
    pub filter_policy: Option<Value>,
    /// `MessageAttributes` (the default) or `MessageBody`.
    pub filter_policy_scope: Option<String>,
    pub raw_message_delivery: bool,
    /// Unresolved `RedrivePolicy` of the subscription, if any.
    pub redrive_policy: Option<Value>,
}

pub(crate) fn parse_topic(id: &str, p: &Value) -> TopicDef {
    TopicDef {
        logical_id: id.to_owned(),
        fifo: bool_prop(p, "FifoTopic").unwrap_or(false),
        display_name: str_prop(p, "DisplayName"),
        content_based_deduplication: bool_prop(p, "ContentBasedDeduplication").unwrap_or(false),
    }
}

pub(crate) fn parse_queue(id: &str, p: &Value) -> Result<QueueDef, TemplateError> {
    let mut attributes = BTreeMap::new();
    for key in [
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
    ] {
        if let Some(v) = p.get(key).and_then(scalar_string) {
            attributes.insert(key.to_owned(), v);
        }
    }
    let redrive = match p.get("RedrivePolicy") {
        None | Some(Value::Null) => None,
        Some(r) => {
            // CloudFormation accepts the policy as an object or a JSON string.
            let r = match r {
                Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| invalid(format!("{id}: RedrivePolicy is not JSON: {e}")))?,
                other => other.clone(),
            };
            let target = r.get("deadLetterTargetArn").ok_or_else(|| {
                invalid(format!("{id}: RedrivePolicy without deadLetterTargetArn"))
            })?;
            Some(RedriveDef {
                dead_letter_queue: get_att_of(target, "Arn", &format!("{id}.RedrivePolicy"))?,
                max_receive_count: int_prop(&r, "maxReceiveCount")?.unwrap_or(10),
            })
        }
    };
    Ok(QueueDef {
        logical_id: id.to_owned(),
        fifo: bool_prop(p, "FifoQueue").unwrap_or(false),
        visibility_timeout: int_prop(p, "VisibilityTimeout")?.unwrap_or(30),
        attributes,
        redrive,
    })
}

pub(crate) fn parse_endpoint(v: &Value) -> SubscriptionEndpoint {
    match get_att_target(v) {
        Some((q, attr)) if attr == "Arn" => SubscriptionEndpoint::Queue(q),
        _ => SubscriptionEndpoint::Other(v.clone()),
    }
}

pub(crate) fn parse_subscription(id: &str, p: &Value) -> Result<SubscriptionDef, TemplateError> {
    let topic = p
        .get("TopicArn")
        .and_then(ref_target)
        .ok_or_else(|| invalid(format!("{id}: TopicArn must be {{Ref: <Topic>}}")))?
        .to_owned();
    let filter_policy = match p.get("FilterPolicy") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            serde_json::from_str(s)
                .map_err(|e| invalid(format!("{id}: FilterPolicy is not JSON: {e}")))?,
        ),
        Some(v) => Some(v.clone()),
    };
    Ok(SubscriptionDef {
        logical_id: id.to_owned(),
        topic,
        protocol: str_prop(p, "Protocol").unwrap_or_default(),
        endpoint: parse_endpoint(p.get("Endpoint").unwrap_or(&Value::Null)),
        filter_policy,
        filter_policy_scope: str_prop(p, "FilterPolicyScope"),
        raw_message_delivery: bool_prop(p, "RawMessageDelivery").unwrap_or(false),
        redrive_policy: p.get("RedrivePolicy").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;
    use serde_json::json;

    fn t() -> Template {
        Template::embedded().expect("template.yaml parses")
    }

    #[test]
    fn queues_have_their_redrive_policies() {
        let t = t();
        // A queue's visibility timeout covers 6 runs of the function that consumes it
        // plus the batching window.
        for f in &t.functions {
            for e in f.sqs_events() {
                let q = t.queue(&e.queue).expect("event queue exists");
                let window = e.maximum_batching_window_seconds as i64;
                assert!(
                    q.visibility_timeout >= 6 * f.timeout as i64 + window,
                    "{}: visibility {} < 6 x {} s + {window} s",
                    e.queue,
                    q.visibility_timeout,
                    f.timeout
                );
            }
        }
        for q in [
            "SagaQueue",
            "NotificationQueue",
            "InventoryQueue",
            "PaymentQueue",
            "DeliveryQueue",
        ] {
            let def = t.queue(q).unwrap_or_else(|| panic!("{q} missing"));
            let r = def.redrive.as_ref().expect("redrive");
            assert_eq!(r.dead_letter_queue, format!("{q}DLQ"));
            assert_eq!(r.max_receive_count, 3);
            let dlq = t.queue(&r.dead_letter_queue).expect("dlq exists");
            assert!(dlq.redrive.is_none());
            assert_eq!(
                dlq.attributes
                    .get("MessageRetentionPeriod")
                    .map(String::as_str),
                Some("1209600")
            );
        }
    }

    /// A consumer parks failing messages in the DLQ its queue's redrive policy names,
    /// on the receive that policy would move them: the two must agree.

    #[test]
    fn topics_and_subscriptions() {
        let t = t();
        for id in [
            "OrderEventsTopic",
            "CustomerNotificationsTopic",
            "OpsAlertsTopic",
        ] {
            assert!(t.topic(id).is_some(), "{id}");
        }
        let s = t.subscription("SagaQueueSubscription").unwrap();
        assert_eq!(s.topic, "OrderEventsTopic");
        assert_eq!(s.protocol, "sqs");
        assert_eq!(s.endpoint, SubscriptionEndpoint::Queue("SagaQueue".into()));
        assert!(!s.raw_message_delivery);
        assert_eq!(s.filter_policy_scope.as_deref(), Some("MessageAttributes"));
        let types = s.filter_policy.as_ref().unwrap()["eventType"]
            .as_array()
            .unwrap();
        assert!(types.contains(&json!("PaymentCaptured")));
        assert!(!types.contains(&json!("OrderPlaced")));
        let n = t.subscription("NotificationQueueSubscription").unwrap();
        assert!(n.filter_policy.as_ref().unwrap()["eventType"]
            .as_array()
            .unwrap()
            .contains(&json!("OrderPlaced")));
        assert_eq!(t.queue_policies.len(), 2);
    }
}
