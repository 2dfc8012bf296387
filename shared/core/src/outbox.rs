//! An outbox entry: a message an order write sends, and how it is to be delivered.
//! What delivery needs (a queue delay, an alert's attributes) is decided where the
//! message is made, so the publisher routes by type and never reads a payload.

use crate::envelope::{data, DecodeError, Envelope, MessageType};
use crate::orchestration::MAX_DELAY_SECONDS;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Stored as `{envelope, delivery}`, `delivery` left out when there is none: each entry
/// counts against the order item's write units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outgoing {
    pub envelope: Envelope,
    #[serde(skip_serializing_if = "Delivery::is_plain")]
    pub delivery: Delivery,
}

/// How a message is delivered beyond its route; the default is as soon as possible,
/// with no attributes but its type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// How long the queue holds the message first (a step deadline), within
    /// [`MAX_DELAY_SECONDS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<u32>,
    /// A page to operators: what its topic's subscribers see and filter on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The `eventType` attribute (the alert's name, e.g. `CompensationFailed`).
    pub event_type: String,
    /// The `severity` attribute.
    pub severity: String,
    /// The notification's subject, as an e-mail subscriber reads it.
    pub subject: String,
}

impl Alert {
    pub fn of(alert: &data::OpsAlert) -> Alert {
        Alert {
            event_type: alert.alert.clone(),
            severity: alert.severity.clone(),
            subject: format!(
                "{} {}: order {}",
                alert.severity, alert.alert, alert.order_id
            ),
        }
    }
}

impl Delivery {
    pub fn is_plain(&self) -> bool {
        *self == Delivery::default()
    }

    /// The delivery a message's payload implies (a step deadline's delay, an alert's
    /// attributes): what an entry stored without one is delivered with.
    pub fn implied(envelope: &Envelope) -> Result<Delivery, DecodeError> {
        Delivery::of_bare(envelope)
    }

    /// The delivery of an entry stored as a bare envelope, before entries carried one:
    /// read from its payload, as the publisher did then.
    fn of_bare(envelope: &Envelope) -> Result<Delivery, DecodeError> {
        Ok(match envelope.kind {
            MessageType::StepTimeout => Delivery {
                delay_seconds: Some(
                    (envelope.data_as::<data::StepTimeout>()?.delay_seconds).min(MAX_DELAY_SECONDS),
                ),
                alert: None,
            },
            MessageType::OpsAlert => Delivery {
                delay_seconds: None,
                alert: Some(Alert::of(&envelope.data_as()?)),
            },
            _ => Delivery::default(),
        })
    }
}

impl Outgoing {
    /// A message delivered by its route alone.
    pub fn plain(envelope: Envelope) -> Outgoing {
        Outgoing {
            envelope,
            delivery: Delivery::default(),
        }
    }
}

/// Reads both shapes an order item may hold: `{envelope, delivery?}`, and a bare
/// envelope written before, whose delivery is derived here, once.
impl<'de> Deserialize<'de> for Outgoing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Entry {
            envelope: Envelope,
            #[serde(default)]
            delivery: Delivery,
        }
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        if value.get("envelope").is_some() {
            let Entry { envelope, delivery } =
                serde_json::from_value(value).map_err(D::Error::custom)?;
            return Ok(Outgoing { envelope, delivery });
        }
        let envelope: Envelope = serde_json::from_value(value).map_err(D::Error::custom)?;
        let delivery = Delivery::of_bare(&envelope).map_err(D::Error::custom)?;
        Ok(Outgoing { envelope, delivery })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saga::Step;

    fn timeout(delay_seconds: u32) -> Envelope {
        let data = data::StepTimeout {
            step: Step::Payment,
            attempt: 1,
            delay_seconds,
        };
        Envelope::new(MessageType::StepTimeout, "o-1", data)
    }

    fn alert() -> Envelope {
        let data = data::OpsAlert {
            alert: "CompensationFailed".into(),
            severity: "CRITICAL".into(),
            order_id: "o-1".into(),
            customer_id: "alice".into(),
            step: Some(Step::Payment),
            reason: None,
        };
        Envelope::new(MessageType::OpsAlert, "o-1", data)
    }

    #[test]
    fn an_entry_without_delivery_is_its_envelope_under_a_key() {
        let plain = Outgoing::plain(Envelope::new(
            MessageType::ReserveInventory,
            "o-1",
            serde_json::json!({}),
        ));
        let stored = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"envelope": serde_json::to_value(&plain.envelope).unwrap()})
        );
        assert_eq!(serde_json::from_value::<Outgoing>(stored).unwrap(), plain);
        let delayed = Outgoing {
            delivery: Delivery {
                delay_seconds: Some(31),
                alert: None,
            },
            ..Outgoing::plain(timeout(31))
        };
        let stored = serde_json::to_value(&delayed).unwrap();
        assert_eq!(stored["delivery"], serde_json::json!({"delaySeconds": 31}));
        assert_eq!(serde_json::from_value::<Outgoing>(stored).unwrap(), delayed);
    }

    #[test]
    fn a_bare_envelope_stored_before_reads_with_the_delivery_its_data_implies() {
        let read = |e: &Envelope| {
            serde_json::from_value::<Outgoing>(serde_json::to_value(e).unwrap()).unwrap()
        };
        let before = timeout(31);
        let t = read(&before);
        assert_eq!(t.envelope, before);
        assert_eq!(t.delivery.delay_seconds, Some(31));
        assert_eq!(read(&timeout(5000)).delivery.delay_seconds, Some(900));
        let a = read(&alert()).delivery.alert.unwrap();
        assert_eq!(
            (
                a.event_type.as_str(),
                a.severity.as_str(),
                a.subject.as_str()
            ),
            (
                "CompensationFailed",
                "CRITICAL",
                "CRITICAL CompensationFailed: order o-1"
            )
        );
        let fact = Envelope::new(MessageType::OrderPlaced, "o-1", serde_json::json!({}));
        assert_eq!(read(&fact), Outgoing::plain(fact));
        // A deadline whose payload is not one cannot be delivered: refused at read.
        let bad = Envelope::new(MessageType::StepTimeout, "o-1", serde_json::json!({}));
        assert!(serde_json::from_value::<Outgoing>(serde_json::to_value(bad).unwrap()).is_err());
    }
}
