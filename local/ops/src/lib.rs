//! `dishpatch-ops`: the operator tools behind the `dishpatch` CLI — dead-letter queues
//! (list, show, redrive), following an order's timeline, the invariant checker, the
//! payment breaker — against a deployed stack or the local one.
//!
//! It targets real AWS, so it depends on the template reader ([`dishpatch_template`]),
//! the checker ([`dishpatch_invariants`]), the AWS SDKs, clap, the core crate for the
//! contracts it reads (dead-letter attributes, metric names, message types) and the SDK
//! crate for the configuration and logging the functions use; never on the emulator,
//! the function crates, the shared crate and its Lambda runtime, the card sandbox or
//! plotting (`tests/dependencies.rs` checks).
//!
//! Every command is a library call on a [`Target`] (an SDK configuration, the template,
//! and how to find the physical resources) so tests drive them without the binary.
//! Resources are named by their `template.yaml` logical ids. Locally they are found by
//! the local stack's naming (`{prefix}-{LogicalId}`, see
//! [`dishpatch_template::names`]); against a deployed stack (whose names
//! CloudFormation generates) they are looked up by stack name ([`Target::with_stack`],
//! `--stack`), or given one by one with [`Target::with_queue_url`] /
//! [`Target::with_table`] (`--queue-url` / `--table`).
//!
//! * [`target`]: where the commands act;
//! * [`dlq`], [`orders`], [`breaker`]: the commands;
//! * [`cli`]: parsing, running and printing; [`sdk`]: the configuration for `--endpoint`.

pub mod breaker;
pub mod cli;
pub mod dlq;
pub mod orders;
pub mod sdk;
pub mod target;

pub use target::{StackResource, Target};

/// Errors of the operator tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] dishpatch_template::TemplateError),
    #[error(transparent)]
    Invariants(#[from] dishpatch_invariants::Error),
    #[error("{0}")]
    Aws(String),
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
        Error::Aws(dishpatch_invariants::aws_context(context, err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
