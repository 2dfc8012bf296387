//! The parsed template as a whole: every resource by kind, parameter defaults, and
//! lookups by logical id.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{invalid, TemplateError};
use crate::functions::{parse_function, FunctionDef};
use crate::http_api::{parse_http_api, HttpApiDef, HttpRouteDef};
use crate::messaging::*;
use crate::props::*;
use crate::tables::{parse_simple_table, parse_table, TableDef};
use crate::EMBEDDED_TEMPLATE;

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub tables: Vec<TableDef>,
    pub topics: Vec<TopicDef>,
    pub queues: Vec<QueueDef>,
    pub queue_policies: Vec<QueuePolicyDef>,
    pub subscriptions: Vec<SubscriptionDef>,
    pub functions: Vec<FunctionDef>,
    pub http_api: HttpApiDef,
    /// Parameter defaults (`Parameters.X.Default`).
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> resource type, for every resource.
    pub resource_types: BTreeMap<String, String>,
}

impl Template {
    /// The template embedded at build time.
    pub fn embedded() -> Result<Template, TemplateError> {
        Template::parse(EMBEDDED_TEMPLATE)
    }

    pub fn from_path(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Template::parse(&text)
    }

    pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
        let doc: Value = serde_yaml_ng::from_str(yaml)?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("no Resources"))?;
        let globals = doc
            .pointer("/Globals/Function")
            .cloned()
            .unwrap_or(Value::Null);

        let mut t = Template {
            tables: Vec::new(),
            topics: Vec::new(),
            queues: Vec::new(),
            queue_policies: Vec::new(),
            subscriptions: Vec::new(),
            functions: Vec::new(),
            http_api: HttpApiDef::default(),
            parameters: BTreeMap::new(),
            resource_types: BTreeMap::new(),
        };
        if let Some(params) = doc.get("Parameters").and_then(Value::as_object) {
            for (name, p) in params {
                if let Some(d) = p.get("Default").and_then(scalar_string) {
                    t.parameters.insert(name.clone(), d);
                }
            }
        }

        for (id, res) in resources {
            let ty = res
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{id}: no Type")))?;
            t.resource_types.insert(id.clone(), ty.to_owned());
            let empty = Value::Object(Map::new());
            let props = res.get("Properties").unwrap_or(&empty);
            match ty {
                "AWS::DynamoDB::Table" => t.tables.push(parse_table(id, props)?),
                "AWS::Serverless::SimpleTable" => t.tables.push(parse_simple_table(id, props)?),
                "AWS::SNS::Topic" => {
                    t.topics.push(parse_topic(id, props));
                    // Inline subscriptions on the topic.
                    if let Some(subs) = props.get("Subscription").and_then(Value::as_array) {
                        for (i, s) in subs.iter().enumerate() {
                            t.subscriptions.push(SubscriptionDef {
                                logical_id: format!("{id}Subscription{i}"),
                                topic: id.clone(),
                                protocol: str_prop(s, "Protocol").unwrap_or_default(),
                                endpoint: parse_endpoint(s.get("Endpoint").unwrap_or(&Value::Null)),
                                filter_policy: None,
                                filter_policy_scope: None,
                                raw_message_delivery: false,
                                redrive_policy: None,
                            });
                        }
                    }
                }
                "AWS::SQS::Queue" => t.queues.push(parse_queue(id, props)?),
                "AWS::SQS::QueuePolicy" => t.queue_policies.push(QueuePolicyDef {
                    logical_id: id.clone(),
                    queues: props
                        .get("Queues")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    policy_document: props.get("PolicyDocument").cloned().unwrap_or(Value::Null),
                }),
                "AWS::SNS::Subscription" => t.subscriptions.push(parse_subscription(id, props)?),
                "AWS::Serverless::Function" => {
                    t.functions.push(parse_function(id, res, props, &globals)?)
                }
                "AWS::Serverless::HttpApi" => t.http_api = parse_http_api(props),
                _ => {}
            }
        }
        // The JSON map sorts resources by logical id; functions keep the template's
        // order, the one listings and benchmarks show them in.
        let order = resource_order(yaml)?;
        t.functions
            .sort_by_key(|f| order.iter().position(|id| *id == f.logical_id));
        Ok(t)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    pub fn table(&self, logical_id: &str) -> Option<&TableDef> {
        self.tables.iter().find(|f| f.logical_id == logical_id)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueDef> {
        self.queues.iter().find(|f| f.logical_id == logical_id)
    }

    pub fn topic(&self, logical_id: &str) -> Option<&TopicDef> {
        self.topics.iter().find(|f| f.logical_id == logical_id)
    }

    pub fn subscription(&self, logical_id: &str) -> Option<&SubscriptionDef> {
        self.subscriptions
            .iter()
            .find(|f| f.logical_id == logical_id)
    }

    /// Every HTTP route with the function that serves it.
    pub fn http_routes(&self) -> Vec<(&FunctionDef, &HttpRouteDef)> {
        self.functions
            .iter()
            .flat_map(|f| f.http_routes().map(move |r| (f, r)))
            .collect()
    }
}

/// The logical ids under `Resources`, in the order the document lists them.
fn resource_order(yaml: &str) -> Result<Vec<String>, TemplateError> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml)?;
    Ok(doc
        .get("Resources")
        .and_then(serde_yaml_ng::Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}
