//! Sends envelopes where they belong: facts to the order-events topic (with the
//! `eventType` attribute subscribers filter on), commands to the owner's queue. The
//! route is the message's type; anything more (a delay, an alert's attributes) comes
//! with it as its [`Delivery`], never from its payload.
//!
//! The envelope carries its trace (`traceparent`); a command also gets it as the SQS
//! `AWSTraceHeader` system attribute, which X-Ray and Lambda read. SNS has no such
//! attribute: a fact's trace travels in its envelope and in the publish call's
//! `X-Amzn-Trace-Id` header ([`dishpatch_sdk::trace::http`]).

use crate::envelope::{Envelope, Route};
use crate::error::StoreError;
use crate::outbox::Delivery;
use aws_sdk_sns::types::MessageAttributeValue as SnsAttr;
use aws_sdk_sqs::types::MessageAttributeValue as SqsAttr;
use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use dishpatch_sdk::trace::TraceContext;

#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// Sends `envelope` to its route, as `delivery` says.
    async fn deliver(&self, envelope: &Envelope, delivery: &Delivery) -> Result<(), StoreError>;

    /// Sends `envelope` to its route, now, with no attribute but its type: what a
    /// worker's fact or command needs.
    async fn publish(&self, envelope: &Envelope) -> Result<(), StoreError> {
        self.deliver(envelope, &Delivery::default()).await
    }
}

#[derive(Clone, Debug, Default)]
pub struct Destinations {
    pub order_events_topic: Option<String>,
    pub inventory_queue: Option<String>,
    pub payment_queue: Option<String>,
    pub delivery_queue: Option<String>,
    pub saga_queue: Option<String>,
    pub ops_alerts_topic: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SnsSqsPublisher {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    to: Destinations,
}

impl SnsSqsPublisher {
    pub fn new(sdk: &aws_config::SdkConfig, to: Destinations) -> Self {
        SnsSqsPublisher {
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            to,
        }
    }
}

#[async_trait::async_trait]
impl Publisher for SnsSqsPublisher {
    async fn deliver(&self, envelope: &Envelope, delivery: &Delivery) -> Result<(), StoreError> {
        let kind = envelope.kind;
        let missing = |what: &str| StoreError::Aws(format!("no destination configured for {what}"));
        let queue = match kind.route() {
            Route::Fact => {
                let topic = self
                    .to
                    .order_events_topic
                    .as_ref()
                    .ok_or_else(|| missing("facts"))?;
                return self
                    .notify(topic, envelope, &[("eventType", kind.as_str())], None)
                    .await;
            }
            Route::OpsAlertsTopic => {
                let topic = self
                    .to
                    .ops_alerts_topic
                    .as_ref()
                    .ok_or_else(|| missing("alerts"))?;
                let alert = delivery.alert.as_ref().ok_or_else(|| {
                    StoreError::Corrupt(format!("{kind} {} has no alert attributes", envelope.id))
                })?;
                let attrs = [
                    ("eventType", alert.event_type.as_str()),
                    ("severity", alert.severity.as_str()),
                ];
                let subject = Some(alert.subject.clone());
                return self.notify(topic, envelope, &attrs, subject).await;
            }
            Route::SagaQueue => &self.to.saga_queue,
            Route::InventoryQueue => &self.to.inventory_queue,
            Route::PaymentQueue => &self.to.payment_queue,
            Route::DeliveryQueue => &self.to.delivery_queue,
        };
        let url = queue.as_ref().ok_or_else(|| missing(kind.as_str()))?;
        let attr = SqsAttr::builder()
            .data_type("String")
            .string_value(kind.as_str())
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?;
        let trace = match trace_header(envelope) {
            Some(xray) => Some(
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(xray)
                    .build()
                    .map_err(|e| StoreError::Aws(e.to_string()))?,
            ),
            None => None,
        };
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(envelope.to_json())
            .message_attributes("type", attr)
            .set_message_system_attributes(
                trace.map(|t| [(MessageSystemAttributeNameForSends::AwsTraceHeader, t)].into()),
            )
            // Capped where the message was made (MAX_DELAY_SECONDS): it fits.
            .set_delay_seconds(delivery.delay_seconds.map(|d| d as i32))
            .send()
            .await
            .map_err(|e| StoreError::Aws(format!("SQS send {kind}: {e:?}")))?;
        Ok(())
    }
}

/// The envelope's trace as an X-Ray header.
fn trace_header(envelope: &Envelope) -> Option<String> {
    let ctx = TraceContext::from_traceparent(envelope.traceparent.as_deref()?)?;
    Some(ctx.xray())
}

impl SnsSqsPublisher {
    async fn notify(
        &self,
        topic: &str,
        envelope: &Envelope,
        attrs: &[(&str, &str)],
        subject: Option<String>,
    ) -> Result<(), StoreError> {
        let mut req = self
            .sns
            .publish()
            .topic_arn(topic)
            .message(envelope.to_json())
            .set_subject(subject);
        for (name, value) in attrs {
            let attr = SnsAttr::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| StoreError::Aws(e.to_string()))?;
            req = req.message_attributes(*name, attr);
        }
        req.send()
            .await
            .map_err(|e| StoreError::Aws(format!("SNS publish {}: {e:?}", envelope.kind)))?;
        Ok(())
    }
}

#[cfg(test)]
mod emulator_tests {
    use super::*;
    use crate::envelope::MessageType;
    use crate::outbox::Alert;
    use crate::testing::{emulator, topic_with_subscription, unique};
    use std::time::Duration;

    fn timeout() -> Envelope {
        // The payload's delay is the saga's to read, not the publisher's.
        let data = serde_json::json!({"step": "Payment", "attempt": 0, "delaySeconds": 900});
        Envelope::new(MessageType::StepTimeout, "o-1", data)
    }

    /// A new queue on the emulator, and a client for it.
    async fn queue(name: &str) -> (aws_config::SdkConfig, aws_sdk_sqs::Client, String) {
        let sdk = emulator().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = sqs
            .create_queue()
            .queue_name(unique(name))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        (sdk, sqs, queue)
    }

    #[tokio::test]
    async fn a_queue_delay_comes_from_the_delivery_alone() {
        let (sdk, sqs, queue) = queue("saga").await;
        let publisher = SnsSqsPublisher::new(
            &sdk,
            Destinations {
                saga_queue: Some(queue.clone()),
                ..Destinations::default()
            },
        );
        let delayed = Delivery {
            delay_seconds: Some(900),
            alert: None,
        };
        publisher.deliver(&timeout(), &delayed).await.unwrap();
        let now = timeout();
        publisher.publish(&now).await.unwrap();
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let bodies: Vec<Envelope> = got
            .iter()
            .map(|m| Envelope::decode(m.body().unwrap()).unwrap().0)
            .collect();
        assert_eq!(bodies, [now], "only the undelayed one is visible yet");
    }

    #[tokio::test]
    async fn a_command_carries_its_trace_as_the_aws_trace_header() {
        let (sdk, sqs, queue) = queue("inventory").await;
        let to = Destinations {
            inventory_queue: Some(queue.clone()),
            ..Destinations::default()
        };
        let trace = TraceContext::root();
        let mut cmd = Envelope::new(MessageType::ReserveInventory, "o-1", serde_json::json!({}));
        cmd.traceparent = Some(trace.traceparent());
        SnsSqsPublisher::new(&sdk, to).publish(&cmd).await.unwrap();
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let header = got[0]
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader));
        assert_eq!(header, Some(&trace.xray()));
        assert_eq!(Envelope::decode(got[0].body().unwrap()).unwrap().0, cmd);
    }

    #[tokio::test]
    async fn an_alert_carries_its_attributes_and_subject() {
        let sdk = emulator().await;
        let (topic, sub) = topic_with_subscription(&sdk, None).await;
        let publisher = SnsSqsPublisher::new(
            &sdk,
            Destinations {
                ops_alerts_topic: Some(topic),
                ..Destinations::default()
            },
        );
        let alert = Envelope::new(MessageType::OpsAlert, "o-1", serde_json::json!({}));
        let page = Delivery {
            delay_seconds: None,
            alert: Some(Alert {
                event_type: "CompensationFailed".into(),
                severity: "CRITICAL".into(),
                subject: "CRITICAL CompensationFailed: order o-1".into(),
            }),
        };
        publisher.deliver(&alert, &page).await.unwrap();
        let bodies = sub.receive(1, Duration::from_secs(10)).await;
        let sns: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(sns["Subject"], "CRITICAL CompensationFailed: order o-1");
        let attr = |n: &str| sns["MessageAttributes"][n]["Value"].clone();
        assert_eq!(attr("eventType"), "CompensationFailed");
        assert_eq!(attr("severity"), "CRITICAL");
        assert_eq!(Envelope::decode(&bodies[0]).unwrap().0, alert);
        // Without them there is nothing to page with.
        assert!(matches!(
            publisher.publish(&alert).await,
            Err(StoreError::Corrupt(_))
        ));
    }
}
