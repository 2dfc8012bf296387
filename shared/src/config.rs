//! Function configuration: the environment map ([`Env`], from core) and the AWS SDK
//! configuration every client is built from.

pub use dishpatch_core::config::{ConfigError, Env};

/// Loads the shared AWS SDK configuration once per process. `AWS_ENDPOINT_URL`
/// (honoured natively by aws-config) points every client at the local emulator. The
/// HTTPS client trusts the compiled-in roots unless `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// asks for the system store ([`crate::tls`]).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let roots = crate::tls::Roots::from_env(|name| std::env::var(name).ok());
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::tls::https_client(roots))
        .load()
        .await
}
