//! One trace per order: an order placed on the local stack is followed by one trace
//! id from the API call through the stream relay, the saga, every worker and the
//! notifications, on every log line that names the order, on the spans the stack
//! recorded and on the trace header of every AWS call the functions made for it (as
//! the AWS proxy saw them); the courier's completion continues it to DELIVERED.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dishpatch::logging::Captured;
use dishpatch_e2e::System;
use dishpatch_local::awsproxy::{AwsProxyConfig, Caller};
use dishpatch_local::testing::unique_prefix;
use dishpatch_local::LocalStackOptions;
use serde_json::{json, Value};

/// The JSON log lines the functions wrote so far.
fn parsed(lines: &Captured) -> Vec<Value> {
    lines
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The log lines that name the order `id`, and the traces they are in.
fn naming<'a>(logged: &'a [Value], id: &str) -> (Vec<&'a Value>, BTreeSet<&'a str>) {
    let of_order: Vec<&Value> = logged.iter().filter(|l| l["orderId"] == id).collect();
    let traces = of_order
        .iter()
        .filter_map(|l| l["traceId"].as_str())
        .collect();
    (of_order, traces)
}

/// Calls that change something, which only the order's own handling makes here.
const WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "SendMessage",
    "Publish",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_one_trace_runs_through_every_function_and_aws_call() {
    let lines = Captured::default();
    let sink = lines.clone();
    assert!(
        dishpatch::logging::Logs::from_env()
            .record_spans()
            .install_to(move || sink.clone()),
        "the test's subscriber is the process's"
    );
    let opts = LocalStackOptions::new(unique_prefix("traces"))
        .aws_proxy(AwsProxyConfig::default().meter_units(false));
    let sys = System::start_with(opts).await;
    let binary_of: BTreeMap<String, String> = sys
        .stack
        .stack
        .functions
        .values()
        .map(|f| (f.name.clone(), f.binary.clone()))
        .collect();

    let id = sys
        .place("alice", json!([{"menuItemId": "m-1", "quantity": 1}]))
        .await;
    sys.wait_for("alice", &id, "DISPATCHED").await;

    // The last hop, the dispatch's notification, may still be on its way.
    let every: BTreeSet<&str> = binary_of.values().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (trace, hops) = loop {
        let logged = parsed(&lines);
        let (of_order, traces) = naming(&logged, &id);
        assert_eq!(
            traces.len(),
            1,
            "one trace on every line naming {id}: {traces:?}"
        );
        assert!(
            of_order.iter().all(|l| l["traceId"].is_string()),
            "a line without its trace"
        );
        let trace = traces.into_iter().next().unwrap().to_owned();
        let hops: BTreeSet<String> = logged
            .iter()
            .filter(|l| l["traceId"] == trace.as_str())
            .filter_map(|l| binary_of.get(l["function"].as_str()?).cloned())
            .collect();
        let notified = of_order.iter().any(|l| {
            l["messageType"] == "OrderDispatched"
                && binary_of
                    .get(l["function"].as_str().unwrap_or(""))
                    .is_some_and(|b| b == "notification")
        });
        if (hops.len() == every.len() && notified) || Instant::now() > deadline {
            break (trace, hops);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        hops.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        every,
        "every function logged in trace {trace}"
    );

    // Every AWS call a function made carries a trace; every write it made is the order's.
    let proxy = sys.stack.aws_proxy().expect("the proxy runs");
    let calls: Vec<_> = proxy
        .traced_calls()
        .into_iter()
        .filter(|c| c.caller == Caller::Function)
        .collect();
    let untraced: Vec<_> = calls.iter().filter(|c| c.trace_id.is_none()).collect();
    assert!(untraced.is_empty(), "calls without a trace: {untraced:?}");
    let foreign: Vec<_> = calls
        .iter()
        .filter(|c| WRITES.contains(&c.action.as_str()))
        .filter(|c| c.trace_id.as_deref() != Some(trace.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "writes outside trace {trace}: {foreign:?}"
    );
    let services: BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.trace_id.as_deref() == Some(trace.as_str()))
        .map(|c| c.service.as_str())
        .collect();
    assert_eq!(services, ["dynamodb", "sns", "sqs"].into(), "{calls:?}");

    // The recorded spans of the order, as the console reads them: one trace, every
    // function, each span but the first hop's a child of a span of that trace.
    let answer = sys
        .call("GET", &format!("/_local/traces?orderId={id}"), None, None)
        .await
        .body;
    assert_eq!(answer["traceIds"], json!([trace]), "{answer}");
    let spans = answer["spans"].as_array().unwrap();
    let functions: BTreeSet<&str> = spans
        .iter()
        .filter_map(|s| binary_of.get(s["function"].as_str()?).map(String::as_str))
        .collect();
    assert_eq!(functions, every);
    let ids: BTreeSet<&str> = spans.iter().filter_map(|s| s["spanId"].as_str()).collect();
    let orphans = spans
        .iter()
        .filter(|s| s["parentSpanId"].as_str().is_some_and(|p| !ids.contains(p)))
        .count();
    assert!(
        orphans <= 1,
        "only the API call's span has its parent outside: {answer}"
    );
    assert!(!answer["awsCalls"].as_array().unwrap().is_empty());
    let by_id = sys
        .call("GET", &format!("/_local/traces/{trace}"), None, None)
        .await
        .body;
    assert_eq!(by_id["spans"].as_array().unwrap().len(), spans.len());

    // The courier's completion continues the order's trace (stored on the delivery at
    // dispatch): the request's work, the saga's DELIVERED leg, the commit of the stock
    // and the customer's message are all in it, and so is every write they make.
    let courier = sys.order("alice", &id).await["courierId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sys.complete(&courier, &id).await.status, 200);
    sys.wait_for("alice", &id, "DELIVERED").await;
    let legs = [
        ("delivery", "delivery completed"),
        ("order-saga", "DeliveryCompleted"),
        ("notification", "OrderDelivered"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let logged = parsed(&lines);
        let (of_order, traces) = naming(&logged, &id);
        assert_eq!(
            traces,
            [trace.as_str()].into(),
            "the completion's lines are in the order's trace"
        );
        let missing: Vec<_> = legs
            .iter()
            .filter(|(binary, what)| {
                !of_order.iter().any(|l| {
                    binary_of
                        .get(l["function"].as_str().unwrap_or(""))
                        .map(String::as_str)
                        == Some(*binary)
                        && (l["messageType"] == *what || l["message"] == *what)
                })
            })
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        missing.is_empty(),
        "legs not logged in trace {trace}: {missing:?}"
    );
    // At rest (the stock committed too), no write was made outside the order's trace.
    let report = sys.report_at_rest().await;
    assert!(report.is_clean(), "{report}");
    let foreign: Vec<_> = proxy
        .traced_calls()
        .into_iter()
        .filter(|c| c.caller == Caller::Function && WRITES.contains(&c.action.as_str()))
        .filter(|c| c.trace_id.as_deref() != Some(trace.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "completion writes outside trace {trace}: {foreign:?}"
    );
}
