use dishpatch::config::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dishpatch::logging::init();
    let app = payment::build(&sdk_config().await, &Env::from_process()).await?;
    dishpatch::runtime::run(app).await
}
