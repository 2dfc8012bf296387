//! `dishpatch-local`: run the whole system on a laptop against a moto server.
//!
//! ```text
//! dishpatch-local up [--port 3000] [--endpoint http://127.0.0.1:5000] [--prefix dishpatch] [--no-seed]
//! dishpatch-local token --sub alice --role CUSTOMER [--role MANAGER] [--restaurant r-1]
//! dishpatch-local seed [--endpoint ...] [--prefix ...]
//! dishpatch-local soak [--orders 1000] [--seed 1] [--crash-rate 0.02] ... (--help lists every fault knob)
//! ```
//!
//! A running stack's invariants are checked by the operator CLI, with the same command
//! as a deployed stack's: `dishpatch invariants check --endpoint ... --prefix ...`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dishpatch_local::{
    envfiles, provision, sdk, seed, template::Template, tokens, LocalStack, LocalStackOptions,
};

#[derive(Parser)]
#[command(
    name = "dishpatch-local",
    version,
    about = "The dishpatch local stack (moto + gateway + pollers)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct StackArgs {
    /// Emulator endpoint (moto server). Default: $AWS_ENDPOINT_URL, else http://127.0.0.1:5000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// Prefix of every physical resource name.
    #[arg(long, default_value = "dishpatch")]
    prefix: String,
    /// Template file (default: the template.yaml embedded at build time).
    #[arg(long)]
    template: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Provision, seed, serve the HTTP API and run the event-source mappings until Ctrl-C.
    Up {
        #[command(flatten)]
        stack: StackArgs,
        /// Gateway port (0: any free port).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Gateway bind address.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Do not write the demo data.
        #[arg(long)]
        no_seed: bool,
        /// How soon a failed SQS message is retried, in milliseconds (rounded up to seconds).
        #[arg(long, default_value_t = 1000)]
        retry_delay_ms: u64,
        /// Deliver every SQS batch twice (idempotency drills).
        #[arg(long)]
        duplicate_deliveries: bool,
        /// Deliver SQS messages out of order (held back, scrambled batches).
        #[arg(long)]
        shuffle_deliveries: bool,
        /// Seed of the shuffle (default: $DISHPATCH_SHUFFLE_SEED, else random).
        #[arg(long)]
        shuffle_seed: Option<u64>,
    },
    /// Print a dev JWT accepted by the local gateway.
    Token {
        #[arg(long)]
        sub: String,
        /// Role (repeatable): CUSTOMER, COURIER, MANAGER, ADMIN.
        #[arg(long = "role", default_value = "CUSTOMER")]
        roles: Vec<String>,
        /// A restaurant the MANAGER manages (repeatable; the `restaurants` claim). Default:
        /// a demo manager's own (manager-1: r-1, manager-2: r-2).
        #[arg(long = "restaurant")]
        restaurants: Vec<String>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Provision (if needed) and write the demo data.
    Seed {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The chaos soak: N orders with every fault class injected, then the invariants at
    /// rest; prints a summary table and exits non-zero on any violation.
    Soak(Box<SoakArgs>),
}

/// `soak` flags; defaults are the 1,000-order run with every fault class on.
#[derive(Args)]
struct SoakArgs {
    /// Emulator endpoint. Default: $AWS_ENDPOINT_URL, else http://127.0.0.1:5000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// Prefix of the stack's resources (default: soak-<seed>-<random>).
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Orders in flight at once. Default: 32, and beyond 1,000 orders 32 per 1,000 (at
    /// most 192).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Soak customers, a tenth of them with small wallets. Default: 60 per 1,000
    /// orders (at least 60).
    #[arg(long)]
    customers: Option<usize>,
    /// Couriers in all (fewer than --concurrency: a shortage). Default: 10 for every 32
    /// orders in flight.
    #[arg(long)]
    couriers: Option<usize>,
    /// Batches of each queue, and of each table stream (by item key), handled at once
    /// (the event-source mappings' concurrency).
    #[arg(long, default_value_t = 4)]
    pollers: usize,
    /// Chance per message (after the first of a batch) that the invocation crashes.
    #[arg(long, default_value_t = 0.02)]
    crash_rate: f64,
    /// Turn off duplicate deliveries.
    #[arg(long)]
    no_duplicates: bool,
    /// Share of messages delivered twice.
    #[arg(long, default_value_t = 0.25)]
    duplicate_share: f64,
    /// Turn off delayed, reordered deliveries.
    #[arg(long)]
    no_shuffle: bool,
    /// Longest hold-back of a delayed delivery, ms.
    #[arg(long, default_value_t = 600)]
    max_hold_ms: u64,
    /// How soon a failed or crashed message comes back, ms.
    #[arg(long, default_value_t = 2000)]
    retry_delay_ms: u64,
    /// Share of orders paid by card.
    #[arg(long, default_value_t = 0.3)]
    card_share: f64,
    /// Shares of card orders with decline / charge-then-timeout / timeout / error tokens.
    #[arg(long, default_value_t = 0.08)]
    decline_share: f64,
    #[arg(long, default_value_t = 0.04)]
    charge_then_timeout_share: f64,
    #[arg(long, default_value_t = 0.005)]
    timeout_share: f64,
    #[arg(long, default_value_t = 0.03)]
    error_token_share: f64,
    /// The card provider's share of calls answered 503, and added latency (ms).
    #[arg(long, default_value_t = 0.05)]
    psp_failure_rate: f64,
    #[arg(long, default_value_t = 20)]
    psp_latency_ms: u64,
    /// A provider outage of --psp-outage-secs every --psp-outage-every-secs (0: none).
    #[arg(long, default_value_t = 120)]
    psp_outage_every_secs: u64,
    #[arg(long, default_value_t = 2)]
    psp_outage_secs: u64,
    /// Share of orders cancelled by the customer within --cancel-within-ms.
    #[arg(long, default_value_t = 0.12)]
    cancel_share: f64,
    #[arg(long, default_value_t = 4000)]
    cancel_within_ms: u64,
    /// Share of orders with a line of the scarce item, and its stock.
    #[arg(long, default_value_t = 0.08)]
    scarce_share: f64,
    /// Default: 30 units per 1,000 orders (at least 30).
    #[arg(long)]
    scarce_stock: Option<i64>,
    /// Saga deadlines, seconds.
    #[arg(long, default_value_t = 40)]
    step_timeout_secs: u32,
    #[arg(long, default_value_t = 20)]
    compensation_timeout_secs: u32,
    /// Shares of the functions' AWS calls answered 500 / throttled / applied with the
    /// answer lost.
    #[arg(long, default_value_t = 0.005)]
    aws_error_rate: f64,
    #[arg(long, default_value_t = 0.01)]
    aws_throttle_rate: f64,
    #[arg(long, default_value_t = 0.002)]
    aws_lost_response_rate: f64,
    /// How long the stack may take to come to rest at the end, seconds.
    #[arg(long, default_value_t = 600)]
    settle_secs: u64,
    /// Count every dead letter as a violation, even of an order that ended.
    #[arg(long)]
    strict_dead_letters: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("soak") && std::env::var_os("RUST_LOG").is_none()
    {
        // The soak's summary is its output: only unexpected errors beside it (injected
        // crashes are logged by the local Lambda as errors, hence its target is off).
        std::env::set_var("RUST_LOG", "error,dishpatch_local::functions=off");
    }
    // Spans kept in memory, for `GET /_local/traces/{traceId}`.
    dishpatch::logging::Logs::from_env()
        .record_spans()
        .install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up {
            stack,
            port,
            host,
            no_seed,
            retry_delay_ms,
            duplicate_deliveries,
            shuffle_deliveries,
            shuffle_seed,
        } => {
            let mut opts = LocalStackOptions::new(&stack.prefix)
                .retry_delay(Duration::from_millis(retry_delay_ms))
                .duplicate_deliveries(duplicate_deliveries)
                .shuffle_deliveries(shuffle_deliveries);
            if let Some(seed) = shuffle_seed {
                opts = opts.shuffle_seed(seed);
            }
            up(stack, host, port, !no_seed, opts).await
        }
        Command::Token {
            sub,
            roles,
            restaurants,
            ttl_hours,
        } => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let mut request = tokens::TokenRequest::new(sub, &roles);
            if !restaurants.is_empty() {
                let ids: Vec<&str> = restaurants.iter().map(String::as_str).collect();
                request = request.restaurants(&ids);
            }
            request
                .ttl(Duration::from_secs(ttl_hours * 3600))
                .mint()
                .map(|t| println!("{t}"))
                .map_err(|e| e.to_string())
        }
        Command::Seed { stack } => seed_only(stack).await,
        Command::Soak(args) => match soak(*args).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dishpatch-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn up(
    args: StackArgs,
    host: std::net::IpAddr,
    port: u16,
    seed: bool,
    opts: LocalStackOptions,
) -> Result<(), String> {
    let endpoint = sdk::endpoint(args.endpoint.as_deref());
    let mut opts = opts.endpoint(&endpoint).port(port).seed(seed);
    opts.host = host;
    opts.template = args.template;
    let local = LocalStack::start(opts)
        .await
        .map_err(|e| format!("{e} (is moto running at {endpoint}?)"))?;

    // Each function's environment against this stack, for running one on its own.
    let env_dir = std::path::Path::new(envfiles::DIR);
    envfiles::write(env_dir, &local.stack, &endpoint)
        .map_err(|e| format!("writing {}: {e}", env_dir.display()))?;

    let url = local.url();
    let token = |sub: &str, roles: &[&str]| tokens::mint(sub, roles).map_err(|e| e.to_string());
    let alice = token("alice", &["CUSTOMER"])?;
    println!();
    println!("dishpatch local stack is up");
    println!("  API:       {url}");
    println!("  console:   {url}{}/", dishpatch_console::PREFIX);
    println!("  emulator:  {endpoint}   (prefix {})", local.stack.prefix);
    println!(
        "  functions: {}",
        local
            .functions
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  env files: {}/<function>.env   (cargo lambda watch --env-file: see the README's dev loop)",
        envfiles::DIR
    );
    println!();
    println!("Tokens (24 h):");
    println!("  alice (CUSTOMER):     {alice}");
    println!("  bob (CUSTOMER):       {}", token("bob", &["CUSTOMER"])?);
    println!(
        "  manager-1 (MANAGER of r-1): {}",
        token("manager-1", &["MANAGER"])?
    );
    println!(
        "  manager-2 (MANAGER of r-2): {}",
        token("manager-2", &["MANAGER"])?
    );
    println!("  admin-1 (ADMIN):      {}", token("admin-1", &["ADMIN"])?);
    println!(
        "  courier-1 (COURIER):  {}",
        token("courier-1", &["COURIER"])?
    );
    println!(
        "  courier-2 (COURIER):  {}",
        token("courier-2", &["COURIER"])?
    );
    println!();
    println!("Place an order as alice:");
    println!(
        "  curl -sS -X POST {url}/v1/orders \\\n    -H 'Authorization: Bearer {alice}' \\\n    \
         -H 'Content-Type: application/json' -H \"Idempotency-Key: $(uuidgen 2>/dev/null || date +%s%N)\" \\\n    \
         -d '{{\"restaurantId\":\"r-1\",\"items\":[{{\"menuItemId\":\"m-1\",\"quantity\":2}}],\
         \"deliveryAddress\":{{\"line1\":\"1 Rua Augusta\",\"city\":\"Lisbon\",\"postcode\":\"1100-048\",\"country\":\"PT\"}},\
         \"paymentMethod\":\"WALLET\"}}'"
    );
    println!("Then: curl -sS {url}/v1/orders -H 'Authorization: Bearer {alice}'");
    println!("Menu: curl -sS {url}/v1/restaurants/r-1/menu");
    println!(
        "Invariants: dishpatch invariants check --endpoint {endpoint} --prefix {} [--wait-secs 30]",
        local.stack.prefix
    );
    if let Some(seed) = local.shuffle_seed {
        println!("Shuffled deliveries, seed {seed} (--shuffle-seed {seed} replays the decisions)");
    }
    println!();
    println!("Ctrl-C to stop.");

    wait_for_signal().await;
    tracing::info!("shutting down");
    local.shutdown();
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn seed_only(args: StackArgs) -> Result<(), String> {
    let template = Arc::new(
        match &args.template {
            Some(p) => Template::from_path(p),
            None => Template::embedded(),
        }
        .map_err(|e| e.to_string())?,
    );
    let endpoint = sdk::endpoint(args.endpoint.as_deref());
    let config = sdk::emulator_config(Some(&endpoint)).await;
    let stack = provision::provision(&config, template, &args.prefix)
        .await
        .map_err(|e| format!("{e} (is moto running at {endpoint}?)"))?;
    let n = seed::seed(&stack, &config)
        .await
        .map_err(|e| e.to_string())?;
    println!("seeded {n} new items into prefix {}", stack.prefix);
    Ok(())
}

/// Runs the soak; `Ok(true)` when no invariant broke.
async fn soak(a: SoakArgs) -> Result<bool, String> {
    use dishpatch_local::soak::{self, SoakConfig};
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let scaled = SoakConfig::scaled(a.orders);
    // Couriers follow the orders in flight unless given.
    let couriers = a.couriers.unwrap_or_else(|| match a.concurrency {
        Some(c) => (c * scaled.couriers).div_ceil(scaled.concurrency),
        None => scaled.couriers,
    });
    let config = SoakConfig {
        orders: a.orders,
        seed: a.seed,
        concurrency: a.concurrency.unwrap_or(scaled.concurrency),
        pollers: a.pollers,
        customers: a.customers.unwrap_or(scaled.customers),
        couriers,
        crash_rate: a.crash_rate,
        duplicate_deliveries: !a.no_duplicates,
        duplicate_share: a.duplicate_share,
        shuffle_deliveries: !a.no_shuffle,
        max_hold: ms(a.max_hold_ms),
        retry_delay: ms(a.retry_delay_ms),
        card_share: a.card_share,
        decline_share: a.decline_share,
        charge_then_timeout_share: a.charge_then_timeout_share,
        timeout_share: a.timeout_share,
        error_token_share: a.error_token_share,
        psp_failure_rate: a.psp_failure_rate,
        psp_latency: ms(a.psp_latency_ms),
        psp_outage_every: secs(a.psp_outage_every_secs),
        psp_outage: secs(a.psp_outage_secs),
        cancel_share: a.cancel_share,
        cancel_within: ms(a.cancel_within_ms),
        scarce_share: a.scarce_share,
        scarce_stock: a.scarce_stock.unwrap_or(scaled.scarce_stock),
        step_timeout_secs: a.step_timeout_secs,
        compensation_timeout_secs: a.compensation_timeout_secs,
        aws_error_rate: a.aws_error_rate,
        aws_throttle_rate: a.aws_throttle_rate,
        aws_lost_response_rate: a.aws_lost_response_rate,
        settle_timeout: secs(a.settle_secs),
        strict_dead_letters: a.strict_dead_letters,
        endpoint: Some(sdk::endpoint(a.endpoint.as_deref())),
        prefix: a.prefix.unwrap_or_else(|| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            format!("soak-{}-{}", a.seed, &id[..6])
        }),
        ..scaled
    };
    soak::quiet_injected_crashes();
    eprintln!(
        "soak: {} orders, seed {}, prefix {} (RUST_LOG=info for the stack's logs)",
        config.orders, config.seed, config.prefix
    );
    let report = soak::run(&config).await.map_err(|e| e.to_string())?;
    print!("{report}");
    Ok(report.is_clean())
}
