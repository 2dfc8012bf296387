//! `dishpatch-bench load`: orders per second through the whole saga at several offered
//! loads, latency percentiles, and how close that comes to what the emulator allows.
//!
//! 1. The emulator's own ceiling, before the stack starts and again after it stops:
//!    raw `PutItem`, `SendMessage` and `Publish` per second from the SDK (four callers at
//!    once) on fresh resources; the mean of the two is used.
//! 2. One local stack, the AWS proxy counting calls (no metering, no faults), extra
//!    couriers written straight to the table so delivery never runs out of them.
//! 3. Per offered load: orders arrive open-loop at that rate for `--duration-secs`; each is
//!    placed over the API (accepted latency), its DISPATCHED and DELIVERED moments are
//!    taken from the saga as it handles `DeliveryDispatched` / `DeliveryCompleted` (a
//!    wrapper: no polling load on the emulator), and its courier completes it over the
//!    API at once. Throughput is the delivered orders over the span of the deliveries
//!    (plus one arrival interval).
//! 4. The ceiling for our mix: with `c_s` calls per order to service `s` (functions and
//!    pollers, measured at the peak) and `r_s` the emulator's rate for it, it allows
//!    `1 / sum(c_s / r_s)` orders per second; our peak as a fraction of that is the
//!    efficiency (target >= 70 %). Then a run at half the peak gives the p99 accepted
//!    latency there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use clap::Args as ClapArgs;
use dishpatch::envelope::{Envelope, MessageType};
use dishpatch::keys;
use dishpatch::runtime::{Function, MessageError};
use dishpatch_local::awsproxy::{AwsProxyConfig, Caller};
use dishpatch_local::{sdk, testing, LocalStack, LocalStackOptions};
use indicatif::{ProgressBar, ProgressStyle};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::Api;
use crate::plot;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Offered loads, orders per second.
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2,3,4")]
    rates: Vec<f64>,
    /// How long orders arrive at each load.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Couriers written to the delivery table before the run.
    #[arg(long, default_value_t = 300)]
    couriers: usize,
    /// Emulator endpoint. Default: $AWS_ENDPOINT_URL, else http://127.0.0.1:5000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// Emulators to compare in this run (`moto`, `ministack`, `dynoxide+fauxqs`), each
    /// started by the bench, one after the other: a report per emulator
    /// (`load-<name>.md`) and the comparison (`load-emulators.md`). Without it, the
    /// one at the endpoint.
    #[arg(long, value_delimiter = ',')]
    emulators: Vec<String>,
    /// Backpressure: at most this many orders in flight (placed, not yet delivered); an
    /// arrival beyond it waits for one to finish before it is placed, as a client that
    /// bounds its outstanding work does. 0: open loop, every arrival placed on time.
    #[arg(long, default_value_t = 16)]
    max_in_flight: usize,
    /// Where load.md, load.json and the PNG plots go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

const CUSTOMER: &str = "alice";
/// How long an order may take to be delivered before it counts as lost to the load.
const ORDER_DEADLINE: Duration = Duration::from_secs(120);

/// What the saga wrapper reports.
enum Milestone {
    Dispatched { order: String, courier: String },
    Delivered { order: String },
}

/// Serves order-saga and reports each order's DISPATCHED and DELIVERED moments.
struct Watch {
    inner: Arc<dyn Function>,
    tx: mpsc::UnboundedSender<(Milestone, Instant)>,
}

#[async_trait::async_trait]
impl Function for Watch {
    async fn http(&self, req: Request) -> Response<Body> {
        self.inner.http(req).await
    }
    async fn message(&self, envelope: Envelope, kind: MessageType) -> Result<(), MessageError> {
        let order = envelope.order_id.clone();
        let courier = envelope.data["courierId"].as_str().map(str::to_owned);
        let r = self.inner.message(envelope, kind).await;
        if r.is_ok() {
            let m = match (kind, courier) {
                (MessageType::DeliveryDispatched, Some(courier)) => {
                    Some(Milestone::Dispatched { order, courier })
                }
                (MessageType::DeliveryCompleted, _) => Some(Milestone::Delivered { order }),
                _ => None,
            };
            if let Some(m) = m {
                let _ = self.tx.send((m, Instant::now()));
            }
        }
        r
    }
    async fn stream_record(
        &self,
        record: &aws_lambda_events::dynamodb::EventRecord,
    ) -> Result<(), MessageError> {
        self.inner.stream_record(record).await
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub put_item_per_s: f64,
    pub send_message_per_s: f64,
    pub publish_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub offered_per_s: f64,
    /// How long arrivals waited for a free slot before they were placed (backpressure).
    pub admission_wait_ms: Percentiles,
    pub placed: usize,
    pub rejected: usize,
    pub delivered: usize,
    pub achieved_per_s: f64,
    pub accepted_ms: Percentiles,
    pub dispatched_ms: Percentiles,
    /// Calls per delivered order at this load: DynamoDB (incl. streams), SQS, SNS.
    pub calls_per_order: CallsPerOrder,
    /// The emulator's own account of the level (`local/moto_serial.py`); `None` when
    /// the emulator does not keep one.
    pub emulator: Option<EmulatorBusy>,
    #[serde(skip)]
    pub accepted_samples: Vec<f64>,
    #[serde(skip)]
    pub dispatched_samples: Vec<f64>,
}

/// Time the emulator spent serving calls during a level, measured inside it.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatorBusy {
    /// Busy time over the level's wall time (placing until the last order is done).
    pub busy_share: f64,
    /// Busy milliseconds per delivered order.
    pub ms_per_order: f64,
    /// Per kind of call (`service.Action`): calls and busy ms per order, most first.
    pub by_call: Vec<(String, f64, f64)>,
}

/// `service.Action` -> (calls, busy seconds) since the emulator started.
type BusyTotals = std::collections::BTreeMap<String, (u64, f64)>;

async fn emulator_busy(endpoint: &str) -> Option<BusyTotals> {
    let url = format!("{}/_dishpatch/busy", endpoint.trim_end_matches('/'));
    let resp = reqwest::get(url).await.ok()?.error_for_status().ok()?;
    resp.json().await.ok()
}

fn busy_between(
    before: &BusyTotals,
    after: &BusyTotals,
    wall: Duration,
    orders: usize,
) -> EmulatorBusy {
    let per = orders.max(1) as f64;
    let mut by_call: Vec<(String, f64, f64)> = after
        .iter()
        .map(|(k, (n, secs))| {
            let (n0, s0) = before.get(k).copied().unwrap_or_default();
            (k.clone(), (n - n0) as f64 / per, (secs - s0) * 1e3 / per)
        })
        .filter(|(_, n, _)| *n > 0.0)
        .collect();
    by_call.sort_by(|a, b| b.2.total_cmp(&a.2));
    let ms: f64 = by_call.iter().map(|c| c.2).sum();
    EmulatorBusy {
        busy_share: ms * per / 1e3 / wall.as_secs_f64().max(1e-3),
        ms_per_order: ms,
        by_call,
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CallsPerOrder {
    pub dynamodb: f64,
    pub sqs: f64,
    pub sns: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn percentiles(v: &[f64]) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: s[s.len() - 1],
    }
}

#[derive(Debug, Serialize)]
struct LoadReport {
    /// The emulator's `DISHPATCH_EMULATOR` name, or "at the endpoint".
    emulator: String,
    max_in_flight: usize,
    command: String,
    date: String,
    machine: String,
    duration_secs: u64,
    /// The mean of `ceiling_before` and `ceiling_after`.
    ceiling: Ceiling,
    ceiling_before: Ceiling,
    ceiling_after: Ceiling,
    levels: Vec<Level>,
    peak_per_s: f64,
    allowed_per_s: f64,
    efficiency: f64,
    half_peak: Level,
}

pub async fn run(args: Args) -> Result<(), String> {
    let mut command = format!(
        "dishpatch-bench load --rates {} --duration-secs {} --couriers {} --max-in-flight {}",
        args.rates
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(","),
        args.duration_secs,
        args.couriers,
        args.max_in_flight,
    );
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    if args.emulators.is_empty() {
        let endpoint = sdk::endpoint(args.endpoint.as_deref());
        let report = measure(&args, &command, &endpoint, "at the endpoint").await?;
        let md = write_report(&args.out, "load", &report)?;
        println!("{md}");
        return Ok(());
    }
    command.push_str(&format!(" --emulators {}", args.emulators.join(",")));
    let mut reports = Vec::new();
    for name in &args.emulators {
        let emulator = dishpatch_emulator::Emulator::parse(name)?;
        eprintln!("== {name}");
        let endpoint = tokio::task::spawn_blocking(move || dishpatch_emulator::start(emulator, 0))
            .await
            .map_err(|e| format!("starting {name}: {e}"))?;
        let report = measure(&args, &command, &endpoint, name).await;
        dishpatch_emulator::stop_all();
        let report = report?;
        let stem = format!("load-{}", name.replace('+', "-"));
        write_report(&args.out, &stem, &report)?;
        reports.push(report);
    }
    let md = compare(&command, &reports);
    std::fs::write(args.out.join("load-emulators.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    Ok(())
}

/// The emulators side by side: throughput at each offered load, the peak, the raw
/// ceiling.
fn compare(command: &str, reports: &[LoadReport]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let Some(first) = reports.first() else {
        return o;
    };
    let _ = writeln!(o, "# Load by emulator\n");
    // `machine()` names one emulator: here each column names its own.
    let machine = first
        .machine
        .split("; emulator:")
        .next()
        .unwrap_or_default();
    let _ = writeln!(o, "`{command}` — {} — {machine}\n", first.date);
    let names: Vec<&str> = reports.iter().map(|r| r.emulator.as_str()).collect();
    let _ = writeln!(
        o,
        "Delivered orders per second at each offered load, one emulator after the other in \
         one run, each with a fresh local stack (at most {} orders in flight). Each emulator's \
         own report: `load-<name>.md`.\n",
        first.max_in_flight
    );
    let _ = writeln!(
        o,
        "| offered/s | {} |\n|---|{}",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for (i, l) in first.levels.iter().enumerate() {
        let cells: Vec<String> = reports
            .iter()
            .map(|r| {
                r.levels.get(i).map_or("—".to_owned(), |l| {
                    format!(
                        "{:.2} (DISPATCHED p50 {:.0} ms{})",
                        l.achieved_per_s,
                        l.dispatched_ms.p50,
                        if l.delivered < l.placed {
                            format!(", {} of {} delivered", l.delivered, l.placed)
                        } else {
                            String::new()
                        }
                    )
                })
            })
            .collect();
        let _ = writeln!(o, "| {:.2} | {} |", l.offered_per_s, cells.join(" | "));
    }
    let row = |label: &str, f: &dyn Fn(&LoadReport) -> String| {
        let cells: Vec<String> = reports.iter().map(f).collect();
        format!("| {label} | {} |", cells.join(" | "))
    };
    let _ = writeln!(
        o,
        "{}",
        row("**peak**", &|r| format!("**{:.2}**", r.peak_per_s))
    );
    let _ = writeln!(
        o,
        "{}",
        row(
            "p99 accepted / DISPATCHED ms at half the peak",
            &|r| format!(
                "{:.0} / {:.0}",
                r.half_peak.accepted_ms.p99, r.half_peak.dispatched_ms.p99
            )
        )
    );
    let _ = writeln!(
        o,
        "{}",
        row("raw PutItem / SendMessage / Publish per s", &|r| format!(
            "{:.0} / {:.0} / {:.0}",
            r.ceiling.put_item_per_s, r.ceiling.send_message_per_s, r.ceiling.publish_per_s
        ))
    );
    let _ = writeln!(
        o,
        "{}",
        row("calls per order at the peak (DynamoDB / SQS / SNS)", &|r| {
            let p = r
                .levels
                .iter()
                .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s));
            p.map_or("—".to_owned(), |p| {
                let c = p.calls_per_order;
                format!("{:.0} / {:.0} / {:.0}", c.dynamodb, c.sqs, c.sns)
            })
        })
    );
    o
}

/// Writes `<stem>.md`, `<stem>.json` and, for `load`, the plots; the markdown.
fn write_report(out: &std::path::Path, stem: &str, report: &LoadReport) -> Result<String, String> {
    let mut plots = Vec::new();
    let throughput = format!("{stem}-throughput.png");
    match plot::throughput(&out.join(&throughput), &report.levels) {
        Ok(()) => plots.push(throughput),
        Err(e) => eprintln!("no throughput plot: {e}"),
    }
    let latency = format!("{stem}-latency.png");
    match plot::latency(&out.join(&latency), &report.half_peak, &report.levels) {
        Ok(()) => plots.push(latency),
        Err(e) => eprintln!("no latency plot: {e}"),
    }
    let plots: Vec<&str> = plots.iter().map(String::as_str).collect();
    let md = markdown(report, &plots);
    std::fs::write(out.join(format!("{stem}.md")), &md).map_err(|e| e.to_string())?;
    let js = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(out.join(format!("{stem}.json")), js + "\n").map_err(|e| e.to_string())?;
    Ok(md)
}

/// One emulator's whole measurement: its ceiling, the levels, the run at half the peak.
async fn measure(
    args: &Args,
    command: &str,
    endpoint: &str,
    emulator: &str,
) -> Result<LoadReport, String> {
    let endpoint = endpoint.to_owned();
    // Only moto (`local/moto_serial.py`) keeps an account of its busy time; behind the
    // router of a pair the path would reach the moto serving SSM and CloudWatch alone.
    let busy_from = (emulator != "dynoxide+fauxqs").then_some(endpoint.as_str());
    let direct = sdk::emulator_config(Some(&endpoint)).await;
    let prefix = format!("load-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    eprintln!("measuring the emulator's ceiling...");
    let ceiling = measure_ceiling(&direct, &prefix).await?;
    eprintln!("  {ceiling:?}");

    let (tx, rx) = mpsc::unbounded_channel();
    let opts = LocalStackOptions::new(&prefix)
        .endpoint(&endpoint)
        .psp(false)
        .aws_proxy(AwsProxyConfig::default().meter_units(false))
        // Deadlines fire during the run, as in a steady state (the template's 300 s
        // would only pile up delayed messages, which slows the emulator's queues).
        .function_env("*", "STEP_TIMEOUT_SECONDS", "60")
        .wrap_function("order-saga", move |inner| {
            Arc::new(Watch {
                inner,
                tx: tx.clone(),
            })
        });
    let mut opts = opts;
    if emulator != "at the endpoint" {
        opts.esm.receive_wait_seconds = dishpatch_local::esm::receive_wait_for(Some(emulator));
    }
    let local = LocalStack::start(opts)
        .await
        .map_err(|e| format!("{e} (is the emulator running at {endpoint}?)"))?;
    let api = Arc::new(Api::new(local.url()));
    let total_orders: f64 = args
        .rates
        .iter()
        .map(|r| r * args.duration_secs as f64)
        .sum();
    setup(
        &local,
        &direct,
        &api,
        args.couriers,
        total_orders as usize * 2 + 100,
    )
    .await?;
    let milestones = Milestones::spawn(rx, api.clone());

    let mut levels = Vec::new();
    for &rate in &args.rates {
        let level = run_level(
            &local,
            &api,
            &milestones,
            rate,
            args.duration_secs,
            args.max_in_flight,
            busy_from,
        )
        .await?;
        eprintln!(
            "  offered {rate}/s: delivered {}/{} at {:.2}/s, accepted p99 {:.0} ms, dispatched p99 {:.0} ms",
            level.delivered,
            level.placed,
            level.achieved_per_s,
            level.accepted_ms.p99,
            level.dispatched_ms.p99
        );
        levels.push(level);
    }
    let peak = levels
        .iter()
        .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s))
        .cloned()
        .ok_or("no load levels")?;
    let c = peak.calls_per_order;
    let half_rate = (peak.achieved_per_s / 2.0).max(0.1);
    eprintln!("half of the peak: {half_rate:.2}/s");
    let half_peak = run_level(
        &local,
        &api,
        &milestones,
        half_rate,
        args.duration_secs,
        args.max_in_flight,
        busy_from,
    )
    .await?;
    local.shutdown();
    // Measured again once the stack is stopped: the machine's other load moves it, so
    // the allowance uses the mean of the two and the report shows both.
    eprintln!("measuring the emulator's ceiling again...");
    let after = measure_ceiling(&direct, &format!("{prefix}-after")).await?;
    eprintln!("  {after:?}");
    let before = ceiling;
    let ceiling = Ceiling {
        put_item_per_s: (before.put_item_per_s + after.put_item_per_s) / 2.0,
        send_message_per_s: (before.send_message_per_s + after.send_message_per_s) / 2.0,
        publish_per_s: (before.publish_per_s + after.publish_per_s) / 2.0,
    };
    let allowed = 1.0
        / (c.dynamodb / ceiling.put_item_per_s
            + c.sqs / ceiling.send_message_per_s
            + c.sns / ceiling.publish_per_s);

    Ok(LoadReport {
        emulator: emulator.to_owned(),
        max_in_flight: args.max_in_flight,
        command: command.to_owned(),
        date: chrono::Utc::now()
            .format("%a %b %e %H:%M:%S UTC %Y")
            .to_string(),
        machine: crate::report::machine(),
        duration_secs: args.duration_secs,
        ceiling,
        ceiling_before: before,
        ceiling_after: after,
        peak_per_s: peak.achieved_per_s,
        allowed_per_s: allowed,
        efficiency: peak.achieved_per_s / allowed,
        levels,
        half_peak,
    })
}

/// Raw operations per second against the emulator, four callers at once, ~3 s each.
async fn measure_ceiling(direct: &aws_config::SdkConfig, prefix: &str) -> Result<Ceiling, String> {
    let ddb = aws_sdk_dynamodb::Client::new(direct);
    let table = format!("{prefix}-ceiling");
    testing::create_pk_table(&ddb, &table).await?;
    let sqs = aws_sdk_sqs::Client::new(direct);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{prefix}-ceiling"))
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
        .queue_url
        .unwrap_or_default();
    let sns = aws_sdk_sns::Client::new(direct);
    let topic = sns
        .create_topic()
        .name(format!("{prefix}-ceiling"))
        .send()
        .await
        .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(e).to_string())?
        .topic_arn
        .unwrap_or_default();
    let window = Duration::from_secs(3);
    let put_item_per_s = rate(window, (ddb, table), |(ddb, table), i| async move {
        ddb.put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("k{i}")))
            .item("data", AttributeValue::S("x".repeat(200)))
            .send()
            .await
            .is_ok()
    })
    .await;
    let send_message_per_s = rate(
        window,
        (sqs.clone(), queue.clone()),
        |(sqs, queue), i| async move {
            sqs.send_message()
                .queue_url(queue)
                .message_body(format!("{i}{}", "x".repeat(200)))
                .send()
                .await
                .is_ok()
        },
    )
    .await;
    let publish_per_s = rate(window, (sns, topic), |(sns, topic), i| async move {
        sns.publish()
            .topic_arn(topic)
            .message(format!("{i}{}", "x".repeat(200)))
            .send()
            .await
            .is_ok()
    })
    .await;
    let _ = sqs.delete_queue().queue_url(&queue).send().await;
    Ok(Ceiling {
        put_item_per_s,
        send_message_per_s,
        publish_per_s,
    })
}

/// Successful calls per second of `op` from four concurrent callers over `window`;
/// each call gets its own copy of `with` (the client and the resource it calls).
async fn rate<C, F, Fut>(window: Duration, with: C, op: F) -> f64
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (op, with) = (op.clone(), with.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut i = w * 1_000_000;
            while started.elapsed() < window {
                if op(with.clone(), i).await {
                    ok += 1;
                }
                i += 1;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap_or(0);
    }
    ok as f64 / started.elapsed().as_secs_f64()
}

/// Stock, money and couriers for every order of the run.
async fn setup(
    local: &LocalStack,
    direct: &aws_config::SdkConfig,
    api: &Api,
    couriers: usize,
    orders: usize,
) -> Result<(), String> {
    crate::calls::provision_orders(api, orders).await?;
    let ddb = aws_sdk_dynamodb::Client::new(direct);
    let table = local.stack.table_name("DeliveryTable");
    for i in 0..couriers {
        let id = format!("load-courier-{i}");
        let s = |v: &str| AttributeValue::S(v.to_owned());
        ddb.put_item()
            .table_name(table)
            .item("pk", s(&keys::courier_pk(&id)))
            .item("sk", s(keys::COURIER_SK))
            .item("courierId", s(&id))
            .item("name", s(&format!("Load courier {i}")))
            .item("status", s("AVAILABLE"))
            .item("gsi1pk", s(keys::AVAILABLE_COURIERS))
            .item("gsi1sk", s(&id))
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    }
    Ok(())
}

/// When an order was DISPATCHED and DELIVERED, as far as seen.
type Moments = (Option<Instant>, Option<Instant>);

/// Order milestones from the saga, and couriers completing dispatched orders at once.
#[derive(Clone)]
struct Milestones {
    seen: Arc<Mutex<HashMap<String, Moments>>>,
}

impl Milestones {
    fn spawn(mut rx: mpsc::UnboundedReceiver<(Milestone, Instant)>, api: Arc<Api>) -> Milestones {
        let m = Milestones {
            seen: Default::default(),
        };
        let seen = m.seen.clone();
        tokio::spawn(async move {
            while let Some((milestone, at)) = rx.recv().await {
                match milestone {
                    Milestone::Dispatched { order, courier } => {
                        let first = {
                            let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                            let e = s.entry(order.clone()).or_default();
                            let first = e.0.is_none();
                            e.0.get_or_insert(at);
                            first
                        };
                        if first {
                            let api = api.clone();
                            tokio::spawn(async move {
                                if let Err(e) = api.complete(&order, &courier).await {
                                    eprintln!("completing {order}: {e}");
                                }
                            });
                        }
                    }
                    Milestone::Delivered { order } => {
                        let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                        s.entry(order).or_default().1.get_or_insert(at);
                    }
                }
            }
        });
        m
    }

    fn get(&self, order: &str) -> Moments {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(order)
            .copied()
            .unwrap_or_default()
    }
}

async fn run_level(
    local: &LocalStack,
    api: &Arc<Api>,
    milestones: &Milestones,
    rate: f64,
    duration_secs: u64,
    max_in_flight: usize,
    busy_from: Option<&str>,
) -> Result<Level, String> {
    let proxy = local.aws_proxy().ok_or("the AWS proxy is off")?;
    proxy.reset();
    let busy_before = match busy_from {
        Some(e) => emulator_busy(e).await,
        None => None,
    };
    let n = ((rate * duration_secs as f64).round() as usize).max(1);
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{rate:>5}/s [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} delivered {{msg}}"
        ))
        .map_err(|e| e.to_string())?,
    );
    let start = Instant::now();
    let mut placing = Vec::new();
    // Backpressure: a slot per order in flight, held until it is delivered (or its
    // deadline passes).
    let slots = (max_in_flight > 0).then(|| Arc::new(tokio::sync::Semaphore::new(max_in_flight)));
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        let (api, slots, milestones) = (api.clone(), slots.clone(), milestones.clone());
        placing.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let slot = match slots {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let waited = at.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let r = api.place(CUSTOMER, "m-3").await;
            let took = t.elapsed();
            if let (Some(slot), Ok(id)) = (slot, &r) {
                let id = id.clone();
                tokio::spawn(async move {
                    while milestones.get(&id).1.is_none() && t.elapsed() < ORDER_DEADLINE {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    drop(slot);
                });
            }
            (t, took, waited, r)
        }));
    }
    let mut placed = Vec::new();
    let mut rejected = 0;
    let mut accepted = Vec::new();
    let mut waits = Vec::new();
    for p in placing {
        let (t, took, waited, r) = p.await.map_err(|e| e.to_string())?;
        waits.push(waited);
        match (t, took, r) {
            (t, took, Ok(id)) => {
                accepted.push(took.as_secs_f64() * 1e3);
                placed.push((id, t));
            }
            (_, _, Err(e)) => {
                rejected += 1;
                bar.println(format!("rejected: {e}"));
            }
        }
    }
    // Wait for every placed order to be delivered (or its deadline).
    let mut last_delivery = start;
    loop {
        let mut delivered = 0;
        let mut pending_past_deadline = 0;
        for (id, t) in &placed {
            match milestones.get(id) {
                (_, Some(d)) => {
                    delivered += 1;
                    last_delivery = last_delivery.max(d);
                }
                _ if t.elapsed() > ORDER_DEADLINE => pending_past_deadline += 1,
                _ => {}
            }
        }
        bar.set_position(delivered as u64);
        bar.set_message(format!("({} placed)", placed.len()));
        if delivered + pending_past_deadline == placed.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish();
    let busy_after = match busy_from {
        Some(e) => emulator_busy(e).await,
        None => None,
    };
    let wall = start.elapsed();
    let mut dispatched = Vec::new();
    let mut delivered = 0;
    for (id, t) in &placed {
        let (d, done) = milestones.get(id);
        if let Some(d) = d {
            dispatched.push(d.duration_since(*t).as_secs_f64() * 1e3);
        }
        if done.is_some() {
            delivered += 1;
        }
    }
    let counts = proxy.counts();
    let per = |svc: &[&str]| -> f64 {
        svc.iter()
            .map(|s| {
                (counts.service_total(Caller::Function, s)
                    + counts.service_total(Caller::EventSource, s)) as f64
            })
            .sum::<f64>()
            / delivered.max(1) as f64
    };
    // Deliveries per second over their own span (plus one arrival interval, so an
    // unsaturated run reads as its offered rate and a saturated one as its capacity).
    let first_delivery = placed
        .iter()
        .filter_map(|(id, _)| milestones.get(id).1)
        .min()
        .unwrap_or(start);
    let elapsed =
        (last_delivery.duration_since(first_delivery).as_secs_f64() + 1.0 / rate).max(1e-3);
    Ok(Level {
        offered_per_s: rate,
        admission_wait_ms: percentiles(&waits),
        placed: placed.len(),
        rejected,
        delivered,
        achieved_per_s: delivered as f64 / elapsed,
        accepted_ms: percentiles(&accepted),
        dispatched_ms: percentiles(&dispatched),
        calls_per_order: CallsPerOrder {
            dynamodb: per(&["dynamodb", "dynamodbstreams"]),
            sqs: per(&["sqs"]),
            sns: per(&["sns"]),
        },
        emulator: busy_before
            .zip(busy_after)
            .map(|(b, a)| busy_between(&b, &a, wall, delivered)),
        accepted_samples: accepted,
        dispatched_samples: dispatched,
    })
}

fn markdown(r: &LoadReport, plots: &[&str]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "# Load: orders per second through the whole saga\n");
    let machine = r.machine.split("; emulator:").next().unwrap_or_default();
    let _ = writeln!(
        o,
        "`{}` — {} — {machine}; emulator: {}\n",
        r.command, r.date, r.emulator
    );
    let _ = writeln!(
        o,
        "Happy-path wallet orders arrive open-loop at each offered rate for {} s; each is \
         placed over the HTTP API, and completed by its courier over the API as soon as the \
         saga records it DISPATCHED. Accepted = `POST /v1/orders` answered 201; DISPATCHED = \
         from the POST to the saga's write of DISPATCHED. Throughput = delivered orders over \
         the span from the first delivery to the last plus one arrival interval (an \
         unsaturated level reads as its offered rate, a saturated one as its capacity). Everything — emulator, \
         functions, pollers, gateway, load generator — shares the machine's cores. {}\n",
        r.duration_secs,
        if r.max_in_flight > 0 {
            format!(
                "Backpressure: at most {} orders in flight; an arrival beyond that waits for \
                 a delivery before it is placed (the admission wait column); accepted and \
                 DISPATCHED latencies count from the POST.",
                r.max_in_flight
            )
        } else {
            "Open loop: every arrival is placed on time, however many are in flight.".to_owned()
        }
    );
    let _ = writeln!(
        o,
        "Reproduce: `endpoint=$(scripts/emulator 0)` then `AWS_ENDPOINT_URL=$endpoint cargo run \
         --release -p dishpatch-local --bin dishpatch-bench -- load`.\n"
    );
    let _ = writeln!(o, "## Headline\n");
    let _ = writeln!(
        o,
        "| measure | value | target | met |\n|---|---|---|---|\n\
         | peak throughput | {:.2} orders/s | | |\n\
         | what the emulator allows for our calls per order | {:.2} orders/s | | |\n\
         | peak as a fraction of that | {:.0} % | >= 70 % | {} |\n\
         | p99 accepted latency at half the peak ({:.2} orders/s offered) | {:.0} ms | | |\n\
         | p99 DISPATCHED latency at half the peak | {:.0} ms | | |\n\
         | emulator busy at the peak, measured inside it | {} | | |\n",
        r.peak_per_s,
        r.allowed_per_s,
        r.efficiency * 100.0,
        if r.efficiency >= 0.7 { "yes" } else { "**no**" },
        r.half_peak.offered_per_s,
        r.half_peak.accepted_ms.p99,
        r.half_peak.dispatched_ms.p99,
        peak_busy(r).map_or("not reported by the emulator".to_owned(), |e| format!(
            "{:.0} % of the level's wall time, {:.0} ms per order",
            e.busy_share * 100.0,
            e.ms_per_order
        )),
    );
    let (c, b, a) = (&r.ceiling, &r.ceiling_before, &r.ceiling_after);
    let _ = writeln!(
        o,
        "## The emulator's ceiling (same run: before the stack started and after it stopped)\n\n\
         | operation | before | after | used (mean) |\n|---|---|---|---|\n\
         | PutItem per s | {:.0} | {:.0} | {:.0} |\n\
         | SendMessage per s | {:.0} | {:.0} | {:.0} |\n\
         | Publish per s | {:.0} | {:.0} | {:.0} |\n",
        b.put_item_per_s,
        a.put_item_per_s,
        c.put_item_per_s,
        b.send_message_per_s,
        a.send_message_per_s,
        c.send_message_per_s,
        b.publish_per_s,
        a.publish_per_s,
        c.publish_per_s
    );
    let _ = writeln!(
        o,
        "Allowed orders/s = 1 / (DynamoDB calls per order / PutItem rate + SQS calls / \
         SendMessage rate + SNS calls / Publish rate), with the calls of the functions and of \
         the local pollers (their empty receives and stream reads load the emulator too) \
         measured at the peak level.\n"
    );
    let _ = writeln!(
        o,
        "## Levels\n\n| offered/s | placed | delivered | achieved/s | admission wait p50 / p99 ms \
         | accepted p50 / p90 / p99 ms | DISPATCHED p50 / p90 / p99 ms | calls per order \
         (DynamoDB / SQS / SNS) |\n|---|---|---|---|---|---|---|---|"
    );
    for l in r.levels.iter().chain(std::iter::once(&r.half_peak)) {
        let _ = writeln!(
            o,
            "| {:.2} | {} | {} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} |",
            l.offered_per_s,
            l.placed,
            l.delivered,
            l.achieved_per_s,
            l.admission_wait_ms.p50,
            l.admission_wait_ms.p99,
            l.accepted_ms.p50,
            l.accepted_ms.p90,
            l.accepted_ms.p99,
            l.dispatched_ms.p50,
            l.dispatched_ms.p90,
            l.dispatched_ms.p99,
            l.calls_per_order.dynamodb,
            l.calls_per_order.sqs,
            l.calls_per_order.sns,
        );
    }
    let _ = writeln!(o, "\n(The last row is the run at half the peak.)\n");
    analysis(&mut o, r);
    for p in plots {
        let _ = writeln!(o, "![{p}]({p})\n");
    }
    o
}

/// Where the emulator's time goes at the peak, and what limits the fraction.
/// The emulator's account of the level with the highest throughput.
fn peak_busy(r: &LoadReport) -> Option<&EmulatorBusy> {
    r.levels
        .iter()
        .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s))?
        .emulator
        .as_ref()
}

fn analysis(o: &mut String, r: &LoadReport) {
    use std::fmt::Write as _;
    let Some(peak) = r
        .levels
        .iter()
        .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s))
    else {
        return;
    };
    let falls_off = r.levels.iter().any(|l| {
        l.offered_per_s > peak.offered_per_s && l.achieved_per_s < 0.9 * peak.achieved_per_s
    });
    let past_peak = if falls_off {
        "Throughput falls off past the peak as deeper queues slow every SQS call."
    } else if r
        .levels
        .iter()
        .all(|l| l.offered_per_s <= peak.offered_per_s)
    {
        "The peak came at the highest offered load: a higher one may go further."
    } else {
        "Past the peak, throughput holds roughly level."
    };
    let c = &peak.calls_per_order;
    let ms = |calls: f64, rate: f64| 1e3 * calls / rate.max(1e-9);
    let (d, q, n) = (
        ms(c.dynamodb, r.ceiling.put_item_per_s),
        ms(c.sqs, r.ceiling.send_message_per_s),
        ms(c.sns, r.ceiling.publish_per_s),
    );
    let heaviest = if q >= d && q >= n {
        "SQS weighs most: moto's SendMessage is its slowest operation and slows further as \
         queues grow, and the local pollers short-poll (empty receives) where Lambda would \
         long-poll."
    } else if d >= n {
        "DynamoDB weighs most: it takes the most calls per order."
    } else {
        "SNS weighs most."
    };
    let _ = writeln!(
        o,
        "## What limits it\n\n\
         At the peak ({:.2}/s offered) an order costs the emulator about {:.0} ms: DynamoDB \
         {:.0} ms ({:.0} calls), SQS {:.0} ms ({:.0} calls), SNS {:.0} ms ({:.0} calls). {} Below saturation the DISPATCHED latency is mostly the local pollers' \
         idle backoff (up to 200 ms per hop) and batching window (up to 100 ms) over about \
         ten hops; past the peak the queues back up and it grows with the backlog, while \
         the accepted latency (one conditional write) stays low. {} The ceiling and the run \
         share two cores with the functions, the pollers, the gateway and the load \
         generator (and, on a shared machine, whatever else runs), so runs vary: treat the \
         fraction as a lower bound of what the code itself allows, and repeat the bench \
         before reading much into one run.\n",
        peak.offered_per_s,
        d + q + n,
        d,
        c.dynamodb,
        q,
        c.sqs,
        n,
        c.sns,
        heaviest,
        past_peak
    );
    if let Some(e) = &peak.emulator {
        let top: Vec<String> = e
            .by_call
            .iter()
            .take(6)
            .map(|(k, n, ms)| format!("{k} {ms:.0} ms ({n:.1} calls)"))
            .collect();
        let _ = writeln!(
            o,
            "Measured inside the emulator (`local/moto_serial.py` times every call it \
             serves), the peak level kept it busy {:.0} % of its wall time (placing until the \
             last delivery), {:.0} ms per order against the {:.0} ms the raw-call ceiling \
             prices it at. The calls that took the most of it, per order: {}.\n",
            e.busy_share * 100.0,
            e.ms_per_order,
            d + q + n,
            top.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(percentiles(&[7.0]).p99, 7.0);
        assert_eq!(percentiles(&[]).max, 0.0);
    }
}
