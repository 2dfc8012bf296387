use dishpatch::config::{sdk_config, Env};

// One thread: at 128 MB a function has a fraction of a vCPU, and starting worker
// threads is part of every cold start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    dishpatch::logging::init();
    let app = notification::build(&sdk_config().await, &Env::from_process()).await?;
    dishpatch::runtime::run(app).await
}
