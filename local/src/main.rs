//! `dishpatch-local`: run the whole system on a laptop against a moto server.
//!
//! ```text
//! dishpatch-local up [--port 3000] [--endpoint http://127.0.0.1:5000] [--prefix dishpatch] [--no-seed]
//! dishpatch-local token --sub alice --role CUSTOMER [--role MANAGER]
//! dishpatch-local seed [--endpoint ...] [--prefix ...]
//! dishpatch-local invariants [--prefix dishpatch] [--quiescent] [--wait-secs 30]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dishpatch_local::invariants::{CheckOptions, Checker};
use dishpatch_local::{
    provision, sdk, seed, template::Template, tokens, LocalStack, LocalStackOptions,
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
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Provision (if needed) and write the demo data.
    Seed {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Scan the stack's tables and check the invariants; exits non-zero on any violation.
    Invariants {
        #[command(flatten)]
        stack: StackArgs,
        /// The stack is at rest: also check that every order is terminal and the
        /// cross-record invariants (reservations vs counters, couriers vs deliveries,
        /// orders vs payments), and that no message sits in a DLQ.
        #[arg(long)]
        quiescent: bool,
        /// Wait up to this many seconds for the stack to come to rest, then check as
        /// --quiescent.
        #[arg(long)]
        wait_secs: Option<u64>,
        /// An order known to be alerted on OpsAlertsTopic (repeatable). Default: read the
        /// stack's alert tap queue, if `up` created one.
        #[arg(long = "alerted")]
        alerted: Vec<String>,
        /// Initial wallet balance, `customer=minor units` (repeatable), e.g. the demo
        /// data's `alice=10000`: adds `balance == initial - captured` (no top-ups).
        #[arg(long = "initial-balance", value_parser = parse_balance)]
        initial_balances: Vec<(String, i64)>,
    },
}

fn parse_balance(s: &str) -> Result<(String, i64), String> {
    let (c, b) = s
        .split_once('=')
        .ok_or_else(|| format!("expected customer=amount, got {s:?}"))?;
    let b = b
        .trim()
        .parse()
        .map_err(|e| format!("bad amount in {s:?}: {e}"))?;
    Ok((c.trim().to_owned(), b))
}

#[tokio::main]
async fn main() -> ExitCode {
    dishpatch::logging::init();
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
        Command::Invariants {
            stack,
            quiescent,
            wait_secs,
            alerted,
            initial_balances,
        } => match invariants(stack, quiescent, wait_secs, alerted, initial_balances).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Token {
            sub,
            roles,
            ttl_hours,
        } => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            tokens::TokenRequest::new(sub, &roles)
                .ttl(Duration::from_secs(ttl_hours * 3600))
                .mint()
                .map(|t| println!("{t}"))
                .map_err(|e| e.to_string())
        }
        Command::Seed { stack } => seed_only(stack).await,
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

    let url = local.url();
    let token = |sub: &str, roles: &[&str]| tokens::mint(sub, roles).map_err(|e| e.to_string());
    let alice = token("alice", &["CUSTOMER"])?;
    println!();
    println!("dishpatch local stack is up");
    println!("  API:       {url}");
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
    println!();
    println!("Tokens (24 h):");
    println!("  alice (CUSTOMER):     {alice}");
    println!("  bob (CUSTOMER):       {}", token("bob", &["CUSTOMER"])?);
    println!(
        "  manager-1 (MANAGER):  {}",
        token("manager-1", &["MANAGER"])?
    );
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
        "Invariants: dishpatch-local invariants --endpoint {endpoint} --prefix {} [--wait-secs 30]",
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

/// Runs the checker; `Ok(true)` when clean.
async fn invariants(
    args: StackArgs,
    quiescent: bool,
    wait_secs: Option<u64>,
    alerted: Vec<String>,
    initial_balances: Vec<(String, i64)>,
) -> Result<bool, String> {
    let template = match &args.template {
        Some(p) => Template::from_path(p),
        None => Template::embedded(),
    }
    .map_err(|e| e.to_string())?;
    let endpoint = sdk::endpoint(args.endpoint.as_deref());
    let config = sdk::emulator_config(Some(&endpoint)).await;
    let checker = Checker::for_prefix(&config, &template, &args.prefix)
        .await
        .map_err(|e| format!("{e} (is moto running at {endpoint}?)"))?;
    let mut opts = CheckOptions::default().expect_quiescent(quiescent || wait_secs.is_some());
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
                .await
        }
        None => checker.check(&opts).await,
    }
    .map_err(|e| e.to_string())?;
    println!("invariants of stack {:?} at {endpoint}", args.prefix);
    print!("{report}");
    Ok(report.is_clean())
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
