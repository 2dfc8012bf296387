//! `dishpatch`: operator tools (see `dishpatch --help` and [`dishpatch_local::ops`]).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dishpatch_local::ops::cli::main().await
}
