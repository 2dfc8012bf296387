//! Lambda's wire shapes: the `aws:sqs` and `aws:dynamodb` events handed to a function,
//! and the partial batch response it answers with.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::Record;
use aws_sdk_sqs::types::Message;
use base64::Engine;
use serde_json::{json, Map, Value};

/// `{"batchItemFailures": [{"itemIdentifier": id}]}` -> ids. Null / empty / missing
/// means success.
pub fn parse_item_failures(resp: &Value) -> Result<Vec<String>, String> {
    match resp.get("batchItemFailures") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i.get("itemIdentifier") {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                other => Err(format!("bad itemIdentifier: {other:?}")),
            })
            .collect(),
        Some(other) => Err(format!("batchItemFailures is not a list: {other}")),
    }
}

/// Lambda's `aws:sqs` event for a batch. `redelivery` adds to `ApproximateReceiveCount`
/// (used by duplicate deliveries).
pub fn sqs_event(batch: &[Message], queue_arn: &str, region: &str, redelivery: u32) -> Value {
    sqs_event_of(batch.iter().map(|m| (m, redelivery)), queue_arn, region)
}

/// [`sqs_event`] with a redelivery count per message.
pub(super) fn sqs_event_of<'a>(
    batch: impl Iterator<Item = (&'a Message, u32)>,
    queue_arn: &str,
    region: &str,
) -> Value {
    let records: Vec<Value> = batch
        .map(|(m, redelivery)| {
            let mut attributes = Map::new();
            for (k, v) in m.attributes.iter().flatten() {
                attributes.insert(k.as_str().to_owned(), Value::String(v.clone()));
            }
            if redelivery > 0 {
                let n: u32 = attributes
                    .get("ApproximateReceiveCount")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                attributes.insert(
                    "ApproximateReceiveCount".into(),
                    Value::String((n + redelivery).to_string()),
                );
            }
            let mut message_attributes = Map::new();
            for (k, a) in m.message_attributes.iter().flatten() {
                let b64 = |b: &aws_sdk_sqs::primitives::Blob| {
                    base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                };
                let mut o = Map::new();
                if let Some(s) = &a.string_value {
                    o.insert("stringValue".into(), Value::String(s.clone()));
                }
                if let Some(b) = &a.binary_value {
                    o.insert("binaryValue".into(), Value::String(b64(b)));
                }
                o.insert(
                    "stringListValues".into(),
                    json!(a.string_list_values.clone().unwrap_or_default()),
                );
                o.insert(
                    "binaryListValues".into(),
                    json!(a
                        .binary_list_values
                        .iter()
                        .flatten()
                        .map(b64)
                        .collect::<Vec<_>>()),
                );
                o.insert("dataType".into(), Value::String(a.data_type.clone()));
                message_attributes.insert(k.clone(), Value::Object(o));
            }
            let mut r = json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body.clone().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            });
            if let Some(md5) = &m.md5_of_message_attributes {
                r["md5OfMessageAttributes"] = Value::String(md5.clone());
            }
            r
        })
        .collect();
    json!({ "Records": records })
}

pub(super) fn sequence_number(r: &Record) -> String {
    r.dynamodb
        .as_ref()
        .and_then(|d| d.sequence_number.clone())
        .unwrap_or_default()
}

fn image(
    m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<Value> {
    let m = m?;
    let item = serde_dynamo::Item::from(m.clone());
    serde_json::to_value(item).ok()
}

/// Lambda's `aws:dynamodb` event for a batch of stream records (images in DynamoDB JSON).
pub fn stream_event(batch: &[Record], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let mut dynamodb = Map::new();
            if let Some(d) = &r.dynamodb {
                if let Some(t) = d.approximate_creation_date_time {
                    dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
                }
                if let Some(k) = image(d.keys.as_ref()) {
                    dynamodb.insert("Keys".into(), k);
                }
                if let Some(n) = image(d.new_image.as_ref()) {
                    dynamodb.insert("NewImage".into(), n);
                }
                if let Some(o) = image(d.old_image.as_ref()) {
                    dynamodb.insert("OldImage".into(), o);
                }
                if let Some(s) = &d.sequence_number {
                    dynamodb.insert("SequenceNumber".into(), json!(s));
                }
                if let Some(s) = d.size_bytes {
                    dynamodb.insert("SizeBytes".into(), json!(s));
                }
                if let Some(v) = &d.stream_view_type {
                    dynamodb.insert("StreamViewType".into(), json!(v.as_str()));
                }
            }
            let mut rec = json!({
                "eventID": r.event_id,
                "eventName": r.event_name.as_ref().map(|e| e.as_str()),
                "eventVersion": r.event_version.clone().unwrap_or_else(|| "1.1".into()),
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            });
            if let Some(u) = &r.user_identity {
                rec["userIdentity"] = json!({"type": u.r#type, "principalId": u.principal_id});
            }
            rec
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, StreamRecord, StreamViewType,
    };
    use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};

    #[test]
    fn sqs_event_has_lambdas_shape() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{\"a\":1}")
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("ReserveInventory")
                    .build()
                    .unwrap(),
            )
            .build();
        let ev = sqs_event(
            std::slice::from_ref(&m),
            "arn:aws:sqs:us-east-1:1:q",
            "us-east-1",
            0,
        );
        let r = &ev["Records"][0];
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:1:q");
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(
            r["messageAttributes"]["type"]["stringValue"],
            "ReserveInventory"
        );
        assert_eq!(r["messageAttributes"]["type"]["dataType"], "String");
        // The shared runtime's types accept it.
        let parsed: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(ev).unwrap();
        assert_eq!(parsed.records[0].body.as_deref(), Some("{\"a\":1}"));
        let dup = sqs_event(&[m], "arn", "us-east-1", 1);
        assert_eq!(
            dup["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
    }

    #[test]
    fn stream_event_has_lambdas_shape() {
        let rec = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", AttributeValue::S("ORDER#1".into()))
                    .new_image("pk", AttributeValue::S("ORDER#1".into()))
                    .new_image("total", AttributeValue::N("950".into()))
                    .sequence_number("100")
                    .size_bytes(42)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .approximate_creation_date_time(aws_smithy_types_now())
                    .build(),
            )
            .build();
        let ev = stream_event(&[rec], "arn:stream", "eu-west-1");
        let r = &ev["Records"][0];
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["eventName"], "INSERT");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["dynamodb"]["NewImage"]["total"], json!({"N": "950"}));
        assert_eq!(r["dynamodb"]["Keys"]["pk"], json!({"S": "ORDER#1"}));
        assert!(r["dynamodb"].get("OldImage").is_none());
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(ev).unwrap();
        assert_eq!(
            parsed.records[0].change.sequence_number.as_deref(),
            Some("100")
        );
    }

    fn aws_smithy_types_now() -> aws_sdk_dynamodbstreams::primitives::DateTime {
        aws_sdk_dynamodbstreams::primitives::DateTime::from_secs(1_700_000_000)
    }

    #[test]
    fn redeliveries_count_per_message() {
        let m = |id: &str| {
            Message::builder()
                .message_id(id)
                .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
                .build()
        };
        let (a, b) = (m("a"), m("b"));
        let ev = sqs_event_of([(&a, 0), (&b, 1)].into_iter(), "arn", "us-east-1");
        assert_eq!(
            ev["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "1"
        );
        assert_eq!(
            ev["Records"][1]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
    }

    #[test]
    fn item_failures_parse() {
        assert_eq!(
            parse_item_failures(&json!({})).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_item_failures(&json!({"batchItemFailures": null})).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_item_failures(&json!({"batchItemFailures": [{"itemIdentifier": "a"}]})).unwrap(),
            vec!["a".to_owned()]
        );
        assert!(
            parse_item_failures(&json!({"batchItemFailures": [{"itemIdentifier": ""}]})).is_err()
        );
    }
}
