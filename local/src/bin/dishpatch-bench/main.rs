//! `dishpatch-bench`: measurements of the whole system on the local stack.
//!
//! ```text
//! dishpatch-bench calls [--orders 20] [--endpoint http://127.0.0.1:5000] [--out bench/results]
//! dishpatch-bench load [--rates 0.5,1,2,3,4] [--duration-secs 20] [--max-in-flight 16]
//!                     [--emulators moto,ministack,dynoxide+fauxqs] [--out bench/results]
//! ```
//!
//! `calls` places happy-path wallet orders through the HTTP API with the AWS proxy on,
//! has a courier deliver each, waits until everything is at rest, and reports the AWS
//! calls, DynamoDB request units, Lambda invocations and API requests per order and the
//! cost per million orders (`bench/results/calls.md` and `calls.json`). `load` measures
//! orders per second and latency percentiles at several offered loads against the
//! emulator's own ceiling (`bench/results/load.md`, `load.json`, PNG plots).

mod api;
mod calls;
mod load;
mod metering;
mod plot;
mod prices;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dishpatch-bench",
    about = "Benchmarks on the dishpatch local stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// AWS calls, request units and cost per happy-path order.
    Calls(calls::Args),
    /// Orders per second and latency at several offered loads, against the emulator's
    /// ceiling.
    Load(load::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Calls(args) => calls::run(args).await,
        Command::Load(args) => load::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dishpatch-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
