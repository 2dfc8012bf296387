//! Per-order figures and cost per million orders from one run's counts, as Markdown and
//! JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use dishpatch_local::awsproxy::{CallCounts, Caller};
use serde::Serialize;

use crate::metering::Invocations;
use crate::prices::{self, Price};

/// What a run measured.
pub struct Measured {
    pub command: String,
    pub orders: usize,
    pub concurrency: usize,
    /// Physical name prefix (`bench-xxxx-`), stripped from table names.
    pub prefix: String,
    pub delivered_in: Duration,
    pub accepted_ms: Vec<f64>,
    pub counts: CallCounts,
    pub invocations: BTreeMap<String, Invocations>,
    pub api_requests: u64,
    pub log_bytes: u64,
    pub memory_mb: u64,
    pub order_item_bytes: u64,
}

/// Assumed AWS latency of one SDK call inside a Lambda function, and compute per
/// invocation, for the stated duration estimate.
const STATED_MS_PER_CALL: f64 = 10.0;
const STATED_MS_PER_INVOCATION: f64 = 3.0;
/// Lambda's START, END and REPORT lines per invocation (not produced locally).
const PLATFORM_LOG_BYTES: f64 = 300.0;
/// Targets from the issue.
const TARGET_WRU: f64 = 20.0;
const TARGET_USD_PER_MILLION: f64 = 20.0;

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub date: String,
    pub machine: String,
    pub orders: usize,
    pub concurrency: usize,
    pub lambda_memory_mb: u64,
    pub seconds_to_deliver_all: f64,
    pub accepted_ms_median: f64,
    pub function_calls: Vec<CallRow>,
    pub event_source_calls: Vec<CallRow>,
    pub event_source_empty_receives_per_order: f64,
    pub dynamodb: Dynamo,
    pub lambda: Vec<LambdaRow>,
    pub billed_per_order: Billed,
    pub cost: Vec<CostRow>,
    pub usd_per_million_orders: f64,
    pub prices: Vec<Price>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize)]
pub struct CallRow {
    pub service: String,
    pub action: String,
    pub total: u64,
    pub per_order: f64,
}

#[derive(Debug, Serialize)]
pub struct Dynamo {
    pub wru_per_order: f64,
    pub table_wru_per_order: f64,
    pub index_wru_per_order: f64,
    pub rru_per_order: f64,
    pub tables: Vec<TableRow>,
    /// Write units (table and index) per order by API action.
    pub writes_by_action: BTreeMap<String, f64>,
    /// Bytes of one order item once DELIVERED (DynamoDB sizing).
    pub order_item_bytes: u64,
    /// Where the write units go: each kind of write, per order.
    pub writes: Vec<WriteRow>,
}

/// One kind of write (table, item, action) per order: how many, their mean and largest
/// size, and their units (table and index).
#[derive(Debug, Serialize)]
pub struct WriteRow {
    pub table: String,
    pub item: String,
    pub action: String,
    pub writes_per_order: f64,
    pub mean_bytes: u64,
    pub max_bytes: u64,
    pub wru_per_order: f64,
    pub index_wru_per_order: f64,
}

#[derive(Debug, Serialize)]
pub struct TableRow {
    pub table: String,
    pub wru_per_order: f64,
    pub index_wru_per_order: f64,
    pub rru_per_order: f64,
}

#[derive(Debug, Serialize)]
pub struct LambdaRow {
    pub function: String,
    pub invocations_per_order: f64,
    pub mean_local_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Billed {
    pub dynamodb_wru: f64,
    pub dynamodb_rru: f64,
    pub sqs_requests_by_functions: f64,
    pub sqs_requests_by_pollers: f64,
    pub sns_publishes: f64,
    pub sns_to_sqs_deliveries: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds_measured: f64,
    pub lambda_gb_seconds_stated: f64,
    pub http_api_requests: f64,
    pub log_bytes_measured: f64,
    pub log_bytes_with_platform_lines: f64,
}

#[derive(Debug, Serialize)]
pub struct CostRow {
    pub item: String,
    pub per_order: f64,
    pub unit: String,
    pub usd_per_million_orders: f64,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub target: String,
    pub actual: String,
    pub met: bool,
}

pub fn build(m: &Measured) -> Report {
    let n = m.orders as f64;
    let c = &m.counts;
    let rows = |caller: Caller| -> Vec<CallRow> {
        c.calls
            .iter()
            .filter(|(k, _)| k.caller == caller)
            .map(|(k, total)| CallRow {
                service: k.service.clone(),
                action: k.action.clone(),
                total: *total,
                per_order: *total as f64 / n,
            })
            .collect()
    };
    let function_calls = rows(Caller::Function);
    let event_source_calls = rows(Caller::EventSource);

    let table_name = |t: &str| t.strip_prefix(&m.prefix).unwrap_or(t).to_owned();
    let tables = c
        .dynamodb
        .tables
        .iter()
        .map(|(t, u)| TableRow {
            table: table_name(t),
            wru_per_order: (u.write + u.index_write) / n,
            index_wru_per_order: u.index_write / n,
            rru_per_order: u.read / n,
        })
        .collect();
    let dynamodb = Dynamo {
        wru_per_order: c.dynamodb.write_units() / n,
        table_wru_per_order: (c.dynamodb.write_units() - c.dynamodb.index_write_units()) / n,
        index_wru_per_order: c.dynamodb.index_write_units() / n,
        rru_per_order: c.dynamodb.read_units() / n,
        tables,
        writes_by_action: c
            .dynamodb
            .writes_by_action
            .iter()
            .map(|(a, u)| (a.clone(), u / n))
            .collect(),
        order_item_bytes: m.order_item_bytes,
        writes: c
            .dynamodb
            .writes
            .iter()
            .map(|(k, w)| WriteRow {
                table: table_name(&k.table),
                item: k.item.clone(),
                action: k.action.clone(),
                writes_per_order: w.count as f64 / n,
                mean_bytes: w.bytes / w.count.max(1),
                max_bytes: w.max_bytes,
                wru_per_order: (w.write + w.index_write) / n,
                index_wru_per_order: w.index_write / n,
            })
            .collect(),
    };

    let invocations: u64 = m.invocations.values().map(|i| i.count).sum();
    let busy_ms: f64 = m
        .invocations
        .values()
        .map(|i| i.busy.as_secs_f64() * 1e3 + i.count as f64 * 0.5)
        .sum();
    let lambda = m
        .invocations
        .iter()
        .map(|(f, i)| LambdaRow {
            function: f.clone(),
            invocations_per_order: i.count as f64 / n,
            mean_local_ms: if i.count == 0 {
                0.0
            } else {
                i.busy.as_secs_f64() * 1e3 / i.count as f64
            },
        })
        .collect();
    let gb = m.memory_mb as f64 / 1024.0;
    let function_calls_total = c.total(Caller::Function) as f64;
    let stated_ms =
        function_calls_total * STATED_MS_PER_CALL + invocations as f64 * STATED_MS_PER_INVOCATION;

    // SQS as billed: the functions' requests (64 KB chunks) and the Lambda pollers'
    // receives that returned messages plus their deletes; idle empty receives are a
    // fixed cost per queue, not per order.
    let es = |action: &str| c.count(Caller::EventSource, "sqs", action) as f64;
    let empty = *c.empty_receives.get(&Caller::EventSource).unwrap_or(&0) as f64;
    let poller_sqs = es("ReceiveMessage") - empty
        + es("DeleteMessageBatch")
        + es("DeleteMessage")
        + es("ChangeMessageVisibilityBatch");
    let chunks = |caller: Caller, svc: &str| {
        *c.billed_chunks.get(&(caller, svc.to_owned())).unwrap_or(&0) as f64
    };
    let billed = Billed {
        dynamodb_wru: c.dynamodb.write_units() / n,
        dynamodb_rru: c.dynamodb.read_units() / n,
        sqs_requests_by_functions: chunks(Caller::Function, "sqs") / n,
        sqs_requests_by_pollers: poller_sqs / n,
        sns_publishes: chunks(Caller::Function, "sns") / n,
        sns_to_sqs_deliveries: 0.0,
        lambda_invocations: invocations as f64 / n,
        lambda_gb_seconds_measured: busy_ms / 1e3 * gb / n,
        lambda_gb_seconds_stated: stated_ms / 1e3 * gb / n,
        http_api_requests: m.api_requests as f64 / n,
        log_bytes_measured: m.log_bytes as f64 / n,
        log_bytes_with_platform_lines: (m.log_bytes as f64
            + invocations as f64 * PLATFORM_LOG_BYTES)
            / n,
    };
    // The stated estimate: local handler times are dominated by the single-threaded
    // emulator and the proxy's metering reads, not by what the code costs in AWS.
    let gb_seconds = billed.lambda_gb_seconds_stated;
    let per_million = |qty: f64, p: Price| -> f64 {
        match p.per {
            "GB-second" | "GB" => qty * p.usd * 1e6,
            _ => qty * p.usd,
        }
    };
    let row = |item: &str, qty: f64, unit: &str, p: Price| CostRow {
        item: item.to_owned(),
        per_order: qty,
        unit: unit.to_owned(),
        usd_per_million_orders: per_million(qty, p),
    };
    let log_kb = billed.log_bytes_with_platform_lines / 1024.0;
    let cost = vec![
        row(
            "DynamoDB writes",
            billed.dynamodb_wru,
            "WRU",
            prices::DYNAMODB_WRITE,
        ),
        row(
            "DynamoDB reads",
            billed.dynamodb_rru,
            "RRU",
            prices::DYNAMODB_READ,
        ),
        row(
            "SQS requests (functions)",
            billed.sqs_requests_by_functions,
            "requests",
            prices::SQS_REQUEST,
        ),
        row(
            "SQS requests (Lambda pollers: non-empty receives, deletes)",
            billed.sqs_requests_by_pollers,
            "requests",
            prices::SQS_REQUEST,
        ),
        row(
            "SNS publishes",
            billed.sns_publishes,
            "publishes",
            prices::SNS_PUBLISH,
        ),
        row(
            "Lambda requests",
            billed.lambda_invocations,
            "invocations",
            prices::LAMBDA_REQUEST,
        ),
        row(
            "Lambda duration (stated estimate, arm64)",
            gb_seconds,
            "GB-s",
            prices::LAMBDA_ARM_GB_SECOND,
        ),
        row(
            "HTTP API requests",
            billed.http_api_requests,
            "requests",
            prices::HTTP_API_REQUEST,
        ),
        CostRow {
            item: "CloudWatch Logs ingestion".into(),
            per_order: log_kb,
            unit: "KB".into(),
            usd_per_million_orders: per_million(
                log_kb / (1u64 << 20) as f64,
                prices::LOGS_INGESTION,
            ),
        },
    ];
    let total: f64 = cost.iter().map(|r| r.usd_per_million_orders).sum();
    let mut accepted = m.accepted_ms.clone();
    accepted.sort_by(f64::total_cmp);
    let median = accepted.get(accepted.len() / 2).copied().unwrap_or(0.0);
    let targets = vec![
        Target {
            name: "DynamoDB write units per happy-path order".into(),
            target: format!("<= {TARGET_WRU}"),
            actual: format!("{:.1}", dynamodb.wru_per_order),
            met: dynamodb.wru_per_order <= TARGET_WRU,
        },
        Target {
            name: "cost per million happy-path orders, all services".into(),
            target: format!("<= ${TARGET_USD_PER_MILLION:.2}"),
            actual: format!("${total:.2}"),
            met: total <= TARGET_USD_PER_MILLION,
        },
    ];
    Report {
        command: m.command.clone(),
        date: chrono::Utc::now()
            .format("%a %b %e %H:%M:%S UTC %Y")
            .to_string(),
        machine: machine(),
        orders: m.orders,
        concurrency: m.concurrency,
        lambda_memory_mb: m.memory_mb,
        seconds_to_deliver_all: m.delivered_in.as_secs_f64(),
        accepted_ms_median: median,
        function_calls,
        event_source_calls,
        event_source_empty_receives_per_order: empty / n,
        dynamodb,
        lambda,
        billed_per_order: billed,
        cost,
        usd_per_million_orders: total,
        prices: prices::ALL.to_vec(),
        targets,
    }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "{cores} cores ({cpu}), {mem_gb:.1} GiB RAM, {} {}; emulator: {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        dishpatch_emulator::Emulator::from_env().name()
    )
}

fn fmt(x: f64) -> String {
    if x == x.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let b = &r.billed_per_order;
    let _ = writeln!(o, "# AWS calls and cost per order\n");
    let _ = writeln!(o, "`{}` — {} — {}\n", r.command, r.date, r.machine);
    let _ = writeln!(
        o,
        "{} happy-path wallet orders (one item, paid from the wallet, delivered by a courier), \
         {} in flight at a time, all DELIVERED in {:.1} s (median POST /v1/orders {:.0} ms on \
         the local stack). Every figure is per order: the run's totals divided by {}. The \
         stack was at rest before the counters were zeroed and after the last order, the \
         delayed StepTimeout messages included, and the invariant checker found nothing.\n",
        r.orders, r.concurrency, r.seconds_to_deliver_all, r.accepted_ms_median, r.orders
    );
    let _ = writeln!(
        o,
        "Reproduce: `endpoint=$(scripts/emulator 0)` then `AWS_ENDPOINT_URL=$endpoint cargo run -p \
         dishpatch-local --bin dishpatch-bench -- calls --orders {}` (writes \
         `bench/results/calls.md` and `calls.json`).\n",
        r.orders
    );
    let _ = writeln!(o, "## Targets\n");
    table(
        &mut o,
        &["target", "goal", "measured", "met"],
        r.targets.iter().map(|t| {
            let met = if t.met { "yes" } else { "**no**" };
            vec![
                t.name.clone(),
                t.target.clone(),
                t.actual.clone(),
                met.into(),
            ]
        }),
    );
    analysis(&mut o, r);
    let _ = writeln!(o, "\n## Cost per million orders (us-east-1, on demand)\n");
    table(
        &mut o,
        &["item", "per order", "unit", "USD per million orders"],
        r.cost.iter().map(|c| {
            let usd = format!("{:.2}", c.usd_per_million_orders);
            vec![c.item.clone(), fmt(c.per_order), c.unit.clone(), usd]
        }),
    );
    let _ = writeln!(o, "| **total** | | | **{:.2}** |", r.usd_per_million_orders);
    let _ = writeln!(o, "\n## Calls by the functions, per order\n");
    calls_table(&mut o, &r.function_calls);
    let mut by_service: BTreeMap<&str, f64> = BTreeMap::new();
    for c in &r.function_calls {
        *by_service.entry(&c.service).or_default() += c.per_order;
    }
    let total: f64 = by_service.values().sum();
    let services: Vec<String> = by_service
        .iter()
        .map(|(s, n)| format!("{s} {}", fmt(*n)))
        .collect();
    let _ = writeln!(
        o,
        "\n{} calls per order by the functions: {}.\n",
        fmt(total),
        services.join(", ")
    );
    let _ = writeln!(o, "## Calls by the Lambda service's pollers, per order\n");
    let _ = writeln!(
        o,
        "In AWS the event-source mappings' calls are made by Lambda, not by our code. Lambda's \
         SQS pollers are billed to the account as SQS requests: the receives that return \
         messages and the deletes are counted per order below (they depend on batching: \
         locally, at this load, most batches hold one message); the empty receives of idle \
         long polling are a fixed cost per queue, not per order, and left out ({} empty \
         short-poll receives per order here, an artefact of the local poller). DynamoDB \
         Streams reads by Lambda triggers are free.\n",
        fmt(r.event_source_empty_receives_per_order)
    );
    calls_table(&mut o, &r.event_source_calls);
    let d = &r.dynamodb;
    let _ = writeln!(o, "\n## DynamoDB request units, per order\n");
    let _ = writeln!(
        o,
        "{} WRU ({} on tables, {} on global secondary indexes) and {} RRU, metered by the \
         AWS proxy from the items actually written and read (see `local/src/awsproxy.rs`).\n",
        fmt(d.wru_per_order),
        fmt(d.table_wru_per_order),
        fmt(d.index_wru_per_order),
        fmt(d.rru_per_order)
    );
    table(
        &mut o,
        &["table", "WRU", "of which GSI", "RRU"],
        d.tables.iter().map(|t| {
            let units = [t.wru_per_order, t.index_wru_per_order, t.rru_per_order];
            [t.table.clone()]
                .into_iter()
                .chain(units.map(fmt))
                .collect()
        }),
    );
    o.push('\n');
    table(
        &mut o,
        &["API action", "WRU (table and index)"],
        d.writes_by_action
            .iter()
            .map(|(a, u)| vec![a.clone(), fmt(*u)]),
    );
    let _ = writeln!(
        o,
        "\nEach write, per order: the item (its key up to the first `#`), the action (a \
         transaction's actions one by one), the bytes it is charged on (the larger of the \
         item before and after) and its units, table and index.\n"
    );
    table(
        &mut o,
        &[
            "table",
            "item",
            "action",
            "writes",
            "mean bytes",
            "max bytes",
            "WRU",
            "of which GSI",
        ],
        d.writes.iter().map(|w| {
            vec![
                w.table.clone(),
                w.item.clone(),
                w.action.clone(),
                fmt(w.writes_per_order),
                w.mean_bytes.to_string(),
                w.max_bytes.to_string(),
                fmt(w.wru_per_order),
                fmt(w.index_wru_per_order),
            ]
        }),
    );
    let _ = writeln!(o, "\n## Lambda invocations, per order\n");
    let _ = writeln!(
        o,
        "One invocation per HTTP request, SQS message and stream record: at low load Lambda \
         delivers batches of one, so this is the upper bound (at load, batches of up to 10 \
         share an invocation). Local handler times run against moto through the metering \
         proxy and are only indicative.\n"
    );
    table(
        &mut o,
        &["function", "invocations", "mean local ms"],
        r.lambda.iter().map(|l| {
            let ms = format!("{:.1}", l.mean_local_ms);
            vec![l.function.clone(), fmt(l.invocations_per_order), ms]
        }),
    );
    let _ = writeln!(o, "\n## Billed quantities, per order\n");
    let _ = writeln!(
        o,
        "| quantity | per order |\n|---|---|\n\
         | DynamoDB WRU | {} |\n| DynamoDB RRU | {} |\n\
         | SQS requests by the functions (64 KB chunks) | {} |\n\
         | SQS requests by Lambda's pollers (non-empty receives, deletes) | {} |\n\
         | SNS publishes (64 KB chunks) | {} |\n| SNS deliveries to SQS (free) | — |\n\
         | Lambda invocations | {} |\n\
         | Lambda GB-s, measured locally ({} MB) | {:.5} |\n\
         | Lambda GB-s, stated ({} ms per AWS call + {} ms per invocation) | {:.5} |\n\
         | API Gateway HTTP API requests | {} |\n\
         | log bytes, measured (application JSON lines) | {:.0} |\n\
         | log bytes with Lambda's START/END/REPORT lines (~{} B per invocation, estimated) | {:.0} |",
        fmt(b.dynamodb_wru),
        fmt(b.dynamodb_rru),
        fmt(b.sqs_requests_by_functions),
        fmt(b.sqs_requests_by_pollers),
        fmt(b.sns_publishes),
        fmt(b.lambda_invocations),
        r.lambda_memory_mb,
        b.lambda_gb_seconds_measured,
        STATED_MS_PER_CALL,
        STATED_MS_PER_INVOCATION,
        b.lambda_gb_seconds_stated,
        fmt(b.http_api_requests),
        b.log_bytes_measured,
        PLATFORM_LOG_BYTES,
        b.log_bytes_with_platform_lines,
    );
    let _ = writeln!(o, "\n## Prices used\n");
    table(
        &mut o,
        &["item", "USD", "per", "source"],
        r.prices.iter().map(|p| {
            vec![
                p.item.into(),
                p.usd.to_string(),
                p.per.into(),
                p.source.into(),
            ]
        }),
    );
    o
}

/// A Markdown table: the header, its rule, one line per row.
fn table(o: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(o, "| {} |", header.join(" | "));
    let _ = writeln!(o, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(o, "| {} |", row.join(" | "));
    }
}

/// Calls per order by service and action.
fn calls_table(o: &mut String, calls: &[CallRow]) {
    table(
        o,
        &["service", "action", "per order"],
        calls
            .iter()
            .map(|c| vec![c.service.clone(), c.action.clone(), fmt(c.per_order)]),
    );
}

/// What dominates and what meeting the targets would take, from the figures.
fn analysis(o: &mut String, r: &Report) {
    let d = &r.dynamodb;
    let mut costs: Vec<&CostRow> = r.cost.iter().collect();
    costs.sort_by(|a, b| {
        b.usd_per_million_orders
            .total_cmp(&a.usd_per_million_orders)
    });
    let share = |c: &CostRow| 100.0 * c.usd_per_million_orders / r.usd_per_million_orders.max(1e-9);
    let _ = writeln!(o, "\n## What dominates\n");
    let top: Vec<String> = costs
        .iter()
        .take(4)
        .map(|c| {
            format!(
                "{} ${:.2} ({:.0} %)",
                c.item,
                c.usd_per_million_orders,
                share(c)
            )
        })
        .collect();
    let _ = writeln!(o, "Cost: {}.\n", top.join("; "));
    let mut tables: Vec<&TableRow> = d.tables.iter().collect();
    tables.sort_by(|a, b| b.wru_per_order.total_cmp(&a.wru_per_order));
    let t: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "{} {} ({} on indexes)",
                t.table,
                fmt(t.wru_per_order),
                fmt(t.index_wru_per_order)
            )
        })
        .collect();
    let _ = writeln!(o, "Write units: {}.", t.join(", "));
    let tx = d
        .writes_by_action
        .get("TransactWriteItems")
        .copied()
        .unwrap_or(0.0);
    let item_units = d.order_item_bytes.div_ceil(1024).max(1);
    let _ = writeln!(
        o,
        "Transactions (two units per KB per item, condition checks included) account for {} \
         WRU; an order item is {} bytes once DELIVERED (its timeline and the outbox of its \
         latest write ride in it), so a late write of it costs {} unit{}.\n",
        fmt(tx),
        d.order_item_bytes,
        item_units,
        if item_units == 1 { "" } else { "s" }
    );
    let _ = writeln!(o, "## What it would take\n");
    let gap_wru = d.wru_per_order - TARGET_WRU;
    let gap_usd = r.usd_per_million_orders - TARGET_USD_PER_MILLION;
    if gap_wru > 0.0 {
        let _ = writeln!(
            o,
            "* **{} fewer WRU per order.** The transactions alone ({} WRU) are above the \
             target: each step that moves stock, money or a courier writes its record and \
             what it moves in one TransactWriteItems, at two units per item. The order item \
             already fits one unit per write, its overdue index entry is written once, and \
             stock is sold once, at reservation. Per step, the fewest units this model can \
             reach with every guarantee kept is about 27 (docs/architecture.md, 4.12, \
             \"What 20 would take\"): the payment and its ledger entry inside the wallet \
             (about -4) and the courier's completion as one write (about -3); the rest \
             would take dropping a guarantee or a feature (once-only customer messages, \
             orchestration, the restaurant's list).",
            fmt(gap_wru),
            fmt(tx)
        );
    }
    if gap_usd > 0.0 {
        let _ = writeln!(
            o,
            "* **${gap_usd:.2} less per million orders.** DynamoDB writes are the largest \
             line; then fewer messages per order (each fact is an SNS publish plus an SQS \
             receive and delete by Lambda's poller per subscribed queue, each command an SQS \
             send, receive and delete and a Lambda invocation; larger batches at load share \
             receives, deletes and invocations), and fewer log bytes per invocation (log \
             at info only what an operator reads; set the log group class to Infrequent \
             Access or sample)."
        );
    }
    if gap_wru <= 0.0 && gap_usd <= 0.0 {
        let _ = writeln!(o, "Both targets are met.");
    }
}
