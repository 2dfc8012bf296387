//! The AWS SDK configuration for an explicit endpoint (`--endpoint`, the local emulator).
//! Without one the CLI uses the functions' own configuration and talks to real AWS.

use aws_config::SdkConfig;

/// An SDK configuration pointing at `endpoint_url`, with the same region and credential
/// defaults as the local stack's, so both reach the same emulator account.
pub async fn emulator_config(endpoint_url: &str) -> SdkConfig {
    dishpatch_sdk::endpoint_config(endpoint_url, "dishpatch-ops").await
}
