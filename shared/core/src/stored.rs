//! The order item's compact stored form: its timeline and the outbox of its latest
//! write, written so that an order item stays within one write unit (1 KB) on every
//! write of a happy path, and read back exactly as the domain types were.
//!
//! **Timeline.** Each entry is one string, `<ms after createdAt>|<STATUS>|<cause>` and
//! `|<detail>` when there is one, instead of a map of four named attributes. An entry
//! that would not read back the same (a time that is not createdAt plus whole
//! milliseconds in the same format, a `|` in its cause) stays a map: readers take both.
//!
//! **Outbox.** What every entry of one write shares is stored once: the time, the
//! message that caused the write and the conversation (omitted when it is the order's
//! own); the trace context once per item (its `traceparent` attribute). An entry keeps
//! its id and type, and its payload only when the order item itself does not say it
//! (a step deadline's step and attempt, say): a command or fact made from the order is
//! made again from the order read back ([`payload`]), the same code that made it. Its
//! delivery is kept only when its payload does not imply it. An outbox whose entries
//! do not share those fields is stored as the full list, as before; readers take both.

use crate::envelope::{Envelope, MessageType, VERSION};
use crate::orchestration::{messages, Timings};
use crate::order::{OrderStatus, TimelineEntry};
use crate::outbox::{Delivery, Outgoing};
use crate::saga::{SagaCommand, SagaFact, Transition};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::order::Order;

/// A timeline entry as stored: compact when it reads back the same, else the entry.
pub fn timeline_entry(created_at: &str, e: &TimelineEntry) -> Value {
    let compact = (|| {
        let start = parse(created_at)?;
        let at = parse(&e.at)?;
        let ms = (at - start).num_milliseconds();
        if ms < 0 || e.cause.contains('|') || e.cause.is_empty() {
            return None;
        }
        let mut s = format!("{ms}|{}|{}", e.status.as_str(), e.cause);
        if let Some(d) = &e.detail {
            s.push('|');
            s.push_str(d);
        }
        (read_timeline_entry(created_at, &Value::String(s.clone())).as_ref() == Some(e))
            .then_some(s)
    })();
    match compact {
        Some(s) => Value::String(s),
        None => serde_json::to_value(e).expect("timeline entries serialize"),
    }
}

/// A stored timeline entry, either shape; `None` if it is neither.
pub fn read_timeline_entry(created_at: &str, v: &Value) -> Option<TimelineEntry> {
    let Value::String(s) = v else {
        return serde_json::from_value(v.clone()).ok();
    };
    let mut parts = s.splitn(4, '|');
    let ms: i64 = parts.next()?.parse().ok()?;
    let status: OrderStatus = serde_json::from_value(Value::String(parts.next()?.into())).ok()?;
    let cause = parts.next()?.to_owned();
    let detail = parts.next().map(str::to_owned);
    let at = parse(created_at)? + chrono::Duration::milliseconds(ms);
    Some(TimelineEntry {
        at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        status,
        cause,
        detail,
    })
}

/// The timeline of an order item read as JSON, either stored shape, for tools that read
/// the table directly.
pub fn timeline_of(item: &Value) -> Vec<TimelineEntry> {
    let created = item["createdAt"].as_str().unwrap_or_default();
    item.get("timeline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| read_timeline_entry(created, e))
        .collect()
}

/// `at` as milliseconds after `start`, if that reads back as the same string
/// ([`after_ms`]).
pub fn offset_ms(start: &str, at: &str) -> Option<i64> {
    let ms = (parse(at)? - parse(start)?).num_milliseconds();
    (ms >= 0 && after_ms(start, ms).as_deref() == Some(at)).then_some(ms)
}

/// The time `ms` milliseconds after `start` (RFC 3339, milliseconds, UTC).
pub fn after_ms(start: &str, ms: i64) -> Option<String> {
    let at = parse(start)? + chrono::Duration::milliseconds(ms);
    Some(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn parse(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The namespace of the ids of the messages an order write sends ([`message_id`]).
const MESSAGE_IDS: uuid::Uuid = uuid::Uuid::from_u128(0x6d5a_1f0e_2b7c_4c1e_9f3a_5e8d_7c6b_4a21);

/// The id of the `index`-th message of the write that made `version` of the order: one
/// write per version, so ids never repeat, and the item need not store them.
pub fn message_id(order_id: &str, version: u64, index: usize) -> String {
    crate::keys::derived_id(
        MESSAGE_IDS,
        &[order_id, &version.to_string(), &index.to_string()],
    )
}

/// Gives the messages of the write that made `order` their ids ([`message_id`]) and its
/// time: they occurred with the write.
pub fn stamp(order: &Order, outbox: &mut [Outgoing]) {
    for (i, m) in outbox.iter_mut().enumerate() {
        m.envelope.id = message_id(&order.order_id, order.version, i);
        m.envelope.occurred_at.clone_from(&order.updated_at);
    }
}

/// The outbox of one write, compact: what its entries share, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactOutbox {
    /// When the messages occurred, if not when the order was updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The message that caused the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The conversation, when it is not the order's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corr: Option<String>,
    pub m: Vec<CompactEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactEntry {
    /// Absent when it is the [`message_id`] of its place in the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub t: MessageType,
    /// When it occurred, if not at the outbox's `at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Absent when the order item says it ([`payload`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Absent when the payload implies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// `outbox` in the compact form for `order` (the order as written) with the item's
/// trace context, or `None` when its entries do not share what that form stores once.
pub fn compact_outbox(
    order: &Order,
    outbox: &[Outgoing],
) -> Option<(CompactOutbox, Option<String>)> {
    let first = &outbox.first()?.envelope;
    let shared = |e: &Envelope| {
        e.version == VERSION
            && e.order_id == order.order_id
            && e.causation_id == first.causation_id
            && e.correlation_id == first.correlation_id
            && e.traceparent == first.traceparent
    };
    if !outbox.iter().all(|m| shared(&m.envelope)) {
        return None;
    }
    let m = outbox
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let e = &o.envelope;
            CompactEntry {
                id: (e.id != message_id(&order.order_id, order.version, i)).then(|| e.id.clone()),
                t: e.kind,
                at: (e.occurred_at != first.occurred_at).then(|| e.occurred_at.clone()),
                data: (payload(order, e.kind).as_ref() != Some(&e.data)).then(|| e.data.clone()),
                delivery: (Delivery::implied(e).ok().as_ref() != Some(&o.delivery))
                    .then(|| o.delivery.clone()),
            }
        })
        .collect();
    let compact = CompactOutbox {
        at: (first.occurred_at != order.updated_at).then(|| first.occurred_at.clone()),
        cause: first.causation_id.clone(),
        corr: (first.correlation_id != order.order_id).then(|| first.correlation_id.clone()),
        m,
    };
    // Stored only if it reads back as it was.
    let read = expand_outbox(order, &compact, first.traceparent.as_deref()).ok()?;
    (read == outbox).then_some((compact, first.traceparent.clone()))
}

/// The outbox a [`CompactOutbox`] stands for, read with the order item it is in.
pub fn expand_outbox(
    order: &Order,
    c: &CompactOutbox,
    traceparent: Option<&str>,
) -> Result<Vec<Outgoing>, String> {
    c.m.iter()
        .enumerate()
        .map(|(i, m)| {
            let data = match &m.data {
                Some(d) => d.clone(),
                None => payload(order, m.t)
                    .ok_or_else(|| format!("no payload stored for a {} message", m.t))?,
            };
            let at = c.at.as_ref().unwrap_or(&order.updated_at);
            let envelope = Envelope {
                id: m
                    .id
                    .clone()
                    .unwrap_or_else(|| message_id(&order.order_id, order.version, i)),
                kind: m.t,
                version: VERSION.to_owned(),
                occurred_at: m.at.clone().unwrap_or_else(|| at.clone()),
                order_id: order.order_id.clone(),
                correlation_id: c.corr.clone().unwrap_or_else(|| order.order_id.clone()),
                causation_id: c.cause.clone(),
                traceparent: traceparent.map(str::to_owned),
                data,
            };
            let delivery = match &m.delivery {
                Some(d) => d.clone(),
                None => Delivery::implied(&envelope).map_err(|e| e.to_string())?,
            };
            Ok(Outgoing { envelope, delivery })
        })
        .collect()
}

/// The payload the saga gives a message of type `kind` sent by `order` (as written),
/// made by the code that makes it ([`messages`]); `None` for a message whose payload is
/// not the order's alone (a step deadline).
pub fn payload(order: &Order, kind: MessageType) -> Option<Value> {
    use MessageType as M;
    let command = match kind {
        M::ReserveInventory => Some(SagaCommand::ReserveInventory),
        M::CapturePayment => Some(SagaCommand::CapturePayment),
        M::DispatchDelivery => Some(SagaCommand::DispatchDelivery),
        M::ReleaseInventory => Some(SagaCommand::ReleaseInventory),
        M::RefundPayment => Some(SagaCommand::RefundPayment),
        M::CancelDelivery => Some(SagaCommand::CancelDelivery),
        _ => None,
    };
    let fact = match kind {
        M::OrderPlaced => Some(SagaFact::OrderPlaced),
        M::OrderConfirmed => Some(SagaFact::OrderConfirmed),
        M::OrderDispatched => Some(SagaFact::OrderDispatched),
        M::OrderDelivered => Some(SagaFact::OrderDelivered),
        M::OrderCancelled => Some(SagaFact::OrderCancelled),
        M::CompensationFailed | M::OpsAlert => Some(SagaFact::CompensationFailed),
        _ => None,
    };
    if command.is_none() && fact.is_none() {
        return None;
    }
    let t = Transition {
        state: order.saga.clone(),
        commands: command.into_iter().collect(),
        facts: fact.into_iter().collect(),
        timeouts: vec![],
    };
    messages(order, &t, None, &Timings::default())
        .into_iter()
        .find(|m| m.envelope.kind == kind)
        .map(|m| m.envelope.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::advance;
    use crate::saga::{self, Outcome, SagaEvent};

    fn placed() -> (Order, Vec<Outgoing>) {
        let o = Order {
            version: 0,
            timeline: vec![],
            created_at: "2026-01-01T00:00:00.000Z".into(),
            ..crate::fixtures::sample_order()
        };
        advance(
            &o,
            &saga::start(),
            "PlaceOrder",
            None,
            "2026-01-01T00:00:00.000Z",
            &Timings::default(),
        )
    }

    fn next(o: &Order, e: SagaEvent, cause: &Envelope) -> (Order, Vec<Outgoing>) {
        let Outcome::Apply(t) = saga::transition(&o.saga, &e).unwrap() else {
            panic!("{e:?} moves the order")
        };
        advance(
            o,
            &t,
            cause.kind.as_str(),
            Some(cause),
            "2026-01-01T00:00:01.234Z",
            &Timings::default(),
        )
    }

    #[test]
    fn a_time_is_an_offset_only_when_it_reads_back_the_same() {
        let start = "2026-01-01T00:00:00.000Z";
        assert_eq!(offset_ms(start, "2026-01-01T00:05:00.000Z"), Some(300_000));
        assert_eq!(
            after_ms(start, 300_000).as_deref(),
            Some("2026-01-01T00:05:00.000Z")
        );
        assert_eq!(offset_ms(start, "2026-01-01T00:05:00Z"), None);
        assert_eq!(offset_ms(start, "2025-12-31T00:00:00.000Z"), None);
        assert_eq!(offset_ms("not a time", start), None);
    }

    #[test]
    fn timeline_entries_read_back_the_same_in_either_shape() {
        let created = "2026-01-01T00:00:00.000Z";
        let e = TimelineEntry {
            at: "2026-01-01T00:00:01.234Z".into(),
            status: OrderStatus::Reserved,
            cause: "InventoryReserved".into(),
            detail: Some("CapturePayment, reason: a|b".into()),
        };
        let stored = timeline_entry(created, &e);
        assert_eq!(
            stored,
            Value::String("1234|RESERVED|InventoryReserved|CapturePayment, reason: a|b".into())
        );
        assert_eq!(read_timeline_entry(created, &stored), Some(e.clone()));
        // No detail: no trailing field.
        let bare = TimelineEntry {
            detail: None,
            ..e.clone()
        };
        assert_eq!(
            timeline_entry(created, &bare),
            Value::String("1234|RESERVED|InventoryReserved".into())
        );
        // What would not read back the same stays a map, and maps still read.
        for odd in [
            TimelineEntry {
                at: "2026-01-01T00:00:01Z".into(),
                ..e.clone()
            },
            TimelineEntry {
                at: "2025-12-31T23:59:59.000Z".into(),
                ..e.clone()
            },
            TimelineEntry {
                cause: "a|b".into(),
                ..e.clone()
            },
        ] {
            let stored = timeline_entry(created, &odd);
            assert!(stored.is_object(), "{stored}");
            assert_eq!(read_timeline_entry(created, &stored), Some(odd));
        }
        assert_eq!(
            read_timeline_entry(created, &Value::String("x|y".into())),
            None
        );
    }

    #[test]
    fn a_saga_outbox_is_stored_compact_and_reads_back_the_same() {
        let (order, outbox) = placed();
        let (c, tp) = compact_outbox(&order, &outbox).expect("compact");
        assert_eq!(tp, outbox[0].envelope.traceparent);
        // Commands and facts carry no payload: the order says it; the deadline does.
        for m in &c.m {
            assert_eq!(m.id, None, "derived from the order's id and version: {m:?}");
            assert_eq!(m.data.is_some(), m.t == MessageType::StepTimeout, "{m:?}");
            assert!(m.delivery.is_none(), "implied by the payload: {m:?}");
        }
        assert_eq!(c.corr, None);
        assert_eq!(c.at, None, "the order's own time");
        assert_eq!(expand_outbox(&order, &c, tp.as_deref()).unwrap(), outbox);
        // Caused by a message: its id and conversation are kept once.
        let cause = outbox[0]
            .envelope
            .follow(MessageType::InventoryReserved, Value::Null);
        let (reserved, out) = next(&order, SagaEvent::InventoryReserved, &cause);
        let (c, tp) = compact_outbox(&reserved, &out).expect("compact");
        assert_eq!(c.cause.as_deref(), Some(cause.id.as_str()));
        assert_eq!(expand_outbox(&reserved, &c, tp.as_deref()).unwrap(), out);
        // Read with another order, a payload made from it would differ: so a stored
        // payload is always the one sent.
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.to_string().len() < 400, "{json}");
    }

    #[test]
    fn an_outbox_whose_entries_differ_is_not_compacted() {
        let (order, mut outbox) = placed();
        outbox[1].envelope.traceparent =
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        assert_eq!(compact_outbox(&order, &outbox), None);
        // A time of its own is kept with the entry.
        let (order, mut outbox) = placed();
        outbox[1].envelope.occurred_at = "2026-01-01T00:00:09.000Z".into();
        let (c, tp) = compact_outbox(&order, &outbox).unwrap();
        assert_eq!(c.m[1].at.as_deref(), Some("2026-01-01T00:00:09.000Z"));
        assert_eq!(expand_outbox(&order, &c, tp.as_deref()).unwrap(), outbox);
        let (order, mut outbox) = placed();
        outbox[0].envelope.order_id = "another".into();
        assert_eq!(compact_outbox(&order, &outbox), None);
        assert_eq!(compact_outbox(&order, &[]), None);
        // A payload the order does not say is stored as sent.
        let (order, mut outbox) = placed();
        outbox[0].envelope.data = serde_json::json!({"odd": true});
        let (c, tp) = compact_outbox(&order, &outbox).unwrap();
        assert_eq!(c.m[0].data, Some(serde_json::json!({"odd": true})));
        assert_eq!(expand_outbox(&order, &c, tp.as_deref()).unwrap(), outbox);
    }
}
