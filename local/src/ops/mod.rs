//! Operator tools behind the `dishpatch` CLI: dead-letter queues (list, show, redrive),
//! following an order's timeline, the invariant checker, the payment breaker.
//!
//! Every command is a library call on a [`Target`] (an SDK configuration, the template,
//! and how to find the physical resources) so tests drive them without the binary.
//! Resources are named by their `template.yaml` logical ids. Locally they are found by
//! the local stack's naming (`{prefix}-{LogicalId}`, see [`crate::provision`]); against
//! a deployed stack (whose names CloudFormation generates) pass the physical names with
//! [`Target::with_queue_url`] / [`Target::with_table`] (`--queue-url` / `--table`).

pub mod cli;
pub mod dlq;
pub mod orders;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::provision::{physical_name, QUEUE_NAME_MAX, TABLE_NAME_MAX};
use crate::template::Template;
use crate::{Error, Result};

/// Where the commands act: an SDK configuration, the template, and the resource names.
#[derive(Clone)]
pub struct Target {
    pub sdk: SdkConfig,
    pub template: Arc<Template>,
    /// The local stack's name prefix (`{prefix}-{LogicalId}`).
    pub prefix: String,
    /// Explicit queue URLs by logical id (deployed stacks).
    pub queue_urls: BTreeMap<String, String>,
    /// Explicit table names by logical id (deployed stacks).
    pub tables: BTreeMap<String, String>,
}

impl Target {
    pub fn new(sdk: SdkConfig, template: Arc<Template>, prefix: impl Into<String>) -> Target {
        Target {
            sdk,
            template,
            prefix: prefix.into(),
            queue_urls: BTreeMap::new(),
            tables: BTreeMap::new(),
        }
    }

    /// The physical URL of a template queue, instead of the prefix naming.
    pub fn with_queue_url(mut self, logical_id: &str, url: &str) -> Target {
        self.queue_urls
            .insert(logical_id.to_owned(), url.to_owned());
        self
    }

    /// The physical name of a template table, instead of the prefix naming.
    pub fn with_table(mut self, logical_id: &str, name: &str) -> Target {
        self.tables.insert(logical_id.to_owned(), name.to_owned());
        self
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// The physical name of a template table.
    pub fn table_name(&self, logical_id: &str) -> String {
        self.tables
            .get(logical_id)
            .cloned()
            .unwrap_or_else(|| physical_name(&self.prefix, logical_id, TABLE_NAME_MAX, ""))
    }

    /// The URL of a template queue: the override, else `GetQueueUrl` of its local name.
    pub async fn queue_url(&self, logical_id: &str) -> Result<String> {
        if let Some(url) = self.queue_urls.get(logical_id) {
            return Ok(url.clone());
        }
        let def = self
            .template
            .queues
            .iter()
            .find(|q| q.logical_id == logical_id)
            .ok_or_else(|| Error::Other(format!("no queue {logical_id} in the template")))?;
        let suffix = if def.fifo { ".fifo" } else { "" };
        let name = physical_name(&self.prefix, logical_id, QUEUE_NAME_MAX, suffix);
        let out = self
            .sqs()
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| {
                Error::aws(
                    format!("queue {logical_id} ({name}); against AWS pass --queue-url {logical_id}=URL"),
                    e,
                )
            })?;
        out.queue_url
            .ok_or_else(|| Error::Other(format!("queue {name}: no URL")))
    }
}
