//! The `dishpatch` command line (clap): parsing, running, printing.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::breaker;
use crate::dlq::{self, RedriveOptions};
use crate::orders::{self, WatchOptions};
use crate::Target;
use crate::{Error, Result};
use dishpatch_invariants::CheckOptions;
use dishpatch_template::Template;

#[derive(Parser, Debug)]
#[command(
    name = "dishpatch",
    version,
    about = "Operator tools for dishpatch: dead-letter queues, order timelines, invariants",
    long_about = "Operator tools for dishpatch. Resources are named by their template.yaml logical ids.\n\n\
Local stack: resources are found by the local naming `{prefix}-{LogicalId}` (--prefix, default \
`dishpatch`) at $AWS_ENDPOINT_URL (or --endpoint).\n\n\
Real AWS: unset AWS_ENDPOINT_URL; profile and region come from the usual AWS environment \
(AWS_PROFILE, AWS_REGION, ...). CloudFormation generates the physical names: --stack NAME looks \
them up (ListStackResources); --queue-url InventoryQueue=URL / --table OrdersTable=NAME name one \
resource and win over the lookup."
)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Local stack name prefix (`{prefix}-{LogicalId}`).
    #[arg(
        long,
        global = true,
        env = "DISHPATCH_PREFIX",
        default_value = "dishpatch"
    )]
    pub prefix: String,
    /// Endpoint (the local emulator). Unset: real AWS from the usual environment.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// Template file (default: the template.yaml embedded at build time).
    #[arg(long, global = true)]
    pub template: Option<PathBuf>,
    /// A deployed CloudFormation stack: physical names come from its resources.
    #[arg(long, global = true, env = "DISHPATCH_STACK")]
    pub stack: Option<String>,
    /// A queue's physical URL, `LogicalId=URL` (repeatable; deployed stacks).
    #[arg(long = "queue-url", global = true, value_parser = parse_pair)]
    pub queue_urls: Vec<(String, String)>,
    /// A table's physical name, `LogicalId=NAME` (repeatable; deployed stacks).
    #[arg(long = "table", global = true, value_parser = parse_pair)]
    pub tables: Vec<(String, String)>,
}

fn parse_pair(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected LogicalId=VALUE, got {s:?}"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Dead-letter queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Orders.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// The invariant checker.
    #[command(subcommand)]
    Invariants(InvariantsCommand),
    /// The payment provider's circuit breaker.
    #[command(subcommand)]
    Breaker(BreakerCommand),
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Every DLQ of the template with its approximate message count and source.
    List,
    /// A DLQ's messages (left in place; reading counts as a receive).
    Show {
        /// The DLQ's logical id, e.g. InventoryQueueDLQ.
        dlq: String,
        #[arg(long, default_value_t = 10)]
        max: usize,
        /// Print each message's body too.
        #[arg(long)]
        body: bool,
    },
    /// Move messages back to the source queue (SendMessage + DeleteMessage).
    ///
    /// Policy: --auto moves only messages redriven fewer than 3 times; beyond that a
    /// manual --id or --all is required.
    Redrive {
        dlq: String,
        /// A message id (repeatable).
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Every message, whatever its redrive count.
        #[arg(long, conflicts_with = "auto")]
        all: bool,
        /// Every message redriven fewer than 3 times.
        #[arg(long)]
        auto: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrdersCommand {
    /// Follow an order's timeline (OrdersTable reads) until it is terminal or Ctrl-C.
    Watch {
        order_id: String,
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Give up after this many seconds.
        #[arg(long)]
        timeout_secs: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum InvariantsCommand {
    /// Scan the tables and check the invariants; exits non-zero on a violation.
    Check {
        /// The stack is at rest: also the cross-record invariants and empty DLQs.
        #[arg(long)]
        quiescent: bool,
        /// Wait up to this many seconds for rest, then check as --quiescent.
        #[arg(long)]
        wait_secs: Option<u64>,
        /// An order known to be alerted on OpsAlertsTopic (repeatable). Default: read the
        /// local stack's alert tap queue, if `dishpatch-local up` created one.
        #[arg(long = "alerted")]
        alerted: Vec<String>,
        /// Initial wallet balance, `customer=minor units` (repeatable), e.g. the demo
        /// data's `alice=10000`: adds `balance == initial - captured` (no top-ups).
        #[arg(long = "initial-balance", value_parser = parse_balance)]
        initial_balances: Vec<(String, i64)>,
    },
}

fn parse_balance(s: &str) -> std::result::Result<(String, i64), String> {
    let (c, b) = s
        .split_once('=')
        .ok_or_else(|| format!("expected customer=amount, got {s:?}"))?;
    let b = b
        .trim()
        .parse()
        .map_err(|e| format!("bad amount in {s:?}: {e}"))?;
    Ok((c.trim().to_owned(), b))
}

#[derive(Subcommand, Debug)]
pub enum BreakerCommand {
    /// The breaker's state per provider: its latest transition in the CloudWatch metrics
    /// (the emulator's, locally), or in a log's EMF lines with --log.
    Status {
        /// A log file of the payment function (EMF lines), `-` for stdin.
        #[arg(long)]
        log: Option<PathBuf>,
        /// How far back to look in the metrics, in minutes.
        #[arg(long, default_value_t = 180)]
        window_minutes: u64,
    },
}

/// The SDK configuration: the emulator when an endpoint is given, else real AWS.
pub async fn target(args: &TargetArgs) -> Result<Target> {
    let template = match &args.template {
        Some(p) => Template::from_path(p)?,
        None => Template::embedded()?,
    };
    let sdk = match &args.endpoint {
        Some(e) if !e.is_empty() => crate::sdk::emulator_config(e).await,
        _ => dishpatch_sdk::sdk_config().await,
    };
    let mut t = Target::new(sdk, Arc::new(template), &args.prefix);
    for (k, v) in &args.queue_urls {
        t = t.with_queue_url(k, v);
    }
    for (k, v) in &args.tables {
        t = t.with_table(k, v);
    }
    match &args.stack {
        Some(stack) => t.with_stack(stack).await,
        None => Ok(t),
    }
}

/// Runs a parsed command, printing to `out`; `Ok(false)` when it found a problem
/// (invariant violations) and the process should exit non-zero.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<bool> {
    // Needs no AWS access (and no SDK configuration).
    if let Command::Breaker(BreakerCommand::Status { log: Some(log), .. }) = &cli.command {
        breaker_status(log, out)?;
        return Ok(true);
    }
    let target = target(&cli.target).await?;
    match cli.command {
        Command::Dlq(DlqCommand::List) => {
            print_list(&dlq::list(&target).await?, out)?;
        }
        Command::Dlq(DlqCommand::Show { dlq, max, body }) => {
            print_letters(&dlq, &dlq::show(&target, &dlq, max).await?, body, out)?;
        }
        Command::Dlq(DlqCommand::Redrive {
            dlq,
            ids,
            all,
            auto,
        }) => {
            let report = dlq::redrive(&target, &dlq, &RedriveOptions { ids, all, auto }).await?;
            print_redrive(&dlq, &report, out)?;
            return Ok(report.not_found.is_empty());
        }
        Command::Orders(OrdersCommand::Watch {
            order_id,
            interval_ms,
            timeout_secs,
        }) => {
            let opts = WatchOptions {
                interval: Duration::from_millis(interval_ms.max(50)),
                timeout: timeout_secs.map(Duration::from_secs),
            };
            writeln!(out, "watching order {order_id} (Ctrl-C to stop)")?;
            let status = tokio::select! {
                r = orders::watch(&target, &order_id, &opts, |e| {
                    let _ = writeln!(out, "{e}");
                    let _ = out.flush();
                }) => r?,
                _ = tokio::signal::ctrl_c() => return Ok(true),
            };
            writeln!(out, "order {order_id} is {status}")?;
        }
        Command::Invariants(InvariantsCommand::Check {
            quiescent,
            wait_secs,
            alerted,
            initial_balances,
        }) => {
            let checker = target.checker().await?;
            let mut opts =
                CheckOptions::default().expect_quiescent(quiescent || wait_secs.is_some());
            if !alerted.is_empty() {
                opts = opts.alerted_orders(alerted);
            }
            if !initial_balances.is_empty() {
                opts = opts.initial_balances(initial_balances);
            }
            let report = match wait_secs {
                Some(s) => {
                    checker
                        .check_at_quiescence(&opts, Duration::from_secs(s))
                        .await?
                }
                None => checker.check(&opts).await?,
            };
            let name = cli.target.stack.as_deref().unwrap_or(&target.prefix);
            writeln!(out, "invariants of stack {name:?}")?;
            write!(out, "{report}")?;
            return Ok(report.is_clean());
        }
        Command::Breaker(BreakerCommand::Status { window_minutes, .. }) => {
            let window = Duration::from_secs(window_minutes.max(1) * 60);
            let status = breaker::status(&target, window).await?;
            if status.is_empty() {
                writeln!(
                    out,
                    "no breaker metrics in namespace {}: every breaker is CLOSED (its initial state)",
                    dishpatch_core::metrics::METRICS_NAMESPACE
                )?;
            }
            for s in status {
                writeln!(out, "{s}")?;
            }
        }
    }
    Ok(true)
}

pub fn print_list(list: &[dlq::DlqStatus], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<24} {:>8} {:>9}  SOURCE",
        "DLQ", "MESSAGES", "IN-FLIGHT"
    )?;
    for d in list {
        match &d.error {
            Some(e) => writeln!(
                out,
                "{:<24} {:>8} {:>9}  {}  ({e})",
                d.logical_id, "?", "?", d.source
            )?,
            None => writeln!(
                out,
                "{:<24} {:>8} {:>9}  {}",
                d.logical_id, d.visible, d.in_flight, d.source
            )?,
        }
    }
    Ok(())
}

pub fn print_letters(
    dlq: &str,
    letters: &[dlq::DeadLetter],
    body: bool,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(out, "{dlq}: {} message(s) read", letters.len())?;
    for l in letters {
        writeln!(out, "- id:        {}", l.message_id)?;
        writeln!(
            out,
            "  received:  {} time(s) (this read included), redriven {} time(s)",
            l.receive_count, l.redrives
        )?;
        writeln!(out, "  sent:      {}", l.sent_at.as_deref().unwrap_or("?"))?;
        writeln!(out, "  type:      {}", l.kind.as_deref().unwrap_or("?"))?;
        writeln!(out, "  orderId:   {}", l.order_id.as_deref().unwrap_or("?"))?;
        if let Some(code) = &l.code {
            writeln!(out, "  code:      {code}")?;
        }
        match &l.reason {
            Some(r) => writeln!(out, "  reason:    {r}")?,
            None => writeln!(
                out,
                "  reason:    not recorded: the handler failed; search its logs for message_id"
            )?,
        }
        if body {
            writeln!(out, "  body:      {}", l.body)?;
        }
    }
    Ok(())
}

pub fn print_redrive(dlq: &str, r: &dlq::RedriveReport, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{dlq}: moved {} message(s)", r.moved.len())?;
    for m in &r.moved {
        writeln!(
            out,
            "  moved   {} -> {} as {} (type {}, order {}, redrive #{})",
            m.message_id,
            m.to,
            m.new_message_id,
            m.kind.as_deref().unwrap_or("?"),
            m.order_id.as_deref().unwrap_or("?"),
            m.redrives
        )?;
    }
    for (id, why) in &r.skipped {
        writeln!(out, "  kept    {id}: {why}")?;
    }
    for id in &r.not_found {
        writeln!(out, "  missing {id}: not in the queue")?;
    }
    Ok(())
}

/// The last breaker transition per provider, from EMF lines (`BreakerOpened`...).
pub fn breaker_transitions(lines: impl Iterator<Item = String>) -> BTreeMap<String, Value> {
    let mut last = BTreeMap::new();
    for line in lines {
        let Some(start) = line.find('{') else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else {
            continue;
        };
        if v.get("_aws").is_none() {
            continue;
        }
        if let (Some(p), Some(_)) = (
            v.get("Provider").and_then(Value::as_str),
            v.get("to").and_then(Value::as_str),
        ) {
            last.insert(p.to_owned(), v.clone());
        }
    }
    last
}

fn breaker_status(log: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let lines: Vec<String> = if log.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(|l| l.ok())
            .collect()
    } else {
        std::fs::read_to_string(log)
            .map_err(Error::Io)?
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let last = breaker_transitions(lines.into_iter());
    if last.is_empty() {
        writeln!(
            out,
            "no breaker transition in the log: every breaker is CLOSED (its initial state)"
        )?;
    }
    for (p, v) in last {
        let at = v
            .pointer("/_aws/Timestamp")
            .and_then(Value::as_i64)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        writeln!(
            out,
            "{p}: {} since {at} (from {}; {} failures of {} calls; {} transitions)",
            v["to"].as_str().unwrap_or("?"),
            v["from"].as_str().unwrap_or("?"),
            v["failures"],
            v["calls"],
            v["transitions"],
        )?;
    }
    Ok(())
}

/// The binary's `main`: parse, run, exit code.
pub async fn main() -> std::process::ExitCode {
    dishpatch_sdk::logging::init();
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dishpatch: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
