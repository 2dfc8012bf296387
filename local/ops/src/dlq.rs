//! Dead-letter queues: what is there, why, and moving it back to the source queue.
//!
//! Reading a queue means receiving: `show` receives with a short visibility timeout and
//! makes every message visible again at once (each read counts as a receive, as in the
//! console). `redrive` is a manual move that works on SQS and the emulator alike
//! (`SendMessage` to the source with the same body and attributes, then `DeleteMessage`
//! from the DLQ); moto does not implement `StartMessageMoveTask`, and a move task could
//! not select messages by id anyway.
//!
//! **Policy.** Each redrive stamps the message attribute [`REDRIVE_COUNT_ATTRIBUTE`].
//! `--auto` moves only messages redriven fewer than [`MAX_AUTO_REDRIVES`] times; the rest
//! wait for an operator's explicit `--id` or `--all` (a manual redrive moves anything).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName as Sys};
use serde_json::Value;

use crate::Target;
use crate::{Error, Result};
use dishpatch_core::parked;
use dishpatch_template::Template;

/// The message attribute counting how many times a message was redriven.
pub const REDRIVE_COUNT_ATTRIBUTE: &str = "DishpatchRedriveCount";
/// `--auto` redrives a message only while it was redriven fewer times than this.
pub const MAX_AUTO_REDRIVES: u32 = 3;
/// How long a read holds messages invisible before giving them back (seconds).
const HOLD_SECS: i32 = 30;

/// What feeds a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A queue whose `RedrivePolicy` targets it.
    Queue {
        logical_id: String,
        max_receive_count: i64,
    },
    /// A DynamoDB stream event's `OnFailure` destination (failure records, not the
    /// records themselves: nothing to redrive).
    Stream { table: String, function: String },
    /// Named like a DLQ, but nothing in the template targets it.
    Unknown,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Queue {
                logical_id,
                max_receive_count,
            } => write!(f, "{logical_id} (maxReceiveCount {max_receive_count})"),
            Source::Stream { table, function } => write!(f, "{table} stream -> {function}"),
            Source::Unknown => f.write_str("?"),
        }
    }
}

/// Every dead-letter queue of the template, with its source: the queues a
/// `RedrivePolicy` or a stream `OnFailure` destination targets, and those named `*DLQ`.
pub fn dead_letter_queues(template: &Template) -> BTreeMap<String, Source> {
    let mut out = BTreeMap::new();
    for q in &template.queues {
        if q.logical_id.ends_with("DLQ") {
            out.insert(q.logical_id.clone(), Source::Unknown);
        }
    }
    for f in &template.functions {
        for e in f.stream_events() {
            if let Some(dlq) = &e.on_failure_queue {
                out.insert(
                    dlq.clone(),
                    Source::Stream {
                        table: e.table.clone(),
                        function: f.logical_id.clone(),
                    },
                );
            }
        }
    }
    for q in &template.queues {
        if let Some(r) = &q.redrive {
            out.insert(
                r.dead_letter_queue.clone(),
                Source::Queue {
                    logical_id: q.logical_id.clone(),
                    max_receive_count: r.max_receive_count,
                },
            );
        }
    }
    out
}

/// One DLQ and how many messages it holds.
#[derive(Debug, Clone)]
pub struct DlqStatus {
    pub logical_id: String,
    pub source: Source,
    /// `None` when the queue does not exist (or cannot be found).
    pub url: Option<String>,
    /// `ApproximateNumberOfMessages`.
    pub visible: i64,
    /// `ApproximateNumberOfMessagesNotVisible` (being read or redriven right now).
    pub in_flight: i64,
    pub error: Option<String>,
}

impl DlqStatus {
    pub fn count(&self) -> i64 {
        self.visible + self.in_flight
    }
}

/// `dlq list`: every DLQ with its approximate message count and source.
pub async fn list(target: &Target) -> Result<Vec<DlqStatus>> {
    let sqs = target.sqs();
    let mut out = Vec::new();
    for (id, source) in dead_letter_queues(&target.template) {
        let mut status = DlqStatus {
            logical_id: id.clone(),
            source,
            url: None,
            visible: 0,
            in_flight: 0,
            error: None,
        };
        match target.queue_url(&id).await {
            Err(e) => status.error = Some(e.to_string()),
            Ok(url) => {
                match sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                {
                    Ok(a) => {
                        let get = |n: QueueAttributeName| {
                            a.attributes
                                .as_ref()
                                .and_then(|m| m.get(&n))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0)
                        };
                        status.visible = get(QueueAttributeName::ApproximateNumberOfMessages);
                        status.in_flight =
                            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
                    }
                    Err(e) => {
                        status.error = Some(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
                    }
                }
                status.url = Some(url);
            }
        }
        out.push(status);
    }
    Ok(out)
}

/// Where a failure reason was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonSource {
    /// A message attribute (its name).
    Attribute(String),
    /// The body (a Lambda failure record, or a `reason`/`error` field).
    Body,
    /// Not recorded: worked out here from the body (not JSON, no envelope type...).
    Diagnosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub text: String,
    pub source: ReasonSource,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            ReasonSource::Attribute(a) => write!(f, "{} [attribute {a}]", self.text),
            ReasonSource::Body => write!(f, "{} [body]", self.text),
            ReasonSource::Diagnosed => write!(f, "{} [diagnosed]", self.text),
        }
    }
}

/// One message of a DLQ.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    /// `ApproximateReceiveCount` (this read included).
    pub receive_count: u32,
    /// `SentTimestamp`, RFC 3339.
    pub sent_at: Option<String>,
    /// The envelope's `type`.
    pub kind: Option<String>,
    pub order_id: Option<String>,
    pub reason: Option<Reason>,
    /// The `failureCode` attribute of a message a function parked itself.
    pub code: Option<String>,
    /// [`REDRIVE_COUNT_ATTRIBUTE`]: how many times it was redriven already.
    pub redrives: u32,
    pub body: String,
}

impl DeadLetter {
    pub fn of(m: &Message) -> DeadLetter {
        let sys = |k: Sys| m.attributes.as_ref().and_then(|a| a.get(&k)).cloned();
        let body = m.body.clone().unwrap_or_default();
        let json = envelope_json(&body);
        let field = |k: &str| {
            json.as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        DeadLetter {
            message_id: m.message_id.clone().unwrap_or_default(),
            receive_count: sys(Sys::ApproximateReceiveCount)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            sent_at: sys(Sys::SentTimestamp)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339()),
            kind: field("type"),
            order_id: field("orderId"),
            reason: reason(m, &body, json.as_ref()),
            code: m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(parked::FAILURE_CODE))
                .and_then(|v| v.string_value.clone()),
            redrives: redrive_count(m),
            body,
        }
    }
}

/// The body as JSON, unwrapping an SNS notification (non-raw delivery).
fn envelope_json(body: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(body).ok()?;
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        if let Some(inner) = v.get("Message").and_then(Value::as_str) {
            if let Ok(inner) = serde_json::from_str(inner) {
                return Some(inner);
            }
        }
    }
    Some(v)
}

fn redrive_count(m: &Message) -> u32 {
    m.message_attributes
        .as_ref()
        .and_then(|a| a.get(REDRIVE_COUNT_ATTRIBUTE))
        .and_then(|v| v.string_value.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The failure reason: a message attribute, else the body, else a diagnosis.
fn reason(m: &Message, body: &str, json: Option<&Value>) -> Option<Reason> {
    if let Some(attrs) = &m.message_attributes {
        let mut names: Vec<&String> = attrs.keys().collect();
        names.sort();
        for name in names {
            let lower = name.to_ascii_lowercase();
            if lower.contains("reason") || lower.contains("error") {
                if let Some(v) = attrs[name].string_value.as_deref() {
                    return Some(Reason {
                        text: v.to_owned(),
                        source: ReasonSource::Attribute(name.clone()),
                    });
                }
            }
        }
    }
    let Some(json) = json else {
        let err = serde_json::from_str::<Value>(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Some(Reason {
            text: format!("body is not JSON ({err})"),
            source: ReasonSource::Diagnosed,
        });
    };
    // A Lambda failure record (stream OnFailure destinations).
    if let Some(condition) = json
        .pointer("/requestContext/condition")
        .and_then(Value::as_str)
    {
        let mut text = condition.to_owned();
        if let Some(e) = json
            .pointer("/responseContext/functionError")
            .and_then(Value::as_str)
        {
            text.push_str(&format!(" ({e})"));
        }
        if let Some(n) = json.pointer("/requestContext/approximateInvokeCount") {
            text.push_str(&format!(" after {n} attempts"));
        }
        return Some(Reason {
            text,
            source: ReasonSource::Body,
        });
    }
    for k in ["failureReason", "reason", "error", "errorMessage"] {
        if let Some(v) = json.get(k).and_then(Value::as_str) {
            return Some(Reason {
                text: v.to_owned(),
                source: ReasonSource::Body,
            });
        }
    }
    let diagnosed = |text: String| {
        Some(Reason {
            text,
            source: ReasonSource::Diagnosed,
        })
    };
    match json.get("type").and_then(Value::as_str) {
        None => diagnosed("not an envelope: no `type`".to_owned()),
        Some(t) => match dishpatch_core::envelope::MessageType::from_str(t) {
            Err(e) => diagnosed(e.to_string()),
            Ok(_) if json.get("orderId").and_then(Value::as_str).is_none() => {
                diagnosed("envelope without `orderId`".to_owned())
            }
            // A well-formed envelope: the handler failed; its logs have the error
            // (`message_id` field).
            Ok(_) => None,
        },
    }
}

/// Receives up to `limit` distinct messages, holding them invisible for `HOLD_SECS`.
async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    limit: Option<usize>,
) -> Result<Vec<Message>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut empty = 0;
    while limit.is_none_or(|l| out.len() < l) && empty < 2 {
        let want = limit.map_or(10, |l| (l - out.len()).min(10)) as i32;
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(want.max(1))
            .visibility_timeout(HOLD_SECS)
            .wait_time_seconds(0)
            .message_system_attribute_names(Sys::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| Error::aws(format!("receive from {url}"), e))?
            .messages
            .unwrap_or_default();
        let before = out.len();
        for m in got {
            if seen.insert(m.message_id.clone().unwrap_or_default()) {
                out.push(m);
            }
        }
        if out.len() == before {
            // Short polls sample: retry once before concluding the queue is drained.
            empty += 1;
        } else {
            empty = 0;
        }
    }
    Ok(out)
}

/// Makes held messages visible again.
async fn release(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[&Message]) {
    for m in messages {
        let Some(handle) = &m.receipt_handle else {
            continue;
        };
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(
                queue = url, error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                "could not release a message; it reappears after {HOLD_SECS} s"
            );
        }
    }
}

fn check_dlq(target: &Target, dlq: &str) -> Result<Source> {
    dead_letter_queues(&target.template)
        .remove(dlq)
        .ok_or_else(|| {
            let known: Vec<String> = dead_letter_queues(&target.template).into_keys().collect();
            Error::Other(format!(
                "{dlq} is not a dead-letter queue of the template (known: {})",
                known.join(", ")
            ))
        })
}

/// `dlq show`: up to `max` messages of a DLQ, left in place.
pub async fn show(target: &Target, dlq: &str, max: usize) -> Result<Vec<DeadLetter>> {
    check_dlq(target, dlq)?;
    let url = target.queue_url(dlq).await?;
    let sqs = target.sqs();
    let messages = receive_all(&sqs, &url, Some(max.max(1))).await?;
    release(&sqs, &url, &messages.iter().collect::<Vec<_>>()).await;
    Ok(messages.iter().map(DeadLetter::of).collect())
}

/// Which messages `redrive` moves.
#[derive(Debug, Clone, Default)]
pub struct RedriveOptions {
    /// These message ids (manual).
    pub ids: Vec<String>,
    /// Every message (manual).
    pub all: bool,
    /// Every message redriven fewer than [`MAX_AUTO_REDRIVES`] times (the policy).
    pub auto: bool,
}

/// One moved message.
#[derive(Debug, Clone)]
pub struct Moved {
    /// Its id in the DLQ.
    pub message_id: String,
    /// Its new id in the source queue.
    pub new_message_id: String,
    pub to: String,
    pub kind: Option<String>,
    pub order_id: Option<String>,
    /// Redrives so far, this one included.
    pub redrives: u32,
}

#[derive(Debug, Clone, Default)]
pub struct RedriveReport {
    pub moved: Vec<Moved>,
    /// Left in the DLQ, with why.
    pub skipped: Vec<(String, String)>,
    /// Asked-for ids not found in the DLQ.
    pub not_found: Vec<String>,
}

/// `dlq redrive`: moves messages back to the DLQ's source queue.
pub async fn redrive(target: &Target, dlq: &str, opts: &RedriveOptions) -> Result<RedriveReport> {
    let source = match check_dlq(target, dlq)? {
        Source::Queue { logical_id, .. } => logical_id,
        other @ Source::Stream { .. } => {
            return Err(Error::Other(format!(
                "{dlq} holds failure records of the {other}: there is no message to redrive \
                 (fix the cause, then replay the records from the stream or the table)"
            )))
        }
        Source::Unknown => {
            return Err(Error::Other(format!(
                "{dlq}: no queue of the template redrives to it, so there is no source queue"
            )))
        }
    };
    if !opts.all && !opts.auto && opts.ids.is_empty() {
        return Err(Error::Other(
            "say which messages: --id MSGID (repeatable), --all or --auto".to_owned(),
        ));
    }
    let dlq_url = target.queue_url(dlq).await?;
    let source_url = target.queue_url(&source).await?;
    let sqs = target.sqs();
    let messages = receive_all(&sqs, &dlq_url, None).await?;
    let wanted: BTreeSet<&str> = opts.ids.iter().map(String::as_str).collect();
    let mut report = RedriveReport::default();
    let mut keep: Vec<&Message> = Vec::new();
    for m in &messages {
        let letter = DeadLetter::of(m);
        let selected = opts.all || wanted.contains(letter.message_id.as_str());
        if !selected {
            if opts.auto {
                if letter.redrives >= MAX_AUTO_REDRIVES {
                    report.skipped.push((
                        letter.message_id.clone(),
                        format!(
                            "redriven {} times already: manual redrive only (--id)",
                            letter.redrives
                        ),
                    ));
                    keep.push(m);
                    continue;
                }
            } else {
                keep.push(m);
                continue;
            }
        }
        match move_one(&sqs, &source_url, &dlq_url, m, letter.redrives + 1).await {
            Ok(new_id) => report.moved.push(Moved {
                message_id: letter.message_id,
                new_message_id: new_id,
                to: source.clone(),
                kind: letter.kind,
                order_id: letter.order_id,
                redrives: letter.redrives + 1,
            }),
            Err(e) => {
                report.skipped.push((letter.message_id, e.to_string()));
                keep.push(m);
            }
        }
    }
    release(&sqs, &dlq_url, &keep).await;
    let found: BTreeSet<String> = messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    report.not_found = opts
        .ids
        .iter()
        .filter(|id| !found.contains(*id))
        .cloned()
        .collect();
    Ok(report)
}

/// Sends a copy to the source queue, then deletes it from the DLQ.
async fn move_one(
    sqs: &aws_sdk_sqs::Client,
    source_url: &str,
    dlq_url: &str,
    m: &Message,
    redrives: u32,
) -> Result<String> {
    let mut attrs: HashMap<String, MessageAttributeValue> =
        m.message_attributes.clone().unwrap_or_default();
    attrs.insert(
        REDRIVE_COUNT_ATTRIBUTE.to_owned(),
        MessageAttributeValue::builder()
            .data_type("Number")
            .string_value(redrives.to_string())
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    let mut send = sqs
        .send_message()
        .queue_url(source_url)
        .message_body(m.body.clone().unwrap_or_default())
        .set_message_attributes(Some(attrs));
    if source_url.ends_with(".fifo") {
        let sys = |k: Sys| m.attributes.as_ref().and_then(|a| a.get(&k)).cloned();
        send = send
            .set_message_group_id(sys(Sys::MessageGroupId))
            .message_deduplication_id(format!(
                "{}-r{redrives}",
                m.message_id.as_deref().unwrap_or_default()
            ));
    }
    let sent = send
        .send()
        .await
        .map_err(|e| Error::aws(format!("send to {source_url}"), e))?;
    sqs.delete_message()
        .queue_url(dlq_url)
        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                format!("sent to the source but could not delete from {dlq_url} (now in both)"),
                e,
            )
        })?;
    Ok(sent.message_id.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> Message {
        Message::builder()
            .message_id("m-1")
            .body(body)
            .attributes(Sys::ApproximateReceiveCount, "4")
            .attributes(Sys::SentTimestamp, "1700000000000")
            .build()
    }

    #[test]
    fn the_template_dlqs_have_sources() {
        let dlqs = dead_letter_queues(&Template::embedded().unwrap());
        assert!(matches!(
            &dlqs["InventoryQueueDLQ"],
            Source::Queue { logical_id, max_receive_count: 3 } if logical_id == "InventoryQueue"
        ));
        assert!(matches!(&dlqs["OrdersStreamDLQ"], Source::Stream { .. }));
    }

    #[test]
    fn reasons_are_found_or_diagnosed() {
        let l = DeadLetter::of(&msg("{not json"));
        assert_eq!(l.receive_count, 4);
        assert_eq!(l.sent_at.as_deref(), Some("2023-11-14T22:13:20+00:00"));
        assert_eq!(l.reason.unwrap().source, ReasonSource::Diagnosed);

        let l = DeadLetter::of(&msg(r#"{"type":"Nope","orderId":"o-1"}"#));
        assert_eq!(l.kind.as_deref(), Some("Nope"));
        assert_eq!(l.order_id.as_deref(), Some("o-1"));
        assert!(l.reason.unwrap().text.contains("Nope"));

        let l = DeadLetter::of(&msg(
            r#"{"requestContext":{"condition":"RetryAttemptsExhausted","approximateInvokeCount":3}}"#,
        ));
        assert_eq!(l.reason.unwrap().source, ReasonSource::Body);

        let m = Message::builder()
            .body(r#"{"type":"ReserveInventory","orderId":"o-2"}"#)
            .message_attributes(
                "failureReason",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("out of stock forever")
                    .build()
                    .unwrap(),
            )
            .build();
        let r = DeadLetter::of(&m).reason.unwrap();
        assert_eq!(r.text, "out of stock forever");
        assert_eq!(r.source, ReasonSource::Attribute("failureReason".into()));
        assert!(
            DeadLetter::of(&msg(r#"{"type":"ReserveInventory","orderId":"o-2"}"#))
                .reason
                .is_none()
        );
    }
}
