//! The alert tap: a queue subscribed to the ops-alerts topic so the alerts can be
//! read back.

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use dishpatch_template::names::{physical_name, StackNames, QUEUE_NAME_MAX};

use crate::messages::{order_id_of, peek, queue_arn};
use crate::{Error, Result};

/// A queue subscribed to `OpsAlertsTopic` so the alerts can be read back:
/// `{prefix}-OpsAlertsTap`. [`AlertTap::alerted_orders`] reads it without consuming it.
#[derive(Debug, Clone)]
pub struct AlertTap {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// Logical ids of the topic and of the tap queue.
pub const OPS_ALERTS_TOPIC: &str = "OpsAlertsTopic";
pub const ALERT_TAP_QUEUE: &str = "OpsAlertsTap";

impl AlertTap {
    /// Creates (if missing) the tap queue and subscribes it to the stack's
    /// `OpsAlertsTopic`. `None` when the template has no such topic.
    pub async fn subscribe(sdk: &SdkConfig, stack: &impl StackNames) -> Result<Option<AlertTap>> {
        let Some(topic) = stack.topic_of(OPS_ALERTS_TOPIC) else {
            return Ok(None);
        };
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let name = physical_name(stack.prefix(), ALERT_TAP_QUEUE, QUEUE_NAME_MAX, "");
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| Error::aws(format!("create queue {name}"), e))?
            .queue_url
            .unwrap_or_default();
        let arn = queue_arn(&sqs, &url, &name).await?.unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic.arn)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await
            .map_err(|e| Error::aws(format!("subscribe {name} to {}", topic.name), e))?;
        Ok(Some(AlertTap {
            sqs,
            queue_url: url,
        }))
    }

    /// The tap of the stack under `prefix`, if `up` (or a test) created one.
    pub async fn find(sdk: &SdkConfig, prefix: &str) -> Option<AlertTap> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let name = physical_name(prefix, ALERT_TAP_QUEUE, QUEUE_NAME_MAX, "");
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .ok()?
            .queue_url?;
        Some(AlertTap {
            sqs,
            queue_url: url,
        })
    }

    /// Every alert body received so far.
    pub async fn alerts(&self) -> Result<Vec<String>> {
        peek(&self.sqs, &self.queue_url).await
    }

    /// The order ids of every alert received so far.
    pub async fn alerted_orders(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .alerts()
            .await?
            .iter()
            .filter_map(|b| order_id_of(b))
            .collect())
    }
}
