//! The versioned message envelope shared by facts (SNS) and commands (SQS).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

pub mod trace;

/// The version this code writes. Readers accept any `1.x` and refuse a newer major.
pub const VERSION: &str = "1.0";
const SUPPORTED_MAJOR: u32 = 1;

/// Where a message goes: facts to the `order-events` topic, commands to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Fact,
    InventoryQueue,
    PaymentQueue,
    DeliveryQueue,
    /// The saga's own queue, for its delayed step deadlines.
    SagaQueue,
    OpsAlertsTopic,
}

macro_rules! message_types {
    ($($name:ident => $route:ident),* $(,)?) => {
        /// Every message type dishpatch knows, written as its name. An unknown type is a
        /// decode error.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum MessageType { $($name),* }

        impl MessageType {
            pub const ALL: &'static [MessageType] = &[$(MessageType::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(MessageType::$name => stringify!($name)),* }
            }

            pub fn route(self) -> Route {
                match self { $(MessageType::$name => Route::$route),* }
            }
        }

        impl FromStr for MessageType {
            type Err = DecodeError;
            fn from_str(s: &str) -> Result<Self, DecodeError> {
                match s {
                    $(stringify!($name) => Ok(MessageType::$name),)*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

message_types! {
    OrderPlaced => Fact,
    OrderConfirmed => Fact,
    OrderDispatched => Fact,
    OrderDelivered => Fact,
    OrderCancelled => Fact,
    OrderAwaitingCourier => Fact,
    CompensationFailed => Fact,
    InventoryReserved => Fact,
    InventoryRejected => Fact,
    InventoryReleased => Fact,
    PaymentCaptured => Fact,
    PaymentDeclined => Fact,
    PaymentRefunded => Fact,
    DeliveryDispatched => Fact,
    DeliveryUnavailable => Fact,
    DeliveryWaiting => Fact,
    DeliveryCancelled => Fact,
    DeliveryCompleted => Fact,
    ReserveInventory => InventoryQueue,
    ReleaseInventory => InventoryQueue,
    CommitInventory => InventoryQueue,
    CapturePayment => PaymentQueue,
    RefundPayment => PaymentQueue,
    SettleTopUp => PaymentQueue,
    DispatchDelivery => DeliveryQueue,
    CancelDelivery => DeliveryQueue,
    RetryDispatch => DeliveryQueue,
    StepTimeout => SagaQueue,
    OpsAlert => OpsAlertsTopic,
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type against its name, as tests that read messages by name compare them.
impl PartialEq<&str> for MessageType {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("unsupported message version {0:?} (this code reads {VERSION})")]
    UnsupportedVersion(String),
}

impl DecodeError {
    /// A stable code for logs and DLQ attributes.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "MALFORMED_MESSAGE",
            DecodeError::UnknownType(_) => "UNKNOWN_MESSAGE_TYPE",
            DecodeError::UnsupportedVersion(_) => "UNSUPPORTED_MESSAGE_VERSION",
        }
    }
}

/// The longest id or timestamp an envelope's header may carry.
pub const MAX_HEADER_FIELD: usize = 128;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub version: String,
    pub occurred_at: String,
    pub order_id: String,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The W3C trace context of the code that made it ([`trace`]): its handler's span
    /// continues that trace, one per order across every function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default)]
    pub data: Value,
}

impl Envelope {
    /// A message that starts a conversation (its correlation id is the order id).
    pub fn new(kind: MessageType, order_id: &str, data: impl Serialize) -> Self {
        Envelope {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            version: VERSION.to_owned(),
            occurred_at: now(),
            order_id: order_id.to_owned(),
            correlation_id: order_id.to_owned(),
            causation_id: None,
            traceparent: trace::current(),
            data: serde_json::to_value(data).unwrap_or(Value::Null),
        }
    }

    /// A message caused by this one: same order and correlation, and its trace when
    /// the code making it has none.
    pub fn follow(&self, kind: MessageType, data: impl Serialize) -> Self {
        let next = Envelope::new(kind, &self.order_id, data);
        Envelope {
            causation_id: Some(self.id.clone()),
            correlation_id: self.correlation_id.clone(),
            traceparent: next
                .traceparent
                .clone()
                .or_else(|| self.traceparent.clone()),
            ..next
        }
    }

    /// Parses a message body: a raw envelope (commands) or an SNS notification
    /// wrapping one (facts delivered to SQS without raw delivery). Also its type
    /// (`envelope.kind`), which every handler dispatches on.
    pub fn decode(body: &str) -> Result<(Envelope, MessageType), DecodeError> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let mut value = match (value.get("Type"), value.get("Message")) {
            (Some(Value::String(t)), Some(Value::String(inner))) if t == "Notification" => {
                serde_json::from_str(inner).map_err(|e| DecodeError::Malformed(e.to_string()))?
            }
            _ => value,
        };
        // A type we do not know is reported by name, and only for an envelope that is
        // otherwise well formed: read the rest with a known type in its place.
        let unknown = match value.get_mut("type") {
            Some(Value::String(name)) => match name.parse::<MessageType>() {
                Ok(_) => None,
                Err(e) => {
                    *name = MessageType::OrderPlaced.as_str().to_owned();
                    Some(e)
                }
            },
            _ => None,
        };
        let envelope: Envelope =
            serde_json::from_value(value).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if let Some(e) = unknown {
            return Err(e);
        }
        envelope.check_version()?;
        envelope.check_bounds()?;
        let kind = envelope.kind;
        Ok((envelope, kind))
    }

    /// Every header field is an id or a timestamp of bounded length: a message is
    /// refused before any handler reads it, however it was made. (The body as a whole is
    /// bounded by SQS's 256 KiB.)
    fn check_bounds(&self) -> Result<(), DecodeError> {
        use crate::validation::is_valid_id;
        let bad = |field: &str| {
            Err(DecodeError::Malformed(format!(
                "{field} is missing, too long or not an id"
            )))
        };
        if self.id.is_empty()
            || self.id.len() > MAX_HEADER_FIELD
            || self.id.chars().any(char::is_control)
        {
            return bad("id");
        }
        if !is_valid_id(&self.order_id) {
            return bad("orderId");
        }
        if self.correlation_id.is_empty()
            || self.correlation_id.len() > MAX_HEADER_FIELD
            || self.correlation_id.chars().any(char::is_control)
        {
            return bad("correlationId");
        }
        if self
            .causation_id
            .as_ref()
            .is_some_and(|c| c.len() > MAX_HEADER_FIELD || c.chars().any(char::is_control))
        {
            return bad("causationId");
        }
        if self
            .traceparent
            .as_ref()
            .is_some_and(|t| t.len() > MAX_HEADER_FIELD || !t.chars().all(|c| c.is_ascii_graphic()))
        {
            return bad("traceparent");
        }
        if self.version.len() > 16 || self.occurred_at.len() > MAX_HEADER_FIELD {
            return bad("version or occurredAt");
        }
        Ok(())
    }

    fn check_version(&self) -> Result<(), DecodeError> {
        let major = self
            .version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| DecodeError::UnsupportedVersion(self.version.clone()))?;
        if major == SUPPORTED_MAJOR {
            Ok(())
        } else {
            Err(DecodeError::UnsupportedVersion(self.version.clone()))
        }
    }

    /// The typed payload; unknown fields are ignored.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_value(self.data.clone())
            .map_err(|e| DecodeError::Malformed(format!("{} data: {e}", self.kind)))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serializes")
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Typed payloads, one per message type that carries data.
pub mod data {
    use crate::money::Money;
    use crate::order::{Address, ItemQuantity, PaymentMethod};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ReserveInventory {
        pub restaurant_id: String,
        pub items: Vec<ItemQuantity>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CapturePayment {
        pub customer_id: String,
        pub amount: Money,
        pub method: PaymentMethod,
        /// The provider's card token, for `method: CARD`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub card_token: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DispatchDelivery {
        pub restaurant_id: String,
        pub delivery_address: Address,
        /// When the saga gives up on the step (RFC 3339): an order that finds no courier
        /// waits for one until then. Absent in commands sent before orders waited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dispatch_by: Option<String>,
    }

    /// The delivery function's own delayed retry of a dispatch that found no courier:
    /// the `attempt`-th retry of the order's waiting delivery.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RetryDispatch {
        pub attempt: u32,
    }

    /// A step that failed for a business reason (out of stock, declined, no courier).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Rejected {
        pub reason: String,
    }

    /// Settle a wallet top-up left PENDING by a provider outage (payment's own queue).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SettleTopUp {
        pub customer_id: String,
        pub top_up_id: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Courier {
        pub courier_id: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Amount {
        pub amount: Money,
    }

    /// What the saga says about an order to the outside world (notifications).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OrderFact {
        pub customer_id: String,
        pub total: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub courier_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// The step whose undo failed (CompensationFailed only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failed_step: Option<crate::saga::Step>,
    }

    /// A step deadline, delivered to the saga after `delay_seconds`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct StepTimeout {
        pub step: crate::saga::Step,
        pub attempt: u8,
        pub delay_seconds: u32,
    }

    /// A page for operators, on the ops-alerts topic.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OpsAlert {
        /// The alert's name, also the `eventType` attribute (e.g. `CompensationFailed`).
        pub alert: String,
        pub severity: String,
        pub order_id: String,
        pub customer_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub step: Option<crate::saga::Step>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            MessageType::ReserveInventory,
            "o-1",
            serde_json::json!({"x": 1}),
        )
    }

    /// The sample with a fixed id and time, as its wire format is written out.
    fn pinned() -> Envelope {
        Envelope {
            id: "m-1".into(),
            occurred_at: "2026-11-22T10:00:00.000Z".into(),
            ..sample()
        }
    }

    #[test]
    fn the_wire_format_is_the_type_name() {
        let env = Envelope {
            causation_id: Some("m-0".into()),
            ..pinned()
        };
        assert_eq!(
            env.to_json(),
            r#"{"id":"m-1","type":"ReserveInventory","version":"1.0","occurredAt":"2026-11-22T10:00:00.000Z","orderId":"o-1","correlationId":"o-1","causationId":"m-0","data":{"x":1}}"#
        );
    }

    #[test]
    fn round_trips_raw_and_sns_wrapped() {
        let env = sample();
        let (raw, kind) = Envelope::decode(&env.to_json()).unwrap();
        assert_eq!(raw, env);
        assert_eq!(kind, MessageType::ReserveInventory);
        let wrapped =
            serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": env.to_json()});
        assert_eq!(Envelope::decode(&wrapped.to_string()).unwrap().0, env);
    }

    #[test]
    fn header_fields_past_their_bounds_are_malformed() {
        let long = "x".repeat(MAX_HEADER_FIELD + 1);
        type Set = fn(&mut Envelope, &str);
        let cases: [(&str, Set); 6] = [
            ("id", |e, v| e.id = v.into()),
            ("orderId", |e, v| e.order_id = v.into()),
            ("correlationId", |e, v| e.correlation_id = v.into()),
            ("causationId", |e, v| e.causation_id = Some(v.into())),
            ("traceparent", |e, v| e.traceparent = Some(v.into())),
            ("occurredAt", |e, v| e.occurred_at = v.into()),
        ];
        for (field, set) in cases {
            let mut env = sample();
            set(&mut env, &long);
            let err = Envelope::decode(&env.to_json()).unwrap_err();
            assert_eq!(err.code(), "MALFORMED_MESSAGE", "{field}");
        }
        let mut env = sample();
        env.order_id = "../o-1".into();
        assert!(Envelope::decode(&env.to_json()).is_err());
    }

    #[test]
    fn a_trace_context_is_one_more_header_field_left_out_when_absent() {
        let traced = Envelope {
            traceparent: Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01".into()),
            ..pinned()
        };
        let json = traced.to_json();
        assert!(
            json.contains(r#""correlationId":"o-1","traceparent":"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01","data""#),
            "{json}"
        );
        assert_eq!(Envelope::decode(&json).unwrap().0, traced);
        assert!(!sample().to_json().contains("traceparent"));
        // Without a source, a message made in handling continues its cause's trace.
        let next = traced.follow(MessageType::InventoryReserved, serde_json::json!({}));
        assert_eq!(next.traceparent, traced.traceparent);
        let mut spaced = traced;
        spaced.traceparent = Some("00 x".into());
        assert!(Envelope::decode(&spaced.to_json()).is_err());
    }

    #[test]
    fn follow_keeps_correlation_and_sets_causation() {
        let env = sample();
        let next = env.follow(MessageType::InventoryReserved, serde_json::json!({}));
        assert_eq!(next.correlation_id, env.correlation_id);
        assert_eq!(next.causation_id.as_deref(), Some(env.id.as_str()));
        assert_ne!(next.id, env.id);
    }

    #[test]
    fn refuses_unknown_type_newer_major_and_garbage() {
        let mut v: Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["type"] = "Teleport".into();
        assert_eq!(
            Envelope::decode(&v.to_string()).unwrap_err(),
            DecodeError::UnknownType("Teleport".into())
        );
        // Unknown and malformed besides: malformed.
        assert!(matches!(
            Envelope::decode(r#"{"type":"Teleport"}"#),
            Err(DecodeError::Malformed(_))
        ));
        let mut env = sample();
        env.version = "2.0".into();
        assert!(matches!(
            Envelope::decode(&env.to_json()),
            Err(DecodeError::UnsupportedVersion(_))
        ));
        let mut env = sample();
        env.version = "1.7".into();
        assert!(Envelope::decode(&env.to_json()).is_ok());
        assert!(matches!(
            Envelope::decode("{not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::decode("{}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn ignores_unknown_fields() {
        let mut v: Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["futureField"] = serde_json::json!(true);
        assert!(Envelope::decode(&v.to_string()).is_ok());
    }

    #[test]
    fn every_type_name_parses_back() {
        for t in MessageType::ALL {
            assert_eq!(t.as_str().parse::<MessageType>().unwrap(), *t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(
                serde_json::from_value::<MessageType>(t.as_str().into()).unwrap(),
                *t
            );
        }
    }
}
