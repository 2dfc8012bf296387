//! `dishpatch-coldstart`: cold init, first invocation and peak memory of every function
//! against a local Lambda Runtime API, interleaved with a Python and a Node peer doing
//! the same start-up, plus binary and zip sizes. Writes JSON and a markdown section.
//!
//! It depends on the template reader (which functions exist and their environment) and
//! runs the functions' release binaries as processes: it links no function crate, so what
//! it measures is the binary that deploys.

mod floor;
mod machine;
mod measure;
mod report;
mod sizes;
mod stats;
mod subject;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dishpatch_coldstart::runtime_api;
use indicatif::{ProgressBar, ProgressStyle};

use report::{Results, SubjectResult};
use subject::{functions, Kind, Subject};

#[derive(Parser)]
#[command(name = "dishpatch-coldstart", version, about)]
struct Cli {
    /// Measured cold starts per subject (the report needs at least 20).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Unrecorded rounds first, so every file is in the page cache for all subjects.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Cargo's target dir (binaries under <triple>/release/).
    #[arg(long, default_value = "target")]
    target_dir: PathBuf,
    /// Where the function binaries that are run live.
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release")]
    bin_dir: PathBuf,
    /// cargo-lambda --lambda-dir of the x86_64 zips.
    #[arg(long, default_value = "target/bench-coldstart/lambda-x86_64")]
    lambda_x86_64: PathBuf,
    /// cargo-lambda --lambda-dir of the arm64 zips.
    #[arg(long, default_value = "target/bench-coldstart/lambda-arm64")]
    lambda_arm64: PathBuf,
    /// Sample events.
    #[arg(long, default_value = "events")]
    events: PathBuf,
    /// Where bench/peers/setup.sh installed the peers.
    #[arg(long, default_value = "target/bench-peers")]
    peers: PathBuf,
    /// Node executable for the Node peer.
    #[arg(long, default_value = "/usr/bin/node")]
    node: PathBuf,
    /// What the Python peer runs (versions), for the report.
    #[arg(long, default_value = "")]
    python_label: String,
    /// What the Node peer runs (versions), for the report.
    #[arg(long, default_value = "")]
    node_label: String,
    /// Extra KEY=VALUE for the Rust functions only (repeatable).
    #[arg(long = "rust-env", value_parser = parse_key_value)]
    rust_env: Vec<(String, String)>,
    /// A what-if run of every function in the same rounds, with one extra variable:
    /// KEY=VALUE (repeatable; each is its own set of subjects).
    #[arg(long = "what-if", value_parser = parse_key_value)]
    what_if: Vec<(String, String)>,
    /// Another build of the functions run in the same rounds, LABEL=DIR (its binaries in
    /// DIR): every function also runs as `<function>@LABEL` with the I/O-free event, and
    /// the report compares the two builds.
    #[arg(long, value_parser = parse_key_value)]
    baseline: Option<(String, String)>,
    /// Emulator endpoint (moto, provisioned by `dishpatch-local seed`): also run every
    /// function with a representative event that makes AWS calls.
    #[arg(long)]
    endpoint: Option<String>,
    /// Resource name prefix the emulator was provisioned with.
    #[arg(long, default_value = "dishpatch")]
    prefix: String,
    /// Only these subjects (function or peer names); default all.
    #[arg(long = "only")]
    only: Vec<String>,
    /// Scratch dir: per-subject stderr logs and the processes' HOME.
    #[arg(long, default_value = "target/bench-coldstart")]
    scratch: PathBuf,
    /// Seconds a process may take to reach its first event or answer it.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// The command line to record in the report.
    #[arg(long, default_value = "dishpatch-coldstart")]
    command: String,
    /// A line for the report's notes (repeatable).
    #[arg(long = "note")]
    notes: Vec<String>,
    #[arg(long, default_value = "bench/results/coldstart.md")]
    out_md: PathBuf,
    #[arg(long, default_value = "bench/results/coldstart.json")]
    out_json: PathBuf,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn main() -> ExitCode {
    // The floor client must not pay for argument parsing or an async runtime.
    if std::env::args().nth(1).as_deref() == Some(floor::ARG) {
        return match floor::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floor client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dishpatch-coldstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn absolute(p: &std::path::Path) -> std::io::Result<PathBuf> {
    std::path::absolute(p)
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let home = absolute(&cli.scratch.join("home"))?;
    let logs = absolute(&cli.scratch.join("logs"))?;
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&logs)?;
    let bin_dir = absolute(&cli.bin_dir)?;
    let baseline = match &cli.baseline {
        Some((label, dir)) => Some((label.clone(), absolute(std::path::Path::new(dir))?)),
        None => None,
    };
    let peers = absolute(&cli.peers)?;
    let dirs = sizes::Dirs {
        target: &cli.target_dir,
        lambda_x86_64: &cli.lambda_x86_64,
        lambda_arm64: &cli.lambda_arm64,
    };

    let mut subjects: Vec<Subject> = vec![];
    let emulator = cli.endpoint.clone().map(|endpoint| subject::Emulator {
        endpoint,
        prefix: cli.prefix.clone(),
    });
    for f in functions() {
        let mut s = subject::rust_function(f, &bin_dir, &cli.events, &home, None)?;
        s.env.extend(cli.rust_env.iter().cloned());
        subjects.push(s);
        if let Some((label, dir)) = &baseline {
            let mut s = subject::rust_function(f, dir, &cli.events, &home, None)?;
            s.env.extend(cli.rust_env.iter().cloned());
            s.name = format!("{f}@{label}");
            s.build = Some(label.clone());
            subjects.push(s);
        }
        for (k, v) in &cli.what_if {
            let mut s = subject::rust_function(f, &bin_dir, &cli.events, &home, None)?;
            s.env.extend(cli.rust_env.iter().cloned());
            s.env.push((k.clone(), v.clone()));
            s.name = format!("{f}[{k}={v}]");
            s.variant = Some(format!("{k}={v}"));
            subjects.push(s);
        }
        if let Some(e) = &emulator {
            let mut s = subject::rust_function(f, &bin_dir, &cli.events, &home, Some(e))?;
            s.name = format!("{f}+io");
            s.env.extend(cli.rust_env.iter().cloned());
            subjects.push(s);
        }
    }
    subjects.push(subject::floor(
        &std::env::current_exe()?,
        &cli.events,
        &home,
    )?);
    subjects.push(subject::peer(
        Kind::Python,
        &peers,
        &cli.node,
        &cli.events,
        &home,
    )?);
    subjects.push(subject::peer(
        Kind::Node,
        &peers,
        &cli.node,
        &cli.events,
        &home,
    )?);
    if !cli.only.is_empty() {
        subjects.retain(|s| cli.only.contains(&s.name));
    }
    for s in &subjects {
        if !s.program.exists() {
            return Err(format!(
                "{}: {} not found (run bench/coldstart.sh)",
                s.name,
                s.program.display()
            )
            .into());
        }
    }
    let mut results: Vec<SubjectResult> = subjects
        .iter()
        .map(|s| {
            let (label, sizes) = match s.kind {
                // Sizes are this build's; the other build's binary is compared by init.
                Kind::Rust if s.build.is_some() => (String::new(), None),
                Kind::Rust => (String::new(), Some(sizes::of(&s.function, &dirs))),
                Kind::Python => (cli.python_label.clone(), None),
                Kind::Node => (cli.node_label.clone(), None),
                Kind::Floor => (
                    "do-nothing Rust client: exec, connect, GET next (no async runtime, no SDK)"
                        .to_owned(),
                    None,
                ),
            };
            SubjectResult::new(s, label, sizes)
        })
        .collect();

    let load_before = machine::load_average();
    let rounds = (cli.warmup + cli.runs) as usize;
    let bar = ProgressBar::new((rounds * subjects.len()) as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} round {prefix} {msg} [{elapsed_precise}]",
    )?);
    let timeout = Duration::from_secs(cli.timeout_secs);
    for round in 0..rounds {
        bar.set_prefix(format!("{}/{rounds}", round + 1));
        // Rotating the start each round spreads drift (thermal, other load) over every
        // subject instead of always hitting the same one first.
        for k in 0..subjects.len() {
            let i = (round + k) % subjects.len();
            let s = &subjects[i];
            bar.set_message(s.name.clone());
            let file: String = s
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let log = logs.join(format!("{file}.log"));
            // Goes into a URL path: no characters from the subject's name.
            let request_id = format!("bench-{round}-{i}");
            let outcome = measure::cold_start(s, request_id, &log, timeout).await;
            match outcome {
                Ok(sample) if round >= cli.warmup as usize => results[i].samples.push(sample),
                Ok(_) => {}
                Err(e) => {
                    bar.println(format!("{} round {}: {e}", s.name, round + 1));
                    results[i]
                        .failures
                        .push(format!("round {}: {e}", round + 1));
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    for r in &mut results {
        r.summarize();
    }
    let ratios = report::ratios(&results);
    let checks = report::checks(&results, &ratios);
    let out = Results {
        command: cli.command.clone(),
        machine: machine::describe(load_before),
        runs: cli.runs as usize,
        warmup: cli.warmup as usize,
        notes: cli.notes.clone(),
        subjects: results,
        ratios,
        checks,
    };
    let md = report::markdown(&out);
    for p in [&cli.out_md, &cli.out_json] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&cli.out_json, serde_json::to_string_pretty(&out)? + "\n")?;
    std::fs::write(&cli.out_md, &md)?;
    print!("{md}");
    Ok(())
}
