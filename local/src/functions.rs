//! The function registry: crate name (the template's `Metadata.BuildProperties.Binary`)
//! -> that crate's `build`, and [`LocalFunction`], which invokes a built function the
//! way Lambda does: through [`dishpatch::runtime::invoke`] with the raw JSON event, a
//! context carrying a request id and deadline, the template's timeout, and a crash
//! (panic) reported as a failed invocation instead of taking the stack down.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use dishpatch::config::{ConfigError, Env};
use dishpatch::runtime::Function;
use serde_json::Value;

use crate::provision::FunctionInfo;
use crate::{Error, Result};

fn shared<F: Function>(
    r: std::result::Result<F, ConfigError>,
) -> std::result::Result<Arc<dyn Function>, ConfigError> {
    r.map(|f| Arc::new(f) as Arc<dyn Function>)
}

/// Builds the function crate `binary` with its resolved environment. Each crate is
/// named here to be linked in; the list of functions itself is the template's
/// ([`dishpatch_template::embedded_binaries`]).
pub async fn build(binary: &str, sdk: &SdkConfig, env: &Env) -> Result<Arc<dyn Function>> {
    let built = match binary {
        "order-api" => shared(order_api::build(sdk, env).await),
        "order-saga" => shared(order_saga::build(sdk, env).await),
        "inventory" => shared(inventory::build(sdk, env).await),
        "payment" => shared(payment::build(sdk, env).await),
        "delivery" => shared(delivery::build(sdk, env).await),
        "notification" => shared(notification::build(sdk, env).await),
        other => return Err(Error::UnknownFunction(other.to_owned())),
    };
    built.map_err(|source| Error::Config {
        function: binary.to_owned(),
        source,
    })
}

/// Why an invocation failed (Lambda would report a function error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    #[error("function error: {0}")]
    Failed(String),
    #[error("function crashed: {0}")]
    Crashed(String),
    #[error("task timed out after {0:?}")]
    TimedOut(Duration),
}

/// A function as the local "Lambda service" sees it.
#[derive(Clone)]
pub struct LocalFunction {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    pub timeout: Duration,
    pub handler: Arc<dyn Function>,
    config: Arc<lambda_runtime::Config>,
}

impl std::fmt::Debug for LocalFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFunction")
            .field("logical_id", &self.logical_id)
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LocalFunction {
    pub fn new(info: &FunctionInfo, handler: Arc<dyn Function>) -> LocalFunction {
        let memory = info
            .env
            .get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|m| m.parse().ok())
            .unwrap_or(128);
        LocalFunction {
            logical_id: info.logical_id.clone(),
            name: info.name.clone(),
            arn: info.arn.clone(),
            timeout: info.timeout,
            handler,
            config: Arc::new(lambda_runtime::Config {
                function_name: info.name.clone(),
                memory,
                version: "$LATEST".into(),
                log_stream: "local".into(),
                log_group: format!("/aws/lambda/{}", info.name),
            }),
        }
    }

    /// A function outside any template (tests): `name`, a 10 s timeout.
    pub fn standalone(name: &str, handler: Arc<dyn Function>) -> LocalFunction {
        LocalFunction {
            logical_id: name.to_owned(),
            name: name.to_owned(),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            timeout: Duration::from_secs(10),
            handler,
            config: Arc::new(lambda_runtime::Config {
                function_name: name.to_owned(),
                memory: 128,
                version: "$LATEST".into(),
                ..Default::default()
            }),
        }
    }

    /// Invokes with a raw Lambda event; the function's JSON answer, or why it failed.
    pub async fn invoke(&self, event: Value) -> std::result::Result<Value, InvokeError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let deadline = SystemTime::now() + self.timeout;
        let mut ctx = lambda_runtime::Context::default();
        ctx.request_id = request_id.clone();
        ctx.deadline = deadline
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        ctx.invoked_function_arn = self.arn.clone();
        ctx.env_config = self.config.clone();
        // As Lambda does, a trace header per invocation: a new trace, which the runtime's
        // spans leave for the order's own where a message or stream record carries one.
        ctx.xray_trace_id = Some(dishpatch::runtime::trace::TraceContext::root().xray());

        let handler = self.handler.clone();
        // A task of its own: a panic is a crashed invocation, not a crashed poller.
        let task =
            tokio::spawn(async move { dishpatch::runtime::invoke(&*handler, event, ctx).await });
        let abort = task.abort_handle();
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => {
                tracing::warn!(function = %self.name, request_id, error = %e, "invocation failed");
                Err(InvokeError::Failed(e.to_string()))
            }
            Ok(Err(join)) => {
                let msg = if join.is_panic() {
                    let p = join.into_panic();
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into())
                } else {
                    join.to_string()
                };
                tracing::error!(function = %self.name, request_id, error = %msg, "invocation crashed");
                Err(InvokeError::Crashed(msg))
            }
            Err(_) => {
                abort.abort();
                tracing::error!(function = %self.name, request_id, timeout = ?self.timeout, "invocation timed out");
                Err(InvokeError::TimedOut(self.timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function the template declares but the registry does not link would only
    /// show when a stack starts.
    #[tokio::test]
    async fn the_registry_builds_every_function_of_the_template() {
        let sdk = SdkConfig::builder().build();
        let env = Env::from_map(Default::default());
        for binary in dishpatch_template::embedded_binaries() {
            let built = build(binary, &sdk, &env).await;
            assert!(
                !matches!(built, Err(Error::UnknownFunction(_))),
                "{binary}: {:?}",
                built.err()
            );
        }
        assert!(matches!(
            build("no-such-function", &sdk, &env).await,
            Err(Error::UnknownFunction(_))
        ));
    }
}
