//! `dishpatch`: operator tools (see `dishpatch --help` and [`dishpatch_ops`]).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dishpatch_ops::cli::main().await
}
