//! `dishpatch-bench calls`: AWS calls and cost per happy-path order.
//!
//! One local stack with the AWS proxy on. Setup (stock, wallet) goes through the API, then
//! the counters are zeroed once the stack is at rest. Orders are placed `--concurrency`
//! at a time (the demo data has two couriers), each is read straight from the table (not
//! counted) until DISPATCHED, completed by its courier over the API and read until
//! DELIVERED. Then the bench waits for every queue to drain — the delayed `StepTimeout`
//! messages included (`--step-timeout-secs` stands in for the template's 300 s so they
//! arrive within the run; each still costs what it costs in AWS) — and for the calls to
//! stop, checks the invariants, and divides everything by the number of orders.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use clap::Args as ClapArgs;
use dishpatch::aws::dynamo;
use dishpatch::keys;
use dishpatch_local::awsproxy::{units, AwsProxy, AwsProxyConfig, Caller};
use dishpatch_local::invariants::messages::queue_depth;
use dishpatch_local::invariants::CheckOptions;
use dishpatch_local::{sdk, template, LocalStack, LocalStackOptions};
use serde_json::{json, Value};

use crate::api::Api;
use crate::metering::{LogBytes, Tally};
use crate::report::{self, Measured};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Happy-path orders to place.
    #[arg(long, default_value_t = 20)]
    orders: usize,
    /// Orders in flight at once (at most the number of couriers, 2 in the demo data).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Emulator endpoint. Default: $AWS_ENDPOINT_URL, else http://127.0.0.1:5000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// The saga's step deadline during the run, so the delayed StepTimeout messages are
    /// delivered (and counted) before it ends.
    #[arg(long, default_value_t = 8)]
    step_timeout_secs: u64,
    /// Where calls.md and calls.json go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

const CUSTOMER: &str = "alice";
const ITEM: (&str, &str, i64) = ("m-3", "Pastel de nata", 150);
const DEADLINE: Duration = Duration::from_secs(60);

pub async fn run(args: Args) -> Result<(), String> {
    let command = format!(
        "dishpatch-bench calls --orders {} --concurrency {} --step-timeout-secs {}",
        args.orders, args.concurrency, args.step_timeout_secs
    );
    if args.orders == 0 || args.concurrency == 0 || args.concurrency > 2 {
        return Err("--orders must be positive and --concurrency 1 or 2".into());
    }
    let logs = LogBytes::default();
    logs.install();
    let endpoint = sdk::endpoint(args.endpoint.as_deref());
    let tally = Tally::default();
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut opts = LocalStackOptions::new(&prefix)
        .endpoint(&endpoint)
        .psp(false)
        .aws_proxy(AwsProxyConfig::default())
        // Every function that writes an order schedules its deadlines (order-api the first).
        .function_env(
            "*",
            "STEP_TIMEOUT_SECONDS",
            &args.step_timeout_secs.to_string(),
        )
        // The dispatch step's own deadline, likewise.
        .function_env(
            "*",
            "DISPATCH_DEADLINE_SECONDS",
            &args.step_timeout_secs.to_string(),
        );
    for binary in template::embedded_binaries() {
        let t = tally.clone();
        let name = binary.to_string();
        opts = opts.wrap_function(binary, move |inner| t.wrap(&name, inner));
    }
    let local = LocalStack::start(opts)
        .await
        .map_err(|e| format!("{e} (is moto running at {endpoint}?)"))?;
    let proxy = local.aws_proxy().ok_or("the AWS proxy is off")?;
    let direct = sdk::emulator_config(Some(&endpoint)).await;
    let api = Api::new(local.url());

    provision_orders(&api, args.orders).await?;
    wait_quiet(&local, &direct, proxy, Duration::from_secs(120)).await?;
    proxy.reset();
    tally.reset();
    logs.reset();
    eprintln!("placing {} orders as {CUSTOMER}...", args.orders);

    let started = Instant::now();
    let mut api_requests = 0u64;
    let mut accepted_ms = Vec::new();
    let table = local.stack.table_name("OrdersTable").to_owned();
    let ddb = aws_sdk_dynamodb::Client::new(&direct);
    let mut done = 0;
    let mut last_order = String::new();
    while done < args.orders {
        let wave = args.concurrency.min(args.orders - done);
        let mut ids = Vec::new();
        for _ in 0..wave {
            let t = Instant::now();
            ids.push(api.place(CUSTOMER, ITEM.0).await?);
            accepted_ms.push(t.elapsed().as_secs_f64() * 1e3);
            api_requests += 1;
        }
        for id in &ids {
            let order = wait_status(&ddb, &table, id, "DISPATCHED").await?;
            let courier = order["saga"]["courierId"]
                .as_str()
                .ok_or_else(|| format!("order {id} is DISPATCHED without a courier: {order}"))?
                .to_owned();
            api.complete(id, &courier).await?;
            api_requests += 1;
        }
        for id in &ids {
            wait_status(&ddb, &table, id, "DELIVERED").await?;
            last_order.clone_from(id);
        }
        done += wave;
        eprintln!("  {done}/{} delivered", args.orders);
    }
    let delivered_in = started.elapsed();
    eprintln!("waiting for the stack to come to rest (delayed StepTimeouts included)...");
    wait_quiet(
        &local,
        &direct,
        proxy,
        Duration::from_secs(args.step_timeout_secs + 120),
    )
    .await?;
    let counts = proxy.counts();
    let invocations = tally.snapshot();
    let log_bytes = logs.get();
    let report = local
        .checker()
        .check(&CheckOptions::quiescent())
        .await
        .map_err(|e| e.to_string())?;
    if !report.is_clean() {
        return Err(format!("invariants broken after the run:\n{report}"));
    }

    let order_item_bytes = order_item_bytes(&ddb, &table, &last_order).await?;
    let memory_mb = local
        .stack
        .functions
        .values()
        .filter_map(|f| f.env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?.parse().ok())
        .max()
        .unwrap_or(128);
    let measured = Measured {
        command,
        orders: args.orders,
        concurrency: args.concurrency,
        prefix: format!("{prefix}-"),
        delivered_in,
        accepted_ms,
        counts,
        invocations,
        api_requests,
        log_bytes,
        memory_mb,
        order_item_bytes,
    };
    let r = report::build(&measured);
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let md = report::markdown(&r);
    std::fs::write(args.out.join("calls.md"), &md).map_err(|e| e.to_string())?;
    let js = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("calls.json"), js + "\n").map_err(|e| e.to_string())?;
    println!("{md}");
    eprintln!(
        "wrote {} and {}",
        args.out.join("calls.md").display(),
        args.out.join("calls.json").display()
    );
    local.shutdown();
    Ok(())
}

/// Enough stock and money for `orders` orders (through the API: counted, then zeroed).
pub async fn provision_orders(api: &Api, orders: usize) -> Result<(), String> {
    let (item, name, price) = ITEM;
    let stock = orders as i64 + 50;
    let r = api
        .call(
            "PUT",
            &format!("/v1/restaurants/r-1/menu/items/{item}"),
            ("manager-1", "MANAGER"),
            Some(json!({"name": name, "price": {"amount": price, "currency": "EUR"}, "stock": stock})),
        )
        .await?;
    if r.0 != 200 {
        return Err(format!("setting the stock failed: {} {}", r.0, r.1));
    }
    // Funded by ADMIN credits: the benchmark stacks run without the card sandbox, and a
    // top-up is no part of an order's calls.
    let mut needed = orders as i64 * price;
    while needed > 0 {
        let amount = needed.min(payment::requests::MAX_ADMIN_CREDIT);
        let r = api
            .call(
                "POST",
                &format!("/v1/admin/wallets/{CUSTOMER}/credits"),
                ("admin-1", "ADMIN"),
                Some(json!({"amount": {"amount": amount, "currency": "EUR"}, "reason": "benchmark funds"})),
            )
            .await?;
        if !(200..300).contains(&r.0) {
            return Err(format!("funding the wallet failed: {} {}", r.0, r.1));
        }
        needed -= amount;
    }
    Ok(())
}

/// The order item, read directly (not counted); `None` when there is none yet.
async fn read_order(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> Result<Option<dynamo::Item>, String> {
    ddb.get_item()
        .table_name(table)
        .set_key(Some(dynamo::key(keys::order_pk(id), keys::ORDER_SK)))
        .consistent_read(true)
        .send()
        .await
        .map(|out| out.item)
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// Polls the order item (directly, not counted) until its status is `status`; the item
/// as JSON.
async fn wait_status(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    status: &str,
) -> Result<Value, String> {
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::new();
    loop {
        if let Some(item) = read_order(ddb, table, id).await? {
            let v: Value = serde_dynamo::from_item(item).map_err(|e| e.to_string())?;
            last = v["status"].as_str().unwrap_or_default().to_owned();
            if last == status {
                return Ok(v);
            }
            if ["CANCELLED", "COMPENSATION_FAILED"].contains(&last.as_str()) {
                return Err(format!("order {id} ended {last}: not a happy path"));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("order {id} never reached {status} (last {last:?})"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every queue is empty (visible, in flight and delayed) and the functions
/// made no AWS call for two seconds.
async fn wait_quiet(
    local: &LocalStack,
    direct: &aws_config::SdkConfig,
    proxy: &AwsProxy,
    within: Duration,
) -> Result<(), String> {
    let sqs = aws_sdk_sqs::Client::new(direct);
    let deadline = Instant::now() + within;
    let mut last_calls = u64::MAX;
    let mut still_since = Instant::now();
    loop {
        let mut depth = 0u64;
        let mut busy = Vec::new();
        for q in local.stack.queues.values() {
            let n = queue_depth(&sqs, &q.url, &q.logical_id)
                .await
                .map_err(|e| e.to_string())?
                .total() as u64;
            if n > 0 {
                busy.push(format!("{}: {n}", q.logical_id));
            }
            depth += n;
        }
        let calls = proxy.counts().total(Caller::Function);
        if calls != last_calls || depth > 0 {
            last_calls = calls;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_secs(2) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the stack did not come to rest within {within:?} (queued: {})",
                busy.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// DynamoDB size of an order item as stored now (read directly, not counted).
async fn order_item_bytes(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> Result<u64, String> {
    let item = read_order(ddb, table, id).await?.unwrap_or_default();
    let wire: serde_json::Map<String, Value> =
        item.iter().map(|(k, v)| (k.clone(), typed(v))).collect();
    Ok(units::item_size(&wire))
}

/// An attribute value in DynamoDB's JSON wire form, for [`units::item_size`].
fn typed(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(s) => json!({"NS": s}),
        AttributeValue::Bs(s) => {
            json!({"BS": s.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(l) => json!({"L": l.iter().map(typed).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), typed(v))).collect::<serde_json::Map<_, _>>()})
        }
        _ => json!({"NULL": true}),
    }
}
