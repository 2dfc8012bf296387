//! Functions and their events: SQS queues, the table stream, schedules and HTTP routes.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::document::Template;
use crate::error::{invalid, TemplateError};
use crate::http_api::{HttpRouteDef, RouteAuth};
use crate::props::*;

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

impl Template {
    /// The function crates (`Metadata.BuildProperties.Binary`), in template order.
    pub fn binaries(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().map(|f| f.binary.as_str())
    }
}

/// The function crates of the embedded template, in its order: the one list of the
/// product's functions that the local registry, the benchmarks and the tests read.
pub fn embedded_binaries() -> &'static [String] {
    static BINARIES: LazyLock<Vec<String>> = LazyLock::new(|| {
        Template::embedded()
            .expect("the embedded template parses")
            .binaries()
            .map(str::to_owned)
            .collect()
    });
    &BINARIES
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

pub(crate) fn parse_function(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Template, EMBEDDED_TEMPLATE};
    use serde_json::json;
    use std::time::Duration;

    fn t() -> Template {
        Template::embedded().expect("template.yaml parses")
    }

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
    fn functions_events_and_environment() {
        let t = t();
        let bins: Vec<_> = t.binaries().collect();
        assert_eq!(bins, embedded_binaries());
        // Every function crate of the workspace, and nothing else, in the template's order.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions");
        let mut crates: Vec<String> = std::fs::read_dir(dir)
            .expect("functions/ lists")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        crates.sort();
        let mut sorted = bins.clone();
        sorted.sort();
        assert_eq!(sorted, crates);
        let at = |b: &str| {
            crate::EMBEDDED_TEMPLATE
                .find(&format!("Binary: {b}\n"))
                .unwrap()
        };
        assert!(bins.windows(2).all(|w| at(w[0]) < at(w[1])), "{bins:?}");
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
}
