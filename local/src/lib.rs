//! The dishpatch local stack: the whole system on one laptop, against an AWS emulator
//! (moto server) for DynamoDB, SQS and SNS.
//!
//! * [`template`] reads `template.yaml`, the single source of truth for the topology;
//! * [`provision`] creates every table, topic, queue (with its DLQ and redrive policy),
//!   subscription (with its filter policy) from it, under a name prefix, and resolves
//!   each function's environment;
//! * [`functions`] builds the real function crates in-process with that environment;
//! * [`esm`] emulates Lambda's event-source mappings (SQS and DynamoDB stream pollers
//!   with batch size, batching window and partial-batch responses);
//! * [`gateway`] emulates the HTTP API (routes, payload v2, JWT authorizer);
//! * [`tokens`] mints dev JWTs; [`seed`] writes demo data; [`stack`] ties it all
//!   together as [`LocalStack`]; [`testing`] starts a moto server for tests.
//!
//! Every function is invoked through [`dishpatch::runtime::invoke`] with the exact JSON
//! event AWS would send, so the dispatch code that runs here is the code that deploys.

pub mod esm;
pub mod functions;
pub mod gateway;
pub mod provision;
pub mod sdk;
pub mod seed;
pub mod stack;
pub mod template;
pub mod testing;
pub mod tokens;

pub use provision::Stack;
pub use stack::{LocalStack, LocalStackOptions};

/// Errors of the local stack.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error("{0}")]
    Aws(String),
    #[error("function {function}: {source}")]
    Config {
        function: String,
        source: dishpatch::config::ConfigError,
    },
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// An AWS SDK error with its full context (the SDK's `Display` alone says little).
    pub(crate) fn aws<E>(context: impl std::fmt::Display, err: E) -> Error
    where
        E: std::error::Error,
    {
        Error::Aws(format!(
            "{context}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(err)
        ))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
