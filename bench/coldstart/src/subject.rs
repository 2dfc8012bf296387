//! What gets started: the six functions with the environment `template.yaml` gives
//! them (dummy values; nothing is contacted at init), and the Python and Node peers.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

pub const FUNCTIONS: [&str; 6] = [
    "order-api",
    "order-saga",
    "inventory",
    "payment",
    "delivery",
    "notification",
];

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rust,
    Python,
    Node,
}

#[derive(Debug, Clone)]
pub struct Subject {
    pub name: String,
    pub kind: Kind,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub event: Bytes,
    /// Which event the first invocation gets, for the report.
    pub event_label: String,
}

impl Subject {
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

/// The function's own variables, as `template.yaml` declares them (Globals included).
pub fn function_env(function: &str) -> Vec<(String, String)> {
    let table = |t: &str| format!("dishpatch-{t}");
    let topic = |t: &str| format!("arn:aws:sns:{REGION}:{ACCOUNT}:dishpatch-{t}");
    let queue = |q: &str| format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/dishpatch-{q}");
    let mut env = vec![
        ("RUST_LOG".to_owned(), "info".to_owned()),
        ("STEP_TIMEOUT_SECONDS".to_owned(), "300".to_owned()),
        ("COMPENSATION_TIMEOUT_SECONDS".to_owned(), "30".to_owned()),
        ("COMPENSATION_RETRY_DELAYS".to_owned(), "1,2,4".to_owned()),
    ];
    let own: Vec<(&str, String)> = match function {
        "order-api" => vec![
            ("ORDERS_TABLE", table("orders")),
            ("NOTIFICATIONS_TABLE", table("notifications")),
            ("INVENTORY_TABLE", table("inventory")),
            ("IDEMPOTENCY_TABLE", table("idempotency")),
        ],
        "order-saga" => vec![
            ("ORDERS_TABLE", table("orders")),
            ("ORDER_EVENTS_TOPIC_ARN", topic("order-events")),
            ("OPS_ALERTS_TOPIC_ARN", topic("ops-alerts")),
            ("INVENTORY_QUEUE_URL", queue("inventory")),
            ("PAYMENT_QUEUE_URL", queue("payment")),
            ("DELIVERY_QUEUE_URL", queue("delivery")),
            ("SAGA_QUEUE_URL", queue("saga")),
        ],
        "inventory" => vec![
            ("INVENTORY_TABLE", table("inventory")),
            ("ORDER_EVENTS_TOPIC_ARN", topic("order-events")),
        ],
        // The deployed function reads its key from SSM on the first card call, not at
        // init, so giving it directly changes nothing measured here.
        "payment" => vec![
            ("WALLETS_TABLE", table("payments")),
            ("ORDER_EVENTS_TOPIC_ARN", topic("order-events")),
            ("PSP_BASE_URL", "https://psp.example.com".to_owned()),
            ("PSP_API_KEY", "bench-psp-key".to_owned()),
        ],
        "delivery" => vec![
            ("DELIVERY_TABLE", table("delivery")),
            ("ORDER_EVENTS_TOPIC_ARN", topic("order-events")),
        ],
        "notification" => vec![
            ("NOTIFICATIONS_TABLE", table("notifications")),
            (
                "CUSTOMER_NOTIFICATIONS_TOPIC_ARN",
                topic("customer-notifications"),
            ),
        ],
        _ => vec![],
    };
    env.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

pub fn rust_function(
    name: &str,
    bin_dir: &Path,
    events_dir: &Path,
    home: &Path,
) -> std::io::Result<Subject> {
    let (event, event_label) = first_event(name, events_dir)?;
    let mut env = base_env(name, home);
    env.extend(function_env(name));
    Ok(Subject {
        name: name.to_owned(),
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
        Kind::Rust => unreachable!("peers are Python or Node"),
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
        kind,
        program,
        args,
        env,
        event,
        event_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_gets_its_template_variables() {
        let has = |f: &str, k: &str| function_env(f).iter().any(|(n, v)| n == k && !v.is_empty());
        assert!(has("order-api", "IDEMPOTENCY_TABLE"));
        assert!(has("order-saga", "SAGA_QUEUE_URL"));
        assert!(has("payment", "PSP_API_KEY"));
        assert!(has("notification", "CUSTOMER_NOTIFICATIONS_TOPIC_ARN"));
        for f in FUNCTIONS {
            assert!(has(f, "RUST_LOG"), "{f}");
        }
    }
}
