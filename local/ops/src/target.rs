//! Where the commands act: the SDK configuration, the template, and how each
//! template resource is found (by prefix locally, by stack or by hand when deployed).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;

use dishpatch_invariants::{Checker, Tables, TABLE_IDS};
use dishpatch_template::names::{physical_name, QUEUE_NAME_MAX, TABLE_NAME_MAX};
use dishpatch_template::Template;

use crate::{dlq, Error, Result};

/// One resource of a deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: String,
}

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

    /// The physical names of a deployed CloudFormation stack's queues and tables
    /// (`ListStackResources`). Names already given explicitly are kept.
    pub async fn with_stack(self, stack_name: &str) -> Result<Target> {
        let cfn = aws_sdk_cloudformation::Client::new(&self.sdk);
        let mut pages = cfn
            .list_stack_resources()
            .stack_name(stack_name)
            .into_paginator()
            .items()
            .send();
        let mut resources = Vec::new();
        while let Some(r) = pages.next().await {
            let r = r.map_err(|e| Error::aws(format!("resources of stack {stack_name}"), e))?;
            resources.push(StackResource {
                logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: r.resource_type().unwrap_or_default().to_owned(),
                physical_id: r.physical_resource_id().unwrap_or_default().to_owned(),
            });
        }
        if resources.is_empty() {
            return Err(Error::Other(format!("stack {stack_name} has no resources")));
        }
        Ok(self.with_stack_resources(&resources))
    }

    /// [`Target::with_stack`] on resources already listed: a queue's physical id is
    /// its URL, a table's is its name.
    pub fn with_stack_resources(mut self, resources: &[StackResource]) -> Target {
        for r in resources.iter().filter(|r| !r.physical_id.is_empty()) {
            let names = match r.resource_type.as_str() {
                "AWS::SQS::Queue" => &mut self.queue_urls,
                "AWS::DynamoDB::Table" => &mut self.tables,
                _ => continue,
            };
            names
                .entry(r.logical_id.clone())
                .or_insert_with(|| r.physical_id.clone());
        }
        self
    }

    /// Whether resources are named explicitly (a deployed stack), not by prefix.
    pub fn is_deployed(&self) -> bool {
        !self.queue_urls.is_empty() || !self.tables.is_empty()
    }

    /// The invariant checker of this target's stack.
    pub async fn checker(&self) -> Result<Checker> {
        if !self.is_deployed() {
            return Ok(Checker::for_prefix(&self.sdk, &self.template, &self.prefix).await?);
        }
        let name = |i: usize| self.table_name(TABLE_IDS[i]);
        let tables = Tables {
            orders: name(0),
            inventory: name(1),
            payments: name(2),
            delivery: name(3),
        };
        let dlqs = dlq::dead_letter_queues(&self.template);
        let (mut queues, mut dead_letter_queues) = (BTreeMap::new(), BTreeMap::new());
        for q in &self.template.queues {
            let url = self.queue_url(&q.logical_id).await?;
            if dlqs.contains_key(&q.logical_id) {
                dead_letter_queues.insert(q.logical_id.clone(), url);
            } else {
                queues.insert(q.logical_id.clone(), url);
            }
        }
        Ok(Checker::with_names(
            &self.sdk,
            tables,
            queues,
            dead_letter_queues,
        ))
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
                    format!("queue {logical_id} ({name}); against AWS pass --stack NAME or --queue-url {logical_id}=URL"),
                    e,
                )
            })?;
        out.queue_url
            .ok_or_else(|| Error::Other(format!("queue {name}: no URL")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(logical_id: &str, resource_type: &str, physical_id: &str) -> StackResource {
        StackResource {
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            physical_id: physical_id.into(),
        }
    }

    #[test]
    fn stack_resources_name_queues_and_tables_and_explicit_names_win() {
        let sdk = aws_config::SdkConfig::builder().build();
        let template = Arc::new(Template::embedded().unwrap());
        let t = Target::new(sdk, template, "p")
            .with_table("OrdersTable", "explicit")
            .with_stack_resources(&[
                resource("OrdersTable", "AWS::DynamoDB::Table", "from-stack"),
                resource("InventoryTable", "AWS::DynamoDB::Table", "inv-ABC"),
                resource("SagaQueue", "AWS::SQS::Queue", "https://sqs/1/saga-XYZ"),
                resource("OrderEventsTopic", "AWS::SNS::Topic", "arn:aws:sns:x"),
                resource("PaymentQueue", "AWS::SQS::Queue", ""),
            ]);
        assert_eq!(t.table_name("OrdersTable"), "explicit");
        assert_eq!(t.table_name("InventoryTable"), "inv-ABC");
        assert_eq!(t.queue_urls["SagaQueue"], "https://sqs/1/saga-XYZ");
        assert!(
            !t.queue_urls.contains_key("PaymentQueue"),
            "not created yet"
        );
        assert_eq!(t.queue_urls.len() + t.tables.len(), 3);
    }
}
