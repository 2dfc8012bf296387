//! The AWS SDK configuration for the emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

/// moto server's usual address (`moto_server` defaults to port 5000).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";

/// The endpoint to use: `explicit`, else `AWS_ENDPOINT_URL`, else [`DEFAULT_ENDPOINT`].
/// The local stack never falls through to real AWS.
pub fn endpoint(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// An SDK configuration pointing at the emulator: region from `AWS_REGION` /
/// `AWS_DEFAULT_REGION` (default `us-east-1`), credentials from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` (default `test` / `test`).
pub async fn emulator_config(endpoint_url: Option<&str>) -> SdkConfig {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment")
        }
        _ => Credentials::new("test", "test", None, None, "dishpatch-local"),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint(endpoint_url))
        .region(Region::new(region))
        .credentials_provider(credentials)
        .load()
        .await
}
