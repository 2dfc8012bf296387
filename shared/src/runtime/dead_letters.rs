//! Parking a message in its dead-letter queue together with the reason it failed.
//!
//! SQS's own redrive moves a message to the DLQ unchanged, so why it failed would live
//! only in the logs. A function that knows its DLQ (`DEAD_LETTER_QUEUE_URL`) parks a
//! message itself, with the reason as message attributes, when it can never succeed
//! (undecodable, refused, not this function's) or on the receive that would otherwise
//! be its last (`MAX_RECEIVE_COUNT`, the queue's `maxReceiveCount`). It then reports
//! the item handled, so Lambda deletes the original. If parking fails, the item is
//! reported failed as before and SQS's redrive stays the safety net.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::config::{ConfigError, Env};
use crate::emf::metrics::MESSAGES_PARKED;
use crate::emf::Line;

use dishpatch_core::parked::ALL as OURS;
/// Message attributes of a parked message (what `dishpatch dlq show` prints).
pub use dishpatch_core::parked::{
    FAILED_FUNCTION, FAILED_RECEIVE_COUNT, FAILURE_CODE, FAILURE_REASON, SOURCE_QUEUE,
};
/// SQS accepts at most 10 message attributes.
const MAX_ATTRIBUTES: usize = 10;
/// Long enough for any error chain we produce; attribute values count towards the
/// 256 KiB message limit.
const MAX_REASON_CHARS: usize = 1024;

/// Why a message is parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable: a decode error's code (`MALFORMED_MESSAGE`, ...), a refusal's
    /// (`UNKNOWN_REFERENCE`, `INVALID_CONTENT`), `UNSUPPORTED` or `RETRIES_EXHAUSTED`.
    pub code: &'static str,
    pub reason: String,
    pub function: String,
    pub receive_count: u32,
}

/// Where messages that cannot be processed go (the port; [`SqsDeadLetters`] in AWS).
#[async_trait::async_trait]
pub trait DeadLetters: Send + Sync {
    /// The receive on which a message that keeps failing is parked.
    fn max_receives(&self) -> u32;
    async fn park(&self, msg: &SqsMessage, failure: &Failure) -> Result<(), String>;
}

/// Parks messages with `SendMessage` to the function's DLQ.
pub struct SqsDeadLetters {
    sqs: aws_sdk_sqs::Client,
    url: String,
    max_receives: u32,
}

impl SqsDeadLetters {
    pub fn new(sdk: &aws_config::SdkConfig, url: String, max_receives: u32) -> Self {
        SqsDeadLetters {
            sqs: aws_sdk_sqs::Client::new(sdk),
            url,
            max_receives,
        }
    }

    /// From `DEAD_LETTER_QUEUE_URL` and `MAX_RECEIVE_COUNT` (default 3); `None` when
    /// no DLQ is configured.
    pub fn from_env(
        sdk: &aws_config::SdkConfig,
        env: &Env,
    ) -> Result<Option<Arc<dyn DeadLetters>>, ConfigError> {
        let Some(url) = env.get("DEAD_LETTER_QUEUE_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let max = match env.get("MAX_RECEIVE_COUNT") {
            None => 3,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ConfigError("MAX_RECEIVE_COUNT (a positive integer)".into()))?,
        };
        Ok(Some(Arc::new(SqsDeadLetters::new(
            sdk,
            url.to_owned(),
            max,
        ))))
    }
}

#[async_trait::async_trait]
impl DeadLetters for SqsDeadLetters {
    fn max_receives(&self) -> u32 {
        self.max_receives
    }

    async fn park(&self, msg: &SqsMessage, failure: &Failure) -> Result<(), String> {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.body.clone().unwrap_or_default());
        for (name, value) in parked_attributes(msg, failure) {
            send = send.message_attributes(name, value);
        }
        send.send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        parked(msg, failure);
        Ok(())
    }
}

/// Counts a message parked, by its failure code.
fn parked(msg: &SqsMessage, failure: &Failure) {
    Line::new()
        .count(&MESSAGES_PARKED, [failure.code])
        .property("function", failure.function.as_str())
        .property("messageId", msg.message_id.as_deref().unwrap_or_default())
        .property("receiveCount", failure.receive_count)
        .emit();
}

/// The attributes of the parked copy: the original ones (minus an earlier failure's),
/// then this failure's. Originals beyond SQS's limit of 10 are dropped, ours never.
pub fn parked_attributes(
    msg: &SqsMessage,
    failure: &Failure,
) -> Vec<(String, MessageAttributeValue)> {
    let mut names: Vec<&String> = msg
        .message_attributes
        .keys()
        .filter(|k| !OURS.contains(&k.as_str()))
        .collect();
    names.sort();
    let mut out: Vec<(String, MessageAttributeValue)> = names
        .into_iter()
        .filter_map(|name| {
            let a = &msg.message_attributes[name];
            let data_type = a.data_type.clone().unwrap_or_else(|| "String".into());
            let value = if data_type.starts_with("Binary") {
                let bytes = a.binary_value.as_ref()?;
                MessageAttributeValue::builder().binary_value(Blob::new(bytes.0.clone()))
            } else {
                MessageAttributeValue::builder().string_value(a.string_value.clone()?)
            };
            Some((name.clone(), value.data_type(data_type).build().ok()?))
        })
        .take(MAX_ATTRIBUTES - OURS.len())
        .collect();
    let reason: String = failure.reason.chars().take(MAX_REASON_CHARS).collect();
    let source = msg.event_source_arn.clone().unwrap_or_default();
    let ours = [
        (FAILURE_CODE, failure.code.to_owned(), "String"),
        (FAILURE_REASON, reason, "String"),
        (FAILED_FUNCTION, failure.function.clone(), "String"),
        (
            FAILED_RECEIVE_COUNT,
            failure.receive_count.to_string(),
            "Number",
        ),
        (SOURCE_QUEUE, source, "String"),
    ];
    for (name, value, data_type) in ours {
        // SQS rejects empty string values.
        if value.is_empty() {
            continue;
        }
        let v = MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(value)
            .build()
            .expect("data type and value are set");
        out.push((name.to_owned(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessageAttribute;

    fn failure() -> Failure {
        Failure {
            code: "MALFORMED_MESSAGE",
            reason: "x".repeat(5000),
            function: "inventory".into(),
            receive_count: 1,
        }
    }

    fn string_attr(v: &str) -> SqsMessageAttribute {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(v.into());
        a.data_type = Some("String".into());
        a
    }

    #[test]
    fn keeps_the_originals_replaces_an_earlier_failure_and_bounds_the_reason() {
        let mut msg = SqsMessage::default();
        msg.event_source_arn = Some("arn:aws:sqs:us-east-1:1:q".into());
        msg.message_attributes
            .insert("eventType".into(), string_attr("OrderPlaced"));
        msg.message_attributes
            .insert(FAILURE_CODE.into(), string_attr("OLD"));
        let attrs = parked_attributes(&msg, &failure());
        let get = |n: &str| {
            attrs
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.string_value().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("eventType"), ["OrderPlaced"]);
        assert_eq!(get(FAILURE_CODE), ["MALFORMED_MESSAGE"]);
        assert_eq!(get(FAILURE_REASON)[0].chars().count(), MAX_REASON_CHARS);
        assert_eq!(get(FAILED_FUNCTION), ["inventory"]);
        assert_eq!(get(FAILED_RECEIVE_COUNT), ["1"]);
        assert_eq!(get(SOURCE_QUEUE), ["arn:aws:sqs:us-east-1:1:q"]);
    }

    #[test]
    fn never_exceeds_the_sqs_attribute_limit_and_keeps_its_own() {
        let mut msg = SqsMessage::default();
        for i in 0..10 {
            msg.message_attributes
                .insert(format!("a{i}"), string_attr("v"));
        }
        let attrs = parked_attributes(&msg, &failure());
        // No source ARN: that attribute is left out rather than sent empty.
        assert_eq!(attrs.len(), MAX_ATTRIBUTES - 1);
        assert!(attrs.iter().any(|(k, _)| k == FAILURE_REASON));
    }

    #[test]
    fn configuration() {
        let sdk = aws_config::SdkConfig::builder().build();
        let env = |pairs: &[(&str, &str)]| {
            Env::from_map(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert!(SqsDeadLetters::from_env(&sdk, &env(&[])).unwrap().is_none());
        let d = SqsDeadLetters::from_env(&sdk, &env(&[("DEAD_LETTER_QUEUE_URL", "http://q")]))
            .unwrap()
            .unwrap();
        assert_eq!(d.max_receives(), 3);
        assert!(SqsDeadLetters::from_env(
            &sdk,
            &env(&[
                ("DEAD_LETTER_QUEUE_URL", "http://q"),
                ("MAX_RECEIVE_COUNT", "0")
            ])
        )
        .is_err());
    }

    /// The parked copy as SQS really stores it: body unchanged, every attribute readable.
    #[tokio::test]
    async fn parks_into_a_real_queue_against_the_emulator() {
        let sdk = crate::testing::emulator().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let url = sqs
            .create_queue()
            .queue_name(crate::testing::unique("dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq = SqsDeadLetters::new(&sdk, url.clone(), 3);
        let mut msg = SqsMessage::default();
        msg.body = Some("{not json".into());
        msg.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:src".into());
        msg.message_attributes
            .insert("eventType".into(), string_attr("OrderPlaced"));
        let mut f = failure();
        f.reason = "expected value at line 1".into();
        dlq.park(&msg, &f).await.unwrap();

        let got = sqs
            .receive_message()
            .queue_url(&url)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body(), Some("{not json"));
        let attrs = got[0].message_attributes.as_ref().unwrap();
        let get = |n: &str| attrs[n].string_value().unwrap().to_owned();
        assert_eq!(get(FAILURE_CODE), "MALFORMED_MESSAGE");
        assert_eq!(get(FAILURE_REASON), "expected value at line 1");
        assert_eq!(get(FAILED_RECEIVE_COUNT), "1");
        assert_eq!(attrs[FAILED_RECEIVE_COUNT].data_type(), "Number");
        assert_eq!(get("eventType"), "OrderPlaced");
        assert_eq!(get(SOURCE_QUEUE), "arn:aws:sqs:us-east-1:123456789012:src");
    }
}
