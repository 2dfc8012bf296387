//! Reads `template.yaml` (SAM) into the topology the local stack builds: tables,
//! topics, queues, subscriptions, queue policies and functions with their events.
//!
//! The template uses long-form intrinsics only (`Ref`, `Fn::GetAtt`, `Fn::Sub`, ...),
//! so a plain YAML parser reads it. Values that depend on provisioned resources are
//! kept as raw JSON and resolved later with [`Bindings`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

/// The repository's `template.yaml`, embedded at build time so the binary works from any
/// directory and always matches the code it was built with.
pub const EMBEDDED_TEMPLATE: &str = include_str!("../../template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("cannot read template {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("template: {0}")]
    Invalid(String),
    #[error("template: cannot resolve {0}")]
    Unresolved(String),
}

fn invalid(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}

/// A key attribute (`KeySchema` entry) or attribute definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub key_schema: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub logical_id: String,
    pub key_schema: Vec<KeyElement>,
    pub attribute_definitions: Vec<AttributeDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub local_secondary_indexes: Vec<IndexDef>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view_type: Option<String>,
    /// `TimeToLiveSpecification.AttributeName`, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDef {
    pub logical_id: String,
    pub fifo: bool,
    pub display_name: Option<String>,
    pub content_based_deduplication: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveDef {
    /// Logical id of the dead-letter queue (`deadLetterTargetArn: GetAtt X.Arn`).
    pub dead_letter_queue: String,
    pub max_receive_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub logical_id: String,
    pub fifo: bool,
    /// Seconds; SQS's default is 30.
    pub visibility_timeout: i64,
    /// Static queue attributes, as SQS attribute names and string values (no redrive).
    pub attributes: BTreeMap<String, String>,
    pub redrive: Option<RedriveDef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuePolicyDef {
    pub logical_id: String,
    /// Unresolved entries of `Queues` (each normally `Ref: SomeQueue`: the queue URL).
    pub queues: Vec<Value>,
    /// Unresolved `PolicyDocument`.
    pub policy_document: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEndpoint {
    /// An SQS queue of this template (`Endpoint: GetAtt Q.Arn`).
    Queue(String),
    /// Anything else, unresolved (email, https, a foreign ARN...).
    Other(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionDef {
    pub logical_id: String,
    /// Logical id of the topic (`TopicArn: Ref T`).
    pub topic: String,
    pub protocol: String,
    pub endpoint: SubscriptionEndpoint,
    pub filter_policy: Option<Value>,
    /// `MessageAttributes` (the default) or `MessageBody`.
    pub filter_policy_scope: Option<String>,
    pub raw_message_delivery: bool,
    /// Unresolved `RedrivePolicy` of the subscription, if any.
    pub redrive_policy: Option<Value>,
}

/// Who may call an HTTP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    /// No `Auth` on the event: the API's `DefaultAuthorizer` applies (if any).
    Default,
    /// `Auth: {Authorizer: NONE}`.
    None,
    /// `Auth: {Authorizer: Name}`.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRouteDef {
    /// The event's name in the function's `Events`.
    pub name: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// Path template, e.g. `/v1/orders/{orderId}`.
    pub path: String,
    pub auth: RouteAuth,
}

impl HttpRouteDef {
    /// API Gateway's route key: `GET /v1/orders/{orderId}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventDef {
    pub name: String,
    /// Logical id of the queue (`Queue: GetAtt Q.Arn`).
    pub queue: String,
    pub batch_size: i32,
    pub maximum_batching_window_seconds: u32,
    pub report_batch_item_failures: bool,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEventDef {
    pub name: String,
    /// Logical id of the table (`Stream: GetAtt T.StreamArn`).
    pub table: String,
    pub batch_size: i32,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// `None`: Lambda's default (retry until the record expires).
    pub maximum_retry_attempts: Option<i64>,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// Logical id of an SQS on-failure destination (`DestinationConfig.OnFailure`).
    pub on_failure_queue: Option<String>,
    pub enabled: bool,
}

/// A `Schedule` event (EventBridge): `rate(N minute|minutes|hour|hours|day|days)`.
/// A `cron(...)` expression has no `interval` and is not run locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEventDef {
    pub name: String,
    pub expression: String,
    pub interval: Option<std::time::Duration>,
    pub enabled: bool,
}

/// The period of an EventBridge `rate(...)` expression.
pub fn rate_interval(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.trim().parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDef {
    Http(HttpRouteDef),
    Sqs(SqsEventDef),
    DynamoDb(StreamEventDef),
    Schedule(ScheduleEventDef),
    /// An event type the local stack does not emulate (kept for diagnostics).
    Unsupported {
        name: String,
        event_type: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the crate (and binary) name.
    pub binary: String,
    /// `Globals.Function.Environment.Variables` merged with the function's own (unresolved).
    pub environment: BTreeMap<String, Value>,
    /// Seconds (function, else Globals, else SAM's default 3).
    pub timeout: u64,
    pub memory_size: u64,
    pub events: Vec<EventDef>,
}

impl FunctionDef {
    pub fn http_routes(&self) -> impl Iterator<Item = &HttpRouteDef> {
        self.events.iter().filter_map(|e| match e {
            EventDef::Http(r) => Some(r),
            _ => None,
        })
    }
    pub fn sqs_events(&self) -> impl Iterator<Item = &SqsEventDef> {
        self.events.iter().filter_map(|e| match e {
            EventDef::Sqs(r) => Some(r),
            _ => None,
        })
    }
    pub fn stream_events(&self) -> impl Iterator<Item = &StreamEventDef> {
        self.events.iter().filter_map(|e| match e {
            EventDef::DynamoDb(r) => Some(r),
            _ => None,
        })
    }
    pub fn schedule_events(&self) -> impl Iterator<Item = &ScheduleEventDef> {
        self.events.iter().filter_map(|e| match e {
            EventDef::Schedule(r) => Some(r),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsDef {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpApiDef {
    /// `Auth.DefaultAuthorizer` of the HttpApi, if any.
    pub default_authorizer: Option<String>,
    /// Names of the declared authorizers.
    pub authorizers: Vec<String>,
    pub cors: Option<CorsDef>,
}

impl HttpApiDef {
    /// Whether a route needs a valid JWT (the local gateway emulates every JWT
    /// authorizer with the dev key).
    pub fn requires_auth(&self, route: &HttpRouteDef) -> bool {
        match &route.auth {
            RouteAuth::None => false,
            RouteAuth::Named(_) => true,
            RouteAuth::Default => self.default_authorizer.is_some(),
        }
    }
}

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

// ------------------------------------------------------------------ helpers

fn str_prop(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar_string)
}

/// A YAML scalar as a string (numbers and booleans too: templates mix them).
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int_prop(v: &Value, key: &str) -> Result<Option<i64>, TemplateError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key}: not an integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("{key}: not an integer: {s}"))),
        Some(other) => Err(invalid(format!("{key}: not an integer: {other}"))),
    }
}

fn bool_prop(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(scalar_string).collect())
        .unwrap_or_default()
}

/// `{"Ref": X}` -> X.
pub fn ref_target(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.get("Ref")?.as_str()
}

/// `{"Fn::GetAtt": [X, Attr]}` or `{"Fn::GetAtt": "X.Attr"}` -> (X, Attr).
pub fn get_att_target(v: &Value) -> Option<(String, String)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    match o.get("Fn::GetAtt")? {
        Value::Array(a) if a.len() == 2 => {
            Some((a[0].as_str()?.to_owned(), a[1].as_str()?.to_owned()))
        }
        Value::String(s) => {
            let (x, attr) = s.split_once('.')?;
            Some((x.to_owned(), attr.to_owned()))
        }
        _ => None,
    }
}

/// The logical id a `GetAtt X.<attr>` points at, checking the attribute.
fn get_att_of(v: &Value, attr: &str, what: &str) -> Result<String, TemplateError> {
    match get_att_target(v) {
        Some((x, a)) if a == attr => Ok(x),
        _ => Err(invalid(format!(
            "{what}: expected {{Fn::GetAtt: [<LogicalId>, {attr}]}}, got {v}"
        ))),
    }
}

fn parse_key_schema(v: Option<&Value>) -> Vec<KeyElement> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|k| KeyElement {
                    name: str_prop(k, "AttributeName").unwrap_or_default(),
                    key_type: str_prop(k, "KeyType").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_indexes(v: Option<&Value>) -> Vec<IndexDef> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| IndexDef {
                    name: str_prop(i, "IndexName").unwrap_or_default(),
                    key_schema: parse_key_schema(i.get("KeySchema")),
                    projection_type: i
                        .pointer("/Projection/ProjectionType")
                        .and_then(scalar_string)
                        .unwrap_or_else(|| "ALL".into()),
                    non_key_attributes: string_list(i.pointer("/Projection/NonKeyAttributes")),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_table(id: &str, p: &Value) -> Result<TableDef, TemplateError> {
    let key_schema = parse_key_schema(p.get("KeySchema"));
    if key_schema.is_empty() {
        return Err(invalid(format!("{id}: table without KeySchema")));
    }
    let attribute_definitions = p
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| AttributeDef {
                    name: str_prop(d, "AttributeName").unwrap_or_default(),
                    attribute_type: str_prop(d, "AttributeType").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ttl = p.get("TimeToLiveSpecification");
    let ttl_attribute = match ttl {
        Some(t) if bool_prop(t, "Enabled").unwrap_or(false) => str_prop(t, "AttributeName"),
        _ => None,
    };
    Ok(TableDef {
        logical_id: id.to_owned(),
        key_schema,
        attribute_definitions,
        global_secondary_indexes: parse_indexes(p.get("GlobalSecondaryIndexes")),
        local_secondary_indexes: parse_indexes(p.get("LocalSecondaryIndexes")),
        stream_view_type: p
            .pointer("/StreamSpecification/StreamViewType")
            .and_then(scalar_string),
        ttl_attribute,
    })
}

fn parse_simple_table(id: &str, p: &Value) -> Result<TableDef, TemplateError> {
    let name = p
        .pointer("/PrimaryKey/Name")
        .and_then(scalar_string)
        .unwrap_or_else(|| "id".into());
    let ty = match p.pointer("/PrimaryKey/Type").and_then(Value::as_str) {
        Some("Number") => "N",
        Some("Binary") => "B",
        _ => "S",
    };
    Ok(TableDef {
        logical_id: id.to_owned(),
        key_schema: vec![KeyElement {
            name: name.clone(),
            key_type: "HASH".into(),
        }],
        attribute_definitions: vec![AttributeDef {
            name,
            attribute_type: ty.into(),
        }],
        global_secondary_indexes: Vec::new(),
        local_secondary_indexes: Vec::new(),
        stream_view_type: None,
        ttl_attribute: None,
    })
}

fn parse_topic(id: &str, p: &Value) -> TopicDef {
    TopicDef {
        logical_id: id.to_owned(),
        fifo: bool_prop(p, "FifoTopic").unwrap_or(false),
        display_name: str_prop(p, "DisplayName"),
        content_based_deduplication: bool_prop(p, "ContentBasedDeduplication").unwrap_or(false),
    }
}

fn parse_queue(id: &str, p: &Value) -> Result<QueueDef, TemplateError> {
    let mut attributes = BTreeMap::new();
    for key in [
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
    ] {
        if let Some(v) = p.get(key).and_then(scalar_string) {
            attributes.insert(key.to_owned(), v);
        }
    }
    let redrive = match p.get("RedrivePolicy") {
        None | Some(Value::Null) => None,
        Some(r) => {
            // CloudFormation accepts the policy as an object or a JSON string.
            let r = match r {
                Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| invalid(format!("{id}: RedrivePolicy is not JSON: {e}")))?,
                other => other.clone(),
            };
            let target = r.get("deadLetterTargetArn").ok_or_else(|| {
                invalid(format!("{id}: RedrivePolicy without deadLetterTargetArn"))
            })?;
            Some(RedriveDef {
                dead_letter_queue: get_att_of(target, "Arn", &format!("{id}.RedrivePolicy"))?,
                max_receive_count: int_prop(&r, "maxReceiveCount")?.unwrap_or(10),
            })
        }
    };
    Ok(QueueDef {
        logical_id: id.to_owned(),
        fifo: bool_prop(p, "FifoQueue").unwrap_or(false),
        visibility_timeout: int_prop(p, "VisibilityTimeout")?.unwrap_or(30),
        attributes,
        redrive,
    })
}

fn parse_endpoint(v: &Value) -> SubscriptionEndpoint {
    match get_att_target(v) {
        Some((q, attr)) if attr == "Arn" => SubscriptionEndpoint::Queue(q),
        _ => SubscriptionEndpoint::Other(v.clone()),
    }
}

fn parse_subscription(id: &str, p: &Value) -> Result<SubscriptionDef, TemplateError> {
    let topic = p
        .get("TopicArn")
        .and_then(ref_target)
        .ok_or_else(|| invalid(format!("{id}: TopicArn must be {{Ref: <Topic>}}")))?
        .to_owned();
    let filter_policy = match p.get("FilterPolicy") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            serde_json::from_str(s)
                .map_err(|e| invalid(format!("{id}: FilterPolicy is not JSON: {e}")))?,
        ),
        Some(v) => Some(v.clone()),
    };
    Ok(SubscriptionDef {
        logical_id: id.to_owned(),
        topic,
        protocol: str_prop(p, "Protocol").unwrap_or_default(),
        endpoint: parse_endpoint(p.get("Endpoint").unwrap_or(&Value::Null)),
        filter_policy,
        filter_policy_scope: str_prop(p, "FilterPolicyScope"),
        raw_message_delivery: bool_prop(p, "RawMessageDelivery").unwrap_or(false),
        redrive_policy: p.get("RedrivePolicy").cloned(),
    })
}

fn parse_http_api(p: &Value) -> HttpApiDef {
    let auth = p.get("Auth");
    let cors = p.get("CorsConfiguration").and_then(|c| match c {
        Value::Bool(true) => Some(CorsDef {
            allow_origins: vec!["*".into()],
            ..Default::default()
        }),
        Value::Object(_) => Some(CorsDef {
            allow_origins: string_list(c.get("AllowOrigins")),
            allow_methods: string_list(c.get("AllowMethods")),
            allow_headers: string_list(c.get("AllowHeaders")),
            expose_headers: string_list(c.get("ExposeHeaders")),
            max_age: c.get("MaxAge").and_then(Value::as_i64),
            allow_credentials: bool_prop(c, "AllowCredentials").unwrap_or(false),
        }),
        _ => None,
    });
    HttpApiDef {
        default_authorizer: auth
            .and_then(|a| str_prop(a, "DefaultAuthorizer"))
            .filter(|a| a != "NONE"),
        authorizers: auth
            .and_then(|a| a.get("Authorizers"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        cors,
    }
}

fn parse_function(
    id: &str,
    res: &Value,
    p: &Value,
    globals: &Value,
) -> Result<FunctionDef, TemplateError> {
    let binary = res
        .pointer("/Metadata/BuildProperties/Binary")
        .and_then(scalar_string)
        .ok_or_else(|| invalid(format!("{id}: no Metadata.BuildProperties.Binary")))?;
    let mut environment = BTreeMap::new();
    for src in [globals, p] {
        if let Some(vars) = src
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
        {
            for (k, v) in vars {
                environment.insert(k.clone(), v.clone());
            }
        }
    }
    let timeout = match int_prop(p, "Timeout")? {
        Some(t) => t,
        None => int_prop(globals, "Timeout")?.unwrap_or(3),
    };
    let memory_size = match int_prop(p, "MemorySize")? {
        Some(t) => t,
        None => int_prop(globals, "MemorySize")?.unwrap_or(128),
    };
    let mut events = Vec::new();
    if let Some(evs) = p.get("Events").and_then(Value::as_object) {
        for (name, ev) in evs {
            events.push(parse_event(id, name, ev)?);
        }
    }
    Ok(FunctionDef {
        logical_id: id.to_owned(),
        binary,
        environment,
        timeout: timeout.max(1) as u64,
        memory_size: memory_size.max(1) as u64,
        events,
    })
}

fn parse_event(fid: &str, name: &str, ev: &Value) -> Result<EventDef, TemplateError> {
    let ty = ev.get("Type").and_then(Value::as_str).unwrap_or_default();
    let empty = Value::Object(Map::new());
    let p = ev.get("Properties").unwrap_or(&empty);
    let what = format!("{fid}.Events.{name}");
    let frt = string_list(p.get("FunctionResponseTypes"));
    let report = frt.iter().any(|t| t == "ReportBatchItemFailures");
    Ok(match ty {
        "HttpApi" => {
            let auth = match p.pointer("/Auth/Authorizer").and_then(Value::as_str) {
                None => RouteAuth::Default,
                Some("NONE") => RouteAuth::None,
                Some(a) => RouteAuth::Named(a.to_owned()),
            };
            EventDef::Http(HttpRouteDef {
                name: name.to_owned(),
                method: str_prop(p, "Method")
                    .map(|m| m.to_ascii_uppercase())
                    .unwrap_or_else(|| "ANY".into()),
                path: str_prop(p, "Path").unwrap_or_else(|| "$default".into()),
                auth,
            })
        }
        "SQS" => EventDef::Sqs(SqsEventDef {
            name: name.to_owned(),
            queue: get_att_of(p.get("Queue").unwrap_or(&Value::Null), "Arn", &what)?,
            batch_size: int_prop(p, "BatchSize")?.unwrap_or(10) as i32,
            maximum_batching_window_seconds: int_prop(p, "MaximumBatchingWindowInSeconds")?
                .unwrap_or(0)
                .max(0) as u32,
            report_batch_item_failures: report,
            enabled: bool_prop(p, "Enabled").unwrap_or(true),
        }),
        "DynamoDB" => EventDef::DynamoDb(StreamEventDef {
            name: name.to_owned(),
            table: get_att_of(p.get("Stream").unwrap_or(&Value::Null), "StreamArn", &what)?,
            batch_size: int_prop(p, "BatchSize")?.unwrap_or(100) as i32,
            starting_position: str_prop(p, "StartingPosition")
                .unwrap_or_else(|| "TRIM_HORIZON".into()),
            maximum_retry_attempts: int_prop(p, "MaximumRetryAttempts")?.filter(|n| *n >= 0),
            bisect_batch_on_function_error: bool_prop(p, "BisectBatchOnFunctionError")
                .unwrap_or(false),
            report_batch_item_failures: report,
            on_failure_queue: p
                .pointer("/DestinationConfig/OnFailure/Destination")
                .and_then(|d| get_att_of(d, "Arn", &what).ok()),
            enabled: bool_prop(p, "Enabled").unwrap_or(true),
        }),
        "Schedule" => {
            let expression = str_prop(p, "Schedule").unwrap_or_default();
            EventDef::Schedule(ScheduleEventDef {
                name: name.to_owned(),
                interval: rate_interval(&expression),
                expression,
                enabled: bool_prop(p, "Enabled").unwrap_or(true),
            })
        }
        other => EventDef::Unsupported {
            name: name.to_owned(),
            event_type: other.to_owned(),
        },
    })
}

// --------------------------------------------------------------- resolution

/// What intrinsics resolve against: pseudo parameters, parameter values, and the
/// physical ids / attributes of provisioned resources.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> what `Ref` returns (table name, topic ARN, queue URL, ...).
    pub refs: BTreeMap<String, String>,
    /// (logical id, attribute) -> what `Fn::GetAtt` returns.
    pub attrs: BTreeMap<(String, String), String>,
}

impl Bindings {
    pub fn set_ref(&mut self, logical_id: &str, value: impl Into<String>) {
        self.refs.insert(logical_id.to_owned(), value.into());
    }

    pub fn set_attr(&mut self, logical_id: &str, attr: &str, value: impl Into<String>) {
        self.attrs
            .insert((logical_id.to_owned(), attr.to_owned()), value.into());
    }

    fn resolve_ref(&self, name: &str) -> Result<String, TemplateError> {
        match name {
            "AWS::Region" => Ok(self.region.clone()),
            "AWS::AccountId" => Ok(self.account_id.clone()),
            "AWS::Partition" => Ok("aws".into()),
            "AWS::URLSuffix" => Ok("amazonaws.com".into()),
            "AWS::StackName" => Ok(self.stack_name.clone()),
            "AWS::StackId" => Ok(format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/local",
                self.region, self.account_id, self.stack_name
            )),
            _ => self
                .parameters
                .get(name)
                .or_else(|| self.refs.get(name))
                .cloned()
                .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name}"))),
        }
    }

    fn resolve_get_att(&self, id: &str, attr: &str) -> Result<String, TemplateError> {
        self.attrs
            .get(&(id.to_owned(), attr.to_owned()))
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved(format!("Fn::GetAtt {id}.{attr}")))
    }

    /// Resolves every intrinsic in `v`.
    pub fn resolve(&self, v: &Value) -> Result<Value, TemplateError> {
        match v {
            Value::Array(a) => Ok(Value::Array(
                a.iter()
                    .map(|x| self.resolve(x))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Value::Object(o) => {
                if o.len() == 1 {
                    let (k, arg) = o.iter().next().expect("one entry");
                    match k.as_str() {
                        "Ref" => {
                            let name = arg
                                .as_str()
                                .ok_or_else(|| invalid(format!("Ref of a non-string: {arg}")))?;
                            return self.resolve_ref(name).map(Value::String);
                        }
                        "Fn::GetAtt" => {
                            let (id, attr) = get_att_target(v)
                                .ok_or_else(|| invalid(format!("bad Fn::GetAtt: {arg}")))?;
                            return self.resolve_get_att(&id, &attr).map(Value::String);
                        }
                        "Fn::Sub" => return self.sub(arg).map(Value::String),
                        "Fn::Join" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Join: {arg}")))?;
                            let sep = a[0].as_str().unwrap_or_default();
                            let items = self.resolve(&a[1])?;
                            let items = items
                                .as_array()
                                .ok_or_else(|| invalid(format!("bad Fn::Join list: {arg}")))?
                                .iter()
                                .map(|x| scalar_string(x).unwrap_or_default())
                                .collect::<Vec<_>>();
                            return Ok(Value::String(items.join(sep)));
                        }
                        "Fn::Select" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Select: {arg}")))?;
                            let idx = scalar_string(&self.resolve(&a[0])?)
                                .and_then(|s| s.parse::<usize>().ok())
                                .ok_or_else(|| invalid(format!("bad Fn::Select index: {arg}")))?;
                            let list = self.resolve(&a[1])?;
                            return list
                                .as_array()
                                .and_then(|l| l.get(idx))
                                .cloned()
                                .ok_or_else(|| invalid(format!("Fn::Select out of range: {arg}")));
                        }
                        "Fn::Split" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Split: {arg}")))?;
                            let sep = a[0].as_str().unwrap_or_default();
                            let s = scalar_string(&self.resolve(&a[1])?).unwrap_or_default();
                            return Ok(Value::Array(
                                s.split(sep).map(|p| Value::String(p.to_owned())).collect(),
                            ));
                        }
                        k if k.starts_with("Fn::") => {
                            return Err(invalid(format!("intrinsic {k} is not supported locally")))
                        }
                        _ => {}
                    }
                }
                let mut out = Map::new();
                for (k, x) in o {
                    out.insert(k.clone(), self.resolve(x)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Resolves to a string (numbers and booleans are rendered as text, like
    /// Lambda environment variables).
    pub fn resolve_string(&self, v: &Value) -> Result<String, TemplateError> {
        let r = self.resolve(v)?;
        scalar_string(&r).ok_or_else(|| invalid(format!("expected a string, got {r}")))
    }

    fn sub(&self, arg: &Value) -> Result<String, TemplateError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) if a.len() == 2 => (
                a[0].as_str()
                    .ok_or_else(|| invalid(format!("bad Fn::Sub: {arg}")))?,
                a[1].as_object(),
            ),
            _ => return Err(invalid(format!("bad Fn::Sub: {arg}"))),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(format!("unterminated ${{ in Fn::Sub: {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.resolve_string(v)?);
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&self.resolve_get_att(id, attr)?);
            } else {
                out.push_str(&self.resolve_ref(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn t() -> Template {
        Template::embedded().expect("template.yaml parses")
    }

    #[test]
    fn tables_come_from_the_template() {
        let t = t();
        let ids: Vec<_> = t.tables.iter().map(|t| t.logical_id.as_str()).collect();
        for id in [
            "OrdersTable",
            "InventoryTable",
            "PaymentsTable",
            "DeliveryTable",
            "NotificationsTable",
            "IdempotencyTable",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        let orders = t.table("OrdersTable").unwrap();
        assert_eq!(
            orders.key_schema[0],
            KeyElement {
                name: "pk".into(),
                key_type: "HASH".into()
            }
        );
        assert_eq!(orders.key_schema[1].key_type, "RANGE");
        assert_eq!(
            orders.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES")
        );
        assert_eq!(orders.ttl_attribute.as_deref(), Some("expiresAt"));
        let gsi = &orders.global_secondary_indexes[0];
        assert_eq!(gsi.name, "gsi1");
        assert_eq!(gsi.key_schema[0].name, "gsi1pk");
        assert_eq!(gsi.projection_type, "KEYS_ONLY");
        let overdue = &orders.global_secondary_indexes[1];
        assert_eq!(overdue.name, dishpatch::orders::OVERDUE_INDEX);
        assert_eq!(overdue.key_schema[0].name, "sweepShard");
        assert_eq!(overdue.key_schema[1].name, "deadline");
        assert_eq!(overdue.projection_type, "KEYS_ONLY");
        assert_eq!(orders.attribute_definitions.len(), 6);

        let idem = t.table("IdempotencyTable").unwrap();
        assert_eq!(idem.key_schema.len(), 1);
        assert_eq!(idem.key_schema[0].name, "id");
        assert_eq!(idem.ttl_attribute.as_deref(), Some("expiration"));
        assert!(idem.stream_view_type.is_none());
        assert_eq!(
            t.table("DeliveryTable")
                .unwrap()
                .global_secondary_indexes
                .len(),
            1
        );
    }

    #[test]
    fn queues_have_their_redrive_policies() {
        let t = t();
        // A queue's visibility timeout covers 6 runs of the function that consumes it
        // plus the batching window.
        for f in &t.functions {
            for e in f.sqs_events() {
                let q = t.queue(&e.queue).expect("event queue exists");
                let window = e.maximum_batching_window_seconds as i64;
                assert!(
                    q.visibility_timeout >= 6 * f.timeout as i64 + window,
                    "{}: visibility {} < 6 x {} s + {window} s",
                    e.queue,
                    q.visibility_timeout,
                    f.timeout
                );
            }
        }
        for q in [
            "SagaQueue",
            "NotificationQueue",
            "InventoryQueue",
            "PaymentQueue",
            "DeliveryQueue",
        ] {
            let def = t.queue(q).unwrap_or_else(|| panic!("{q} missing"));
            let r = def.redrive.as_ref().expect("redrive");
            assert_eq!(r.dead_letter_queue, format!("{q}DLQ"));
            assert_eq!(r.max_receive_count, 3);
            let dlq = t.queue(&r.dead_letter_queue).expect("dlq exists");
            assert!(dlq.redrive.is_none());
            assert_eq!(
                dlq.attributes
                    .get("MessageRetentionPeriod")
                    .map(String::as_str),
                Some("1209600")
            );
        }
    }

    /// A consumer parks failing messages in the DLQ its queue's redrive policy names,
    /// on the receive that policy would move them: the two must agree.
    #[test]
    fn consumers_park_in_their_queues_dead_letter_queue() {
        let t = t();
        let mut consumers = 0;
        for f in &t.functions {
            for e in f.sqs_events() {
                consumers += 1;
                let r = t.queue(&e.queue).unwrap().redrive.clone().unwrap();
                assert_eq!(
                    f.environment.get("DEAD_LETTER_QUEUE_URL"),
                    Some(&json!({"Ref": r.dead_letter_queue})),
                    "{}",
                    f.logical_id
                );
                assert_eq!(
                    f.environment.get("MAX_RECEIVE_COUNT"),
                    Some(&json!(r.max_receive_count.to_string())),
                    "{}",
                    f.logical_id
                );
            }
        }
        assert_eq!(consumers, 5);

        // ...and may send to it (IAM is not emulated locally: check the function's role).
        let raw: Value = serde_yaml_ng::from_str(EMBEDDED_TEMPLATE).unwrap();
        for f in &t.functions {
            for e in f.sqs_events() {
                let dlq = &t.queue(&e.queue).unwrap().redrive.clone().unwrap();
                let role = get_att_of(
                    &raw["Resources"][&f.logical_id]["Properties"]["Role"],
                    "Arn",
                    &f.logical_id,
                )
                .unwrap();
                let policies = &raw["Resources"][&role]["Properties"]["Policies"];
                let wanted = json!({"Fn::GetAtt": [dlq.dead_letter_queue, "Arn"]});
                let sends = policies
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
                    .any(|s| {
                        s["Action"]
                            .as_array()
                            .unwrap()
                            .contains(&json!("sqs:SendMessage"))
                            && s["Resource"].as_array().unwrap().contains(&wanted)
                    });
                assert!(sends, "{}: {role} cannot send to {wanted}", f.logical_id);
            }
        }
    }

    #[test]
    fn topics_and_subscriptions() {
        let t = t();
        for id in [
            "OrderEventsTopic",
            "CustomerNotificationsTopic",
            "OpsAlertsTopic",
        ] {
            assert!(t.topic(id).is_some(), "{id}");
        }
        let s = t.subscription("SagaQueueSubscription").unwrap();
        assert_eq!(s.topic, "OrderEventsTopic");
        assert_eq!(s.protocol, "sqs");
        assert_eq!(s.endpoint, SubscriptionEndpoint::Queue("SagaQueue".into()));
        assert!(!s.raw_message_delivery);
        assert_eq!(s.filter_policy_scope.as_deref(), Some("MessageAttributes"));
        let types = s.filter_policy.as_ref().unwrap()["eventType"]
            .as_array()
            .unwrap();
        assert!(types.contains(&json!("PaymentCaptured")));
        assert!(!types.contains(&json!("OrderPlaced")));
        let n = t.subscription("NotificationQueueSubscription").unwrap();
        assert!(n.filter_policy.as_ref().unwrap()["eventType"]
            .as_array()
            .unwrap()
            .contains(&json!("OrderPlaced")));
        assert_eq!(t.queue_policies.len(), 2);
    }

    #[test]
    fn functions_events_and_environment() {
        let t = t();
        let bins: Vec<_> = t.functions.iter().map(|f| f.binary.as_str()).collect();
        for b in [
            "order-api",
            "order-saga",
            "inventory",
            "payment",
            "delivery",
            "notification",
        ] {
            assert!(bins.contains(&b), "{b} missing from {bins:?}");
        }
        let saga = t.function("OrderSagaFunction").unwrap();
        assert_eq!(saga.binary, "order-saga");
        assert_eq!(saga.timeout, 10);
        assert_eq!(
            saga.environment.get("RUST_LOG"),
            Some(&json!("info")),
            "globals merged"
        );
        assert_eq!(
            saga.environment.get("ORDERS_TABLE"),
            Some(&json!({"Ref": "OrdersTable"}))
        );
        let sqs: Vec<_> = saga.sqs_events().collect();
        assert_eq!(sqs.len(), 1);
        assert_eq!(sqs[0].queue, "SagaQueue");
        assert_eq!(sqs[0].batch_size, 10);
        assert_eq!(sqs[0].maximum_batching_window_seconds, 1);
        assert!(sqs[0].report_batch_item_failures);
        let streams: Vec<_> = saga.stream_events().collect();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].table, "OrdersTable");
        assert_eq!(streams[0].starting_position, "TRIM_HORIZON");
        assert_eq!(
            streams[0].on_failure_queue.as_deref(),
            Some("OrdersStreamDLQ")
        );
        let schedules: Vec<_> = saga.schedule_events().collect();
        assert_eq!(schedules.len(), 1);
        assert_eq!(schedules[0].expression, "rate(1 minute)");
        assert_eq!(schedules[0].interval, Some(Duration::from_secs(60)));
        assert!(schedules[0].enabled);

        let api = t.function("OrderApiFunction").unwrap();
        let routes: Vec<_> = api.http_routes().map(|r| r.route_key()).collect();
        assert!(
            routes.contains(&"GET /v1/orders/{orderId}".to_owned()),
            "{routes:?}"
        );
        assert!(routes.contains(&"POST /v1/orders".to_owned()));
        let health = api.http_routes().find(|r| r.path == "/v1/health").unwrap();
        assert!(!t.http_api.requires_auth(health));
        let place = api
            .http_routes()
            .find(|r| r.route_key() == "POST /v1/orders")
            .unwrap();
        assert!(t.http_api.requires_auth(place));
        let menu = t
            .http_routes()
            .into_iter()
            .find(|(_, r)| r.route_key() == "GET /v1/restaurants/{restaurantId}/menu")
            .unwrap();
        assert_eq!(menu.0.binary, "inventory");
        assert!(!t.http_api.requires_auth(menu.1));
    }

    #[test]
    fn rate_expressions_read_as_intervals() {
        assert_eq!(
            rate_interval("rate(1 minute)"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_interval("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            rate_interval("rate(2 hours)"),
            Some(Duration::from_secs(7_200))
        );
        assert_eq!(
            rate_interval("rate(1 day)"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(rate_interval("rate(0 minutes)"), None);
        assert_eq!(rate_interval("cron(0 12 * * ? *)"), None);
    }

    #[test]
    fn intrinsics_resolve() {
        let mut b = Bindings {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
            stack_name: "s".into(),
            ..Default::default()
        };
        b.set_ref("Q", "https://q/url");
        b.set_attr("Q", "Arn", "arn:aws:sqs:eu-west-1:123456789012:s-Q");
        assert_eq!(
            b.resolve_string(&json!({"Ref": "Q"})).unwrap(),
            "https://q/url"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::GetAtt": ["Q", "Arn"]}))
                .unwrap(),
            "arn:aws:sqs:eu-west-1:123456789012:s-Q"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::GetAtt": "Q.Arn"})).unwrap(),
            "arn:aws:sqs:eu-west-1:123456789012:s-Q"
        );
        assert_eq!(
            b.resolve_string(
                &json!({"Fn::Sub": "x-${AWS::Region}-${AWS::AccountId}-${Q}-${Q.Arn}-${!Lit}"})
            )
            .unwrap(),
            "x-eu-west-1-123456789012-https://q/url-arn:aws:sqs:eu-west-1:123456789012:s-Q-${Lit}"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::Sub": ["${A}/${Q}", {"A": {"Ref": "AWS::Region"}}]}))
                .unwrap(),
            "eu-west-1/https://q/url"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::Join": [":", ["a", {"Ref": "Q"}]]}))
                .unwrap(),
            "a:https://q/url"
        );
        assert!(matches!(
            b.resolve(&json!({"Ref": "Missing"})),
            Err(TemplateError::Unresolved(_))
        ));
        assert_eq!(b.resolve_string(&json!(10)).unwrap(), "10");
    }
}
