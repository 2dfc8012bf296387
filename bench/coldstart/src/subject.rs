//! What gets started: the functions `template.yaml` lists, with the environment it gives
//! them (dummy values; nothing is contacted at init), and the Python and Node peers.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

/// The functions, as `template.yaml` lists them.
pub fn functions() -> &'static [String] {
    dishpatch_template::embedded_binaries()
}

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rust,
    Python,
    Node,
    /// The harness floor (see `floor.rs`).
    Floor,
}

#[derive(Debug, Clone)]
pub struct Subject {
    pub name: String,
    /// The function (or peer) this runs; `name` adds the variant.
    pub function: String,
    /// The first invocation talks to the emulator.
    pub with_io: bool,
    /// A what-if run with extra environment (e.g. another certificate source).
    pub variant: Option<String>,
    /// Another build of the function, run for comparison: that build's label.
    pub build: Option<String>,
    pub kind: Kind,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub event: Bytes,
    /// Which event the first invocation gets, for the report.
    pub event_label: String,
}

impl Subject {
    /// The event to send now: emulator events get current timestamps.
    pub fn event_now(&self) -> Bytes {
        if !self.with_io {
            return self.event.clone();
        }
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        refresh_timestamps(&String::from_utf8_lossy(&self.event), &now).into()
    }

    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:dishpatch-{}",
            self.name
        )
    }
}

/// The event each function's first invocation gets: I/O-free, so the figure is the
/// function's own work (routing, decoding, response) and not an emulator's latency.
pub fn first_event(function: &str, events_dir: &Path) -> std::io::Result<(Bytes, String)> {
    if function == "order-api" {
        let file = "order-api-health.json";
        let bytes = std::fs::read(events_dir.join(file))?;
        return Ok((bytes.into(), format!("events/{file} (GET /v1/health)")));
    }
    Ok((
        Bytes::from_static(b"{\"Records\":[]}"),
        "empty SQS batch".to_owned(),
    ))
}

/// The variables every process gets: what Lambda sets, dummy credentials so no
/// provider looks further (no IMDS, no profile), and a private HOME so no local
/// AWS config is read.
pub fn base_env(name: &str, home: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("TZ", ":UTC"),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHCOLDSTART00"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-access-key"),
        ("AWS_SESSION_TOKEN", "bench-session-token"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.push(("HOME".into(), home.display().to_string()));
    env.push((
        "AWS_LAMBDA_FUNCTION_NAME".into(),
        format!("dishpatch-{name}"),
    ));
    env.push((
        "AWS_LAMBDA_LOG_GROUP_NAME".into(),
        format!("/aws/lambda/dishpatch-{name}"),
    ));
    env
}

/// Where the functions' resources live: dummy names that are never contacted, or the
/// emulator with the local stack's `{prefix}-{LogicalId}` names.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub endpoint: String,
    pub prefix: String,
}

struct Naming<'a>(Option<&'a Emulator>);

impl Naming<'_> {
    fn name(&self, logical: &str) -> String {
        let prefix = self.0.map_or("dishpatch", |e| e.prefix.as_str());
        format!("{prefix}-{logical}")
    }
    fn topic(&self, logical: &str) -> String {
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", self.name(logical))
    }
    fn queue(&self, logical: &str) -> String {
        let host = self.0.map_or_else(
            || format!("https://sqs.{REGION}.amazonaws.com"),
            |e| e.endpoint.trim_end_matches('/').to_owned(),
        );
        format!("{host}/{ACCOUNT}/{}", self.name(logical))
    }
}

/// The function's own variables, as `template.yaml` declares them (Globals included).
pub fn function_env(function: &str, emulator: Option<&Emulator>) -> Vec<(String, String)> {
    let n = Naming(emulator);
    let mut env = vec![
        ("RUST_LOG".to_owned(), "info".to_owned()),
        ("STEP_TIMEOUT_SECONDS".to_owned(), "300".to_owned()),
        ("COMPENSATION_TIMEOUT_SECONDS".to_owned(), "30".to_owned()),
        ("COMPENSATION_RETRY_DELAYS".to_owned(), "1,2,4".to_owned()),
    ];
    let own: Vec<(&str, String)> = match function {
        "order-api" => vec![
            ("ORDERS_TABLE", n.name("OrdersTable")),
            ("NOTIFICATIONS_TABLE", n.name("NotificationsTable")),
            ("INVENTORY_TABLE", n.name("InventoryTable")),
            ("IDEMPOTENCY_TABLE", n.name("IdempotencyTable")),
        ],
        "order-saga" => vec![
            ("ORDERS_TABLE", n.name("OrdersTable")),
            ("ORDER_EVENTS_TOPIC_ARN", n.topic("OrderEventsTopic")),
            ("OPS_ALERTS_TOPIC_ARN", n.topic("OpsAlertsTopic")),
            ("INVENTORY_QUEUE_URL", n.queue("InventoryQueue")),
            ("PAYMENT_QUEUE_URL", n.queue("PaymentQueue")),
            ("DELIVERY_QUEUE_URL", n.queue("DeliveryQueue")),
            ("SAGA_QUEUE_URL", n.queue("SagaQueue")),
        ],
        "inventory" => vec![
            ("INVENTORY_TABLE", n.name("InventoryTable")),
            ("ORDER_EVENTS_TOPIC_ARN", n.topic("OrderEventsTopic")),
        ],
        // The deployed function reads its key from SSM on the first card call, not at
        // init, so giving it directly changes nothing measured here.
        "payment" => vec![
            ("WALLETS_TABLE", n.name("PaymentsTable")),
            ("ORDER_EVENTS_TOPIC_ARN", n.topic("OrderEventsTopic")),
            ("PSP_BASE_URL", "https://psp.example.com".to_owned()),
            ("PSP_API_KEY", "bench-psp-key".to_owned()),
        ],
        "delivery" => vec![
            ("DELIVERY_TABLE", n.name("DeliveryTable")),
            ("ORDER_EVENTS_TOPIC_ARN", n.topic("OrderEventsTopic")),
        ],
        "notification" => vec![
            ("NOTIFICATIONS_TABLE", n.name("NotificationsTable")),
            (
                "CUSTOMER_NOTIFICATIONS_TOPIC_ARN",
                n.topic("CustomerNotificationsTopic"),
            ),
        ],
        _ => vec![],
    };
    env.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
    if let Some(e) = emulator {
        env.push(("AWS_ENDPOINT_URL".to_owned(), e.endpoint.clone()));
    }
    env
}

/// Sets every `YYYY-MM-DDTHH:MM:SS[.fff]Z` timestamp in `text` to `now`, so a sample
/// event is current when it is sent (notification drops facts older than a few minutes).
pub fn refresh_timestamps(text: &str, now: &str) -> String {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let shape = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&k| digit(i + k))
            && at(i + 4, b'-')
            && at(i + 7, b'-')
            && at(i + 10, b'T')
            && at(i + 13, b':')
            && at(i + 16, b':');
        if shape {
            let mut end = i + 19;
            if at(end, b'.') {
                end += 1;
                while digit(end) {
                    end += 1;
                }
            }
            if at(end, b'Z') {
                out.push_str(&text[copied..i]);
                out.push_str(now);
                i = end + 1;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// A representative sample event per function for runs against the emulator. After the
/// warm-up round has processed each command once, measured runs take the duplicate path
/// (find the step record, publish the recorded outcome), which still reads and publishes.
pub fn emulator_event(function: &str) -> &'static str {
    match function {
        "order-api" => "order-api-list-orders.json",
        "order-saga" => "order-saga-stream.json",
        "inventory" => "inventory-reserve.json",
        "payment" => "payment-capture.json",
        "delivery" => "delivery-dispatch.json",
        _ => "notification-facts.json",
    }
}

pub fn rust_function(
    name: &str,
    bin_dir: &Path,
    events_dir: &Path,
    home: &Path,
    emulator: Option<&Emulator>,
) -> std::io::Result<Subject> {
    let (event, event_label) = match emulator {
        None => first_event(name, events_dir)?,
        Some(_) => {
            let file = emulator_event(name);
            // Timestamps are set when it is sent: see `Subject::event_now`.
            let bytes = std::fs::read(events_dir.join(file))?;
            (
                bytes.into(),
                format!("events/{file} (timestamps set to the time of sending)"),
            )
        }
    };
    let mut env = base_env(name, home);
    env.extend(function_env(name, emulator));
    Ok(Subject {
        name: name.to_owned(),
        function: name.to_owned(),
        with_io: emulator.is_some(),
        variant: None,
        build: None,
        kind: Kind::Rust,
        program: bin_dir.join(name),
        args: vec![],
        env,
        event,
        event_label,
    })
}

/// The peers do the same start-up for every function, so one of each stands in for all
/// six; they answer the HTTP health event (Powertools' batch utility rejects an empty
/// batch).
pub fn peer(
    kind: Kind,
    peers_dir: &Path,
    node: &Path,
    events_dir: &Path,
    home: &Path,
) -> std::io::Result<Subject> {
    let (event, _) = first_event("order-api", events_dir)?;
    let event_label = "events/order-api-health.json (GET /v1/health)".to_owned();
    let name = match kind {
        Kind::Python => "python-peer",
        Kind::Node => "node-peer",
        Kind::Rust | Kind::Floor => unreachable!("peers are Python or Node"),
    };
    let mut env = base_env(name, home);
    env.push(("IDEMPOTENCY_TABLE".into(), "dishpatch-idempotency".into()));
    env.push(("POWERTOOLS_SERVICE_NAME".into(), "dishpatch-peer".into()));
    let (program, args) = match kind {
        Kind::Python => {
            let dir = peers_dir.join("python");
            env.push(("PYTHONPATH".into(), dir.display().to_string()));
            (
                dir.join("venv/bin/python"),
                vec![dir.join("bootstrap.py").display().to_string()],
            )
        }
        _ => (
            node.to_owned(),
            vec![peers_dir.join("node/bootstrap.mjs").display().to_string()],
        ),
    };
    Ok(Subject {
        name: name.to_owned(),
        function: name.to_owned(),
        with_io: false,
        variant: None,
        build: None,
        kind,
        program,
        args,
        env,
        event,
        event_label,
    })
}

/// The harness floor: this binary as a do-nothing function.
pub fn floor(exe: &Path, events_dir: &Path, home: &Path) -> std::io::Result<Subject> {
    let (event, event_label) = first_event("order-api", events_dir)?;
    let name = "harness-floor";
    Ok(Subject {
        name: name.to_owned(),
        function: name.to_owned(),
        with_io: false,
        variant: None,
        build: None,
        kind: Kind::Floor,
        program: exe.to_owned(),
        args: vec![crate::floor::ARG.to_owned()],
        env: base_env(name, home),
        event,
        event_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_gets_its_template_variables() {
        let has = |f: &str, k: &str| {
            function_env(f, None)
                .iter()
                .any(|(n, v)| n == k && !v.is_empty())
        };
        assert!(has("order-api", "IDEMPOTENCY_TABLE"));
        assert!(has("order-saga", "SAGA_QUEUE_URL"));
        assert!(has("payment", "PSP_API_KEY"));
        assert!(has("notification", "CUSTOMER_NOTIFICATIONS_TOPIC_ARN"));
        for f in functions() {
            assert!(has(f, "RUST_LOG"), "{f}");
        }
    }

    #[test]
    fn refreshes_timestamps_and_nothing_else() {
        let now = "2030-01-02T03:04:05.678Z";
        let text = r#"{"occurredAt":"2026-11-22T10:00:05Z","at":"2026-11-22T10:00:05.123Z","id":"2026-11-22","n":"1795341601"}"#;
        assert_eq!(
            refresh_timestamps(text, now),
            r#"{"occurredAt":"2030-01-02T03:04:05.678Z","at":"2030-01-02T03:04:05.678Z","id":"2026-11-22","n":"1795341601"}"#
        );
        let escaped = r#"{"occurredAt":"2026-11-22T10:00:05Z"}"#;
        assert_eq!(
            refresh_timestamps(escaped, now),
            r#"{"occurredAt":"2030-01-02T03:04:05.678Z"}"#
        );
    }

    #[test]
    fn emulator_names_follow_the_local_stack() {
        let e = Emulator {
            endpoint: "http://127.0.0.1:5099/".into(),
            prefix: "cs".into(),
        };
        let env = function_env("order-saga", Some(&e));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ORDERS_TABLE"), Some("cs-OrdersTable"));
        assert_eq!(
            get("SAGA_QUEUE_URL"),
            Some("http://127.0.0.1:5099/123456789012/cs-SagaQueue")
        );
        assert_eq!(
            get("ORDER_EVENTS_TOPIC_ARN"),
            Some("arn:aws:sns:eu-west-1:123456789012:cs-OrderEventsTopic")
        );
        assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:5099/"));
    }
}
