//! The dishpatch shared crate: what every function agrees on.
//!
//! It builds on `dishpatch-core`, the pure domain, and re-exports its modules under
//! the same paths: [`money`], [`order`], [`menu`], [`validation`], [`pricing`],
//! [`envelope`], [`saga`], [`orchestration`], [`outbox`], [`error`], [`keys`].
//! What it adds are the edges, where I/O happens: [`http`] (API conventions),
//! [`runtime`] (one entry point per Lambda), [`aws`] (adapters behind narrow ports),
//! [`orders`] (the order store), [`transition`] (a saga step on a stored order,
//! retried on a conflicting write), [`idempotency`], [`resilience`], [`emf`] (metrics
//! as CloudWatch EMF lines), [`config`] (the environment and the SDK configuration), and
//! from `dishpatch-sdk` [`logging`] and [`tls`].
//!
//! It may depend on core, sdk, the Lambda runtime and the AWS SDK clients the functions
//! share (DynamoDB, SNS, SQS); never on a function crate or on anything under `local/`.
//! Test support (`testing`, `http_fuzz`) is behind the `testing` feature.

pub use dishpatch_core::{
    envelope, error, keys, menu, money, orchestration, order, outbox, pricing, saga, stored,
    validation,
};
pub use dishpatch_sdk::{logging, tls};

pub mod aws;
pub mod config;
pub mod emf;
pub mod http;
#[cfg(any(test, feature = "testing"))]
pub mod http_fuzz;
pub mod idempotency;
pub mod orders;
pub mod resilience;
pub mod runtime;
/// Fakes and emulator helpers for tests; not part of any deployed binary.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transition;
pub mod worker;
