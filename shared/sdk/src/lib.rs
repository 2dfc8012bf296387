//! How every dishpatch program reaches AWS and logs: the SDK configuration
//! ([`sdk_config`] for AWS, [`endpoint_config`] for an explicit emulator endpoint), the
//! HTTPS client's trusted roots ([`tls`]), JSON logs ([`logging`]) and the trace
//! context every log line and AWS call carries ([`trace`]).
//!
//! It may depend on `aws-config` and the SDK's HTTP client and on
//! `tracing-subscriber` and OpenTelemetry; not on any service client, the Lambda
//! runtime or the domain.
//! The functions reach it through `dishpatch-shared` (`dishpatch::config`,
//! `dishpatch::tls`, `dishpatch::logging`); the operator CLI uses it directly.

pub mod logging;
pub mod tls;
pub mod trace;

/// Loads the AWS SDK configuration once per process. `AWS_ENDPOINT_URL` (honoured
/// natively by aws-config) points every client at the local emulator. The HTTPS client
/// trusts the compiled-in roots unless `SSL_CERT_FILE`/`SSL_CERT_DIR` asks for the
/// system store ([`tls`]).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let roots = tls::Roots::from_env(|name| std::env::var(name).ok());
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(trace::http::traced(tls::https_client(roots)))
        .load()
        .await
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// An SDK configuration pointing at an explicit endpoint (the local emulator): region
/// from `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`), credentials from
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (default `test` / `test`, which the
/// emulator accepts), so every tool that uses it reaches the same emulator account.
/// `source` names the credentials' provider in the SDK's logs.
pub async fn endpoint_config(endpoint_url: &str, source: &'static str) -> aws_config::SdkConfig {
    use aws_credential_types::Credentials;
    let region = non_empty_env("AWS_REGION")
        .or_else(|| non_empty_env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (
        non_empty_env("AWS_ACCESS_KEY_ID"),
        non_empty_env("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => Credentials::new(
            id,
            secret,
            non_empty_env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ),
        _ => Credentials::new("test", "test", None, None, source),
    };
    let roots = tls::Roots::from_env(|name| std::env::var(name).ok());
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(trace::http::traced(tls::https_client(roots)))
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new(region))
        .credentials_provider(credentials)
        .load()
        .await
}
