//! `psp-sandbox`: the sandbox PSP on its own, on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use dishpatch_psp_sandbox::{start, SandboxOptions, DEFAULT_API_KEY};

/// A fake card payment service provider on 127.0.0.1 for local use and tests.
///
/// Provider API: POST /v1/charges, POST /v1/charges/{chargeId}/refunds (Bearer key and
/// Idempotency-Key required). Control API, unauthenticated (hence loopback only):
/// GET|PUT /_sandbox/config, GET /_sandbox/charges, POST /_sandbox/reset.
#[derive(Debug, Parser)]
#[command(name = "psp-sandbox", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "PSP_SANDBOX_PORT", default_value_t = 4010)]
    port: u16,
    /// The API key clients must send as `Authorization: Bearer <key>`.
    #[arg(long, env = "PSP_SANDBOX_API_KEY", default_value = DEFAULT_API_KEY)]
    api_key: String,
    /// How long tok_timeout and tok_charge_then_timeout hold their answer, in ms.
    #[arg(long, env = "PSP_SANDBOX_TIMEOUT_DELAY_MS", default_value_t = 10_000)]
    timeout_delay_ms: u64,
    /// Seed for the injected failures (random when left out; logged at start).
    #[arg(long, env = "PSP_SANDBOX_SEED")]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sandbox = start(SandboxOptions {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        api_key: args.api_key,
        timeout_delay: Duration::from_millis(args.timeout_delay_ms),
        seed: args.seed,
    })
    .await?;
    println!("psp sandbox on {}", sandbox.url());
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}
