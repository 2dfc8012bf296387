//! Creates the template's resources in the emulator, under a name prefix, and resolves
//! each function's environment against them. Everything is read from the template:
//! there is no hand-kept list of tables or queues.
//!
//! Re-running against a running emulator is fine: tables, queues, topics and
//! subscriptions are created when missing and their attributes re-applied otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types as ddb;
use aws_sdk_sqs::types::QueueAttributeName;
use dishpatch::config::Env;

use crate::invariants::messages::queue_arn;
use crate::template::{Bindings, SubscriptionEndpoint, TableDef, Template};
use crate::{Error, Result};

/// moto's default account, used until the emulator tells us otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    /// `LatestStreamArn`, when the table has a stream.
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub logical_id: String,
    pub name: String,
    pub url: String,
    pub arn: String,
    /// Logical id of its dead-letter queue, if it has a redrive policy.
    pub dead_letter_queue: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    pub logical_id: String,
    pub arn: String,
    pub topic_arn: String,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub logical_id: String,
    /// The crate / binary name (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Physical function name (`{prefix}-{LogicalId}`).
    pub name: String,
    pub arn: String,
    /// The resolved environment: the template's variables (Globals merged) plus the
    /// variables Lambda itself sets (`AWS_REGION`, `AWS_LAMBDA_FUNCTION_NAME`, ...).
    pub env: Env,
    /// The resolved template variables only, for display and assertions.
    pub variables: BTreeMap<String, String>,
    pub timeout: Duration,
}

/// What was provisioned: physical names, ARNs, URLs, and each function's environment.
#[derive(Debug, Clone)]
pub struct Stack {
    pub prefix: String,
    pub region: String,
    pub account_id: String,
    pub template: Arc<Template>,
    pub tables: BTreeMap<String, TableInfo>,
    pub topics: BTreeMap<String, TopicInfo>,
    pub queues: BTreeMap<String, QueueInfo>,
    pub subscriptions: BTreeMap<String, SubscriptionInfo>,
    pub functions: BTreeMap<String, FunctionInfo>,
    pub bindings: Bindings,
}

/// Variables the local "Lambda service" sets besides the template's.
const LAMBDA_VARIABLES: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
];

impl FunctionInfo {
    /// Sets (or replaces) an environment variable, as a template edit would.
    pub fn set_variable(&mut self, name: &str, value: &str) {
        self.variables.insert(name.to_owned(), value.to_owned());
        let mut env: HashMap<String, String> = LAMBDA_VARIABLES
            .iter()
            .filter_map(|k| self.env.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
            .collect();
        env.extend(self.variables.clone());
        self.env = Env::from_map(env);
    }
}

impl Stack {
    /// Physical table name of a template table. Panics on an unknown logical id.
    pub fn table_name(&self, logical_id: &str) -> &str {
        &self.table(logical_id).name
    }

    pub fn table(&self, logical_id: &str) -> &TableInfo {
        self.tables
            .get(logical_id)
            .unwrap_or_else(|| panic!("no table {logical_id} in the stack"))
    }

    /// URL of a template queue. Panics on an unknown logical id.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        &self.queue(logical_id).url
    }

    pub fn queue(&self, logical_id: &str) -> &QueueInfo {
        self.queues
            .get(logical_id)
            .unwrap_or_else(|| panic!("no queue {logical_id} in the stack"))
    }

    /// ARN of a template topic. Panics on an unknown logical id.
    pub fn topic_arn(&self, logical_id: &str) -> &str {
        &self
            .topics
            .get(logical_id)
            .unwrap_or_else(|| panic!("no topic {logical_id} in the stack"))
            .arn
    }

    /// A function by logical id (`OrderApiFunction`) or binary name (`order-api`).
    pub fn function(&self, id_or_binary: &str) -> Option<&FunctionInfo> {
        self.functions
            .get(id_or_binary)
            .or_else(|| self.functions.values().find(|f| f.binary == id_or_binary))
    }

    /// The resolved environment of a function (logical id or binary name).
    pub fn env(&self, id_or_binary: &str) -> &Env {
        &self
            .function(id_or_binary)
            .unwrap_or_else(|| panic!("no function {id_or_binary} in the stack"))
            .env
    }

    /// The queue (logical id) whose ARN this is.
    pub fn queue_by_arn(&self, arn: &str) -> Option<&QueueInfo> {
        self.queues.values().find(|q| q.arn == arn)
    }
}

pub use crate::template::names::{
    physical_name, FUNCTION_NAME_MAX, QUEUE_NAME_MAX, TABLE_NAME_MAX, TOPIC_NAME_MAX,
};

impl crate::template::StackNames for Stack {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn template(&self) -> &Template {
        &self.template
    }

    fn table_name_of(&self, logical_id: &str) -> Option<String> {
        self.tables.get(logical_id).map(|t| t.name.clone())
    }

    fn queue_urls(&self) -> BTreeMap<String, String> {
        self.queues
            .iter()
            .map(|(id, q)| (id.clone(), q.url.clone()))
            .collect()
    }

    fn topic_of(&self, logical_id: &str) -> Option<crate::template::TopicName> {
        self.topics
            .get(logical_id)
            .map(|t| crate::template::TopicName {
                name: t.name.clone(),
                arn: t.arn.clone(),
            })
    }
}

/// Provisions the template's resources under `prefix` and returns what was created.
pub async fn provision(sdk: &SdkConfig, template: Arc<Template>, prefix: &str) -> Result<Stack> {
    validate_prefix(prefix)?;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let mut stack = Stack {
        prefix: prefix.to_owned(),
        region: region.clone(),
        account_id: DEFAULT_ACCOUNT_ID.to_owned(),
        template: template.clone(),
        tables: BTreeMap::new(),
        topics: BTreeMap::new(),
        queues: BTreeMap::new(),
        subscriptions: BTreeMap::new(),
        functions: BTreeMap::new(),
        bindings: Bindings {
            region,
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            stack_name: prefix.to_owned(),
            parameters: template.parameters.clone(),
            ..Default::default()
        },
    };

    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);

    // Topics first: their ARNs tell us the emulator's account id.
    for t in &template.topics {
        let suffix = if t.fifo { ".fifo" } else { "" };
        let name = physical_name(prefix, &t.logical_id, TOPIC_NAME_MAX, suffix);
        let mut attrs = HashMap::new();
        if t.fifo {
            attrs.insert("FifoTopic".to_owned(), "true".to_owned());
            if t.content_based_deduplication {
                attrs.insert("ContentBasedDeduplication".to_owned(), "true".to_owned());
            }
        }
        if let Some(d) = &t.display_name {
            attrs.insert("DisplayName".to_owned(), d.clone());
        }
        let out = sns
            .create_topic()
            .name(&name)
            .set_attributes((!attrs.is_empty()).then_some(attrs))
            .send()
            .await
            .map_err(|e| Error::aws(format!("create topic {name}"), e))?;
        let arn = out.topic_arn.unwrap_or_default();
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            stack.account_id = account.to_owned();
            stack.bindings.account_id = account.to_owned();
        }
        stack.bindings.set_ref(&t.logical_id, &arn);
        stack.bindings.set_attr(&t.logical_id, "TopicArn", &arn);
        stack.bindings.set_attr(&t.logical_id, "TopicName", &name);
        stack.topics.insert(
            t.logical_id.clone(),
            TopicInfo {
                logical_id: t.logical_id.clone(),
                name,
                arn,
            },
        );
    }

    // Queues, without their redrive policies (the DLQs may not exist yet).
    for q in &template.queues {
        let suffix = if q.fifo { ".fifo" } else { "" };
        let name = physical_name(prefix, &q.logical_id, QUEUE_NAME_MAX, suffix);
        let attrs: HashMap<QueueAttributeName, String> = q
            .attributes
            .iter()
            .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v.clone()))
            .collect();
        let url = match sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => {
                let url = out.queue_url.unwrap_or_default();
                // FIFO-ness cannot change on an existing queue: SQS rejects setting it.
                let mut attrs = attrs.clone();
                attrs.remove(&QueueAttributeName::FifoQueue);
                if !attrs.is_empty() {
                    sqs.set_queue_attributes()
                        .queue_url(&url)
                        .set_attributes(Some(attrs))
                        .send()
                        .await
                        .map_err(|e| Error::aws(format!("set attributes of queue {name}"), e))?;
                }
                url
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                sqs.create_queue()
                    .queue_name(&name)
                    .set_attributes((!attrs.is_empty()).then_some(attrs))
                    .send()
                    .await
                    .map_err(|e| Error::aws(format!("create queue {name}"), e))?
                    .queue_url
                    .unwrap_or_default()
            }
            Err(e) => return Err(Error::aws(format!("get queue url {name}"), e)),
        };
        let arn = queue_arn(&sqs, &url, &name)
            .await?
            .unwrap_or_else(|| format!("arn:aws:sqs:{}:{}:{name}", stack.region, stack.account_id));
        stack.bindings.set_ref(&q.logical_id, &url);
        stack.bindings.set_attr(&q.logical_id, "Arn", &arn);
        stack.bindings.set_attr(&q.logical_id, "QueueName", &name);
        stack.bindings.set_attr(&q.logical_id, "QueueUrl", &url);
        stack.queues.insert(
            q.logical_id.clone(),
            QueueInfo {
                logical_id: q.logical_id.clone(),
                name,
                url,
                arn,
                dead_letter_queue: q.redrive.as_ref().map(|r| r.dead_letter_queue.clone()),
            },
        );
    }

    // Redrive policies, now that every DLQ has an ARN.
    for q in &template.queues {
        let Some(r) = &q.redrive else { continue };
        let dlq = stack.queues.get(&r.dead_letter_queue).ok_or_else(|| {
            Error::Other(format!(
                "{}: dead-letter queue {} is not a queue of the template",
                q.logical_id, r.dead_letter_queue
            ))
        })?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": r.max_receive_count,
        });
        let url = stack.queues[&q.logical_id].url.clone();
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(|e| Error::aws(format!("set redrive policy of {}", q.logical_id), e))?;
    }

    // Tables.
    for t in &template.tables {
        let info = ensure_table(
            &dynamodb,
            t,
            &physical_name(prefix, &t.logical_id, TABLE_NAME_MAX, ""),
        )
        .await?;
        stack.bindings.set_ref(&t.logical_id, &info.name);
        stack.bindings.set_attr(&t.logical_id, "Arn", &info.arn);
        if let Some(s) = &info.stream_arn {
            stack.bindings.set_attr(&t.logical_id, "StreamArn", s);
        }
        stack.tables.insert(t.logical_id.clone(), info);
    }

    // Queue policies (the emulator does not enforce them, but they document intent and
    // a deployed stack would have them).
    for p in &template.queue_policies {
        let doc = match stack.bindings.resolve(&p.policy_document) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(policy = %p.logical_id, error = %e, "queue policy skipped");
                continue;
            }
        };
        for q in &p.queues {
            let url = match stack.bindings.resolve_string(q) {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(policy = %p.logical_id, error = %e, "queue policy target skipped");
                    continue;
                }
            };
            sqs.set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::Policy, doc.to_string())
                .send()
                .await
                .map_err(|e| Error::aws(format!("set policy {} on {url}", p.logical_id), e))?;
        }
    }

    // Subscriptions, with their filter policies.
    for s in &template.subscriptions {
        let topic_arn = stack
            .topics
            .get(&s.topic)
            .ok_or_else(|| {
                Error::Other(format!(
                    "{}: topic {} not in the template",
                    s.logical_id, s.topic
                ))
            })?
            .arn
            .clone();
        let endpoint = match &s.endpoint {
            SubscriptionEndpoint::Queue(q) => stack
                .queues
                .get(q)
                .ok_or_else(|| {
                    Error::Other(format!("{}: queue {q} not in the template", s.logical_id))
                })?
                .arn
                .clone(),
            SubscriptionEndpoint::Other(v) => match stack.bindings.resolve_string(v) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(subscription = %s.logical_id, error = %e, "subscription skipped");
                    continue;
                }
            },
        };
        let mut attrs = HashMap::new();
        if let Some(fp) = &s.filter_policy {
            attrs.insert("FilterPolicy".to_owned(), fp.to_string());
        }
        if let Some(scope) = &s.filter_policy_scope {
            attrs.insert("FilterPolicyScope".to_owned(), scope.clone());
        }
        if s.protocol == "sqs" || s.raw_message_delivery {
            attrs.insert(
                "RawMessageDelivery".to_owned(),
                s.raw_message_delivery.to_string(),
            );
        }
        if let Some(rp) = &s.redrive_policy {
            if let Ok(rp) = stack.bindings.resolve(rp) {
                attrs.insert("RedrivePolicy".to_owned(), rp.to_string());
            }
        }
        let out = sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol(&s.protocol)
            .endpoint(&endpoint)
            .set_attributes((!attrs.is_empty()).then_some(attrs))
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| Error::aws(format!("subscribe {}", s.logical_id), e))?;
        let arn = out.subscription_arn.unwrap_or_default();
        stack.bindings.set_ref(&s.logical_id, &arn);
        stack.subscriptions.insert(
            s.logical_id.clone(),
            SubscriptionInfo {
                logical_id: s.logical_id.clone(),
                arn,
                topic_arn,
                endpoint,
            },
        );
    }

    // Functions: physical names first (functions may reference each other), then envs.
    for f in &template.functions {
        let name = physical_name(prefix, &f.logical_id, FUNCTION_NAME_MAX, "");
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            stack.region, stack.account_id
        );
        stack.bindings.set_ref(&f.logical_id, &name);
        stack.bindings.set_attr(&f.logical_id, "Arn", &arn);
    }
    // Resources the emulator does not provide (HTTP API, Cognito, ...) still get a
    // stable placeholder, so a variable referencing them resolves to something sane.
    for (id, ty) in &template.resource_types {
        if !stack.bindings.refs.contains_key(id) {
            let placeholder = match ty.as_str() {
                "AWS::Cognito::UserPool" => format!("{}_{}", stack.region, sanitize(prefix)),
                _ => physical_name(prefix, id, 128, ""),
            };
            stack.bindings.set_ref(id, placeholder);
        }
    }
    for f in &template.functions {
        let name = stack.bindings.refs[&f.logical_id].clone();
        let mut variables = BTreeMap::new();
        for (k, v) in &f.environment {
            let value = stack.bindings.resolve_string(v).map_err(|e| {
                Error::Other(format!("{}: environment variable {k}: {e}", f.logical_id))
            })?;
            variables.insert(k.clone(), value);
        }
        let mut env: HashMap<String, String> = variables.clone().into_iter().collect();
        for (k, v) in [
            ("AWS_REGION", stack.region.clone()),
            ("AWS_DEFAULT_REGION", stack.region.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_size.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ] {
            env.entry(k.to_owned()).or_insert(v);
        }
        let arn = stack.bindings.attrs[&(f.logical_id.clone(), "Arn".to_owned())].clone();
        stack.functions.insert(
            f.logical_id.clone(),
            FunctionInfo {
                logical_id: f.logical_id.clone(),
                binary: f.binary.clone(),
                name,
                arn,
                env: Env::from_map(env),
                variables,
                timeout: Duration::from_secs(f.timeout),
            },
        );
    }

    tracing::info!(
        prefix,
        tables = stack.tables.len(),
        topics = stack.topics.len(),
        queues = stack.queues.len(),
        subscriptions = stack.subscriptions.len(),
        functions = stack.functions.len(),
        "stack provisioned"
    );
    Ok(stack)
}

fn sanitize(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// Prefixes become part of every name: keep them to what every service accepts.
fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 40
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid stack prefix {prefix:?}: use 1-40 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    t: &TableDef,
    name: &str,
) -> Result<TableInfo> {
    let described = match client.describe_table().table_name(name).send().await {
        Ok(out) => out.table,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(Error::aws(format!("describe table {name}"), e)),
    };
    let desc = match described {
        Some(d) => {
            if t.stream_view_type.is_some() && d.latest_stream_arn.is_none() {
                tracing::warn!(
                    table = name,
                    "existing table has no stream; recreate the stack to get one"
                );
            }
            d
        }
        None => create_table(client, t, name).await?,
    };
    if let Some(attr) = &t.ttl_attribute {
        let current = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| Error::aws(format!("describe TTL of {name}"), e))?;
        let enabled = current
            .time_to_live_description
            .as_ref()
            .and_then(|d| d.time_to_live_status.as_ref())
            .is_some_and(|s| {
                matches!(
                    s,
                    ddb::TimeToLiveStatus::Enabled | ddb::TimeToLiveStatus::Enabling
                )
            });
        if !enabled {
            let spec = built(
                ddb::TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build(),
            )?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| Error::aws(format!("enable TTL on {name}"), e))?;
        }
    }
    Ok(TableInfo {
        logical_id: t.logical_id.clone(),
        name: name.to_owned(),
        arn: desc.table_arn.unwrap_or_default(),
        stream_arn: desc.latest_stream_arn,
    })
}

fn key_schema(keys: &[crate::template::KeyElement]) -> Result<Vec<ddb::KeySchemaElement>> {
    keys.iter()
        .map(|k| {
            built(
                ddb::KeySchemaElement::builder()
                    .attribute_name(&k.name)
                    .key_type(ddb::KeyType::from(k.key_type.as_str()))
                    .build(),
            )
        })
        .collect()
}

fn projection(i: &crate::template::IndexDef) -> ddb::Projection {
    ddb::Projection::builder()
        .projection_type(ddb::ProjectionType::from(i.projection_type.as_str()))
        .set_non_key_attributes(
            (!i.non_key_attributes.is_empty()).then(|| i.non_key_attributes.clone()),
        )
        .build()
}

/// The template's indexes of one kind as the SDK's (global and local ones are built
/// alike, from types that share no trait).
macro_rules! indexes {
    ($kind:ident, $defs:expr) => {
        $defs
            .iter()
            .map(|i| {
                built(
                    ddb::$kind::builder()
                        .index_name(&i.name)
                        .set_key_schema(Some(key_schema(&i.key_schema)?))
                        .projection(projection(i))
                        .build(),
                )
            })
            .collect::<Result<Vec<_>>>()?
    };
}

/// An SDK builder's result (a missing required field) as this crate's error.
fn built<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| Error::Other(e.to_string()))
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    t: &TableDef,
    name: &str,
) -> Result<ddb::TableDescription> {
    let attrs = t
        .attribute_definitions
        .iter()
        .map(|a| {
            built(
                ddb::AttributeDefinition::builder()
                    .attribute_name(&a.name)
                    .attribute_type(ddb::ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let gsis = indexes!(GlobalSecondaryIndex, t.global_secondary_indexes);
    let lsis = indexes!(LocalSecondaryIndex, t.local_secondary_indexes);
    let stream = match &t.stream_view_type {
        Some(v) => Some(built(
            ddb::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(ddb::StreamViewType::from(v.as_str()))
                .build(),
        )?),
        None => None,
    };
    let out = client
        .create_table()
        .table_name(name)
        .billing_mode(ddb::BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&t.key_schema)?))
        .set_attribute_definitions(Some(attrs))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .set_local_secondary_indexes((!lsis.is_empty()).then_some(lsis))
        .set_stream_specification(stream)
        .send()
        .await;
    match out {
        Ok(out) => out
            .table_description
            .ok_or_else(|| Error::Other(format!("create table {name}: no description"))),
        // A concurrent `up` won the race: use its table.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| Error::aws(format!("describe table {name}"), e))?
                .table
                .ok_or_else(|| Error::Other(format!("describe table {name}: no description")))
        }
        Err(e) => Err(Error::aws(format!("create table {name}"), e)),
    }
}

/// The resolved value of a function's template variable (test helper).
pub fn variable<'a>(stack: &'a Stack, function: &str, name: &str) -> Option<&'a str> {
    stack
        .function(function)?
        .variables
        .get(name)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_validated() {
        assert!(validate_prefix("t-abc_1").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("-x").is_err());
        assert!(validate_prefix("a b").is_err());
    }
}
