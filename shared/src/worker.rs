//! What every worker function (a saga participant, or the saga itself) wires the same
//! way: where it publishes what it did, where it parks the messages it cannot process,
//! and how a step that keeps meeting a moving record asks to be retried.

use crate::aws::publisher::{Destinations, Publisher, SnsSqsPublisher};
use crate::config::{ConfigError, Env};
use crate::runtime::dead_letters::{DeadLetters, SqsDeadLetters};
use crate::runtime::MessageError;
use std::sync::Arc;

/// A worker's outlets, beside its own stores.
#[derive(Clone)]
pub struct Outlets {
    /// Where its facts (and, for the saga, its commands) go.
    pub publisher: Arc<dyn Publisher>,
    /// Where messages that cannot be processed are parked, with the reason.
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
}

impl Outlets {
    /// Publishing to `to`; dead letters as the environment configures them
    /// ([`SqsDeadLetters::from_env`]).
    pub fn from_env(
        sdk: &aws_config::SdkConfig,
        env: &Env,
        to: Destinations,
    ) -> Result<Self, ConfigError> {
        Ok(Outlets {
            publisher: Arc::new(SnsSqsPublisher::new(sdk, to)),
            dead_letters: SqsDeadLetters::from_env(sdk, env)?,
        })
    }

    /// Publishing to `publisher` and parking nothing (failures are left to the queue's
    /// redrive policy): what a test wires around a recording publisher.
    pub fn publishing(publisher: Arc<dyn Publisher>) -> Self {
        Outlets {
            publisher,
            dead_letters: None,
        }
    }
}

/// Where a saga participant publishes: its step results go to the order-events topic
/// (`ORDER_EVENTS_TOPIC_ARN`), which the saga and the notifications read.
pub fn order_events(env: &Env) -> Result<Destinations, ConfigError> {
    Ok(Destinations {
        order_events_topic: Some(env.require("ORDER_EVENTS_TOPIC_ARN")?),
        ..Default::default()
    })
}

/// The record a duplicate (or a concurrent one) wrote, to re-publish its outcome. It is
/// gone only if removed by hand meanwhile: the command is retried and decides afresh.
pub fn stored<T>(record: Option<T>, what: &str) -> Result<T, MessageError> {
    record.ok_or_else(|| MessageError::Transient(format!("{what} record vanished; retrying")))
}

/// A step that kept losing its conditional write to concurrent ones: retried later, by
/// when the record has settled.
pub fn kept_changing(what: &str) -> MessageError {
    MessageError::Transient(format!("{what} kept changing; retrying"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participants_publish_to_the_order_events_topic_only() {
        let env = Env::from_map([("ORDER_EVENTS_TOPIC_ARN".into(), "arn:topic".into())].into());
        let to = order_events(&env).unwrap();
        assert_eq!(to.order_events_topic.as_deref(), Some("arn:topic"));
        assert_eq!(to.payment_queue, None);
        assert!(order_events(&Env::default()).is_err());
    }

    #[test]
    fn a_vanished_record_and_a_moving_one_are_retried() {
        assert_eq!(stored(Some(1), "payment").unwrap(), 1);
        assert!(matches!(
            stored::<()>(None, "payment"),
            Err(MessageError::Transient(m)) if m == "payment record vanished; retrying"
        ));
        assert!(matches!(
            kept_changing("delivery"),
            MessageError::Transient(m) if m == "delivery kept changing; retrying"
        ));
    }
}
