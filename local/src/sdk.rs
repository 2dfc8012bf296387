//! The AWS SDK configuration for the emulator.

use aws_config::SdkConfig;

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

/// An SDK configuration pointing at the emulator (see
/// [`dishpatch::config::endpoint_config`] for the region and credentials).
pub async fn emulator_config(endpoint_url: Option<&str>) -> SdkConfig {
    dishpatch::config::endpoint_config(&endpoint(endpoint_url), "dishpatch-local").await
}
