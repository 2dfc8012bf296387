//! `dishpatch-bench`: measurements of the whole system on the local stack.
//!
//! ```text
//! dishpatch-bench calls [--orders 20] [--endpoint http://127.0.0.1:5000] [--out bench/results]
//! ```
//!
//! `calls` places happy-path wallet orders through the HTTP API with the AWS proxy on,
//! has a courier deliver each, waits until everything is at rest, and reports the AWS
//! calls, DynamoDB request units, Lambda invocations and API requests per order and the
//! cost per million orders (`bench/results/calls.md` and `calls.json`).

mod calls;
mod metering;
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Calls(args) => calls::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dishpatch-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
