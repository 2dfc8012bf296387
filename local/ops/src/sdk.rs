//! The AWS SDK configuration for an explicit endpoint (`--endpoint`, the local emulator).
//! Without one the CLI uses the functions' own configuration and talks to real AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// An SDK configuration pointing at `endpoint_url`: region from `AWS_REGION` /
/// `AWS_DEFAULT_REGION` (default `us-east-1`), credentials from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` (default `test` / `test`, which the emulator accepts), the
/// same defaults as the local stack's, so both reach the same emulator account.
pub async fn emulator_config(endpoint_url: &str) -> SdkConfig {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment")
        }
        _ => Credentials::new("test", "test", None, None, "dishpatch-ops"),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(region))
        .credentials_provider(credentials)
        .load()
        .await
}
