//! The dishpatch local stack: the whole system on one laptop, against an AWS emulator
//! (moto server) for DynamoDB, SQS and SNS.
//!
//! * [`template`] (the `dishpatch-template` crate) reads `template.yaml`, the single
//!   source of truth for the topology;
//! * [`provision`] creates every table, topic, queue (with its DLQ and redrive policy),
//!   subscription (with its filter policy) from it, under a name prefix, and resolves
//!   each function's environment;
//! * [`functions`] builds the real function crates in-process with that environment;
//! * [`esm`] emulates Lambda's event-source mappings (SQS and DynamoDB stream pollers
//!   with batch size, batching window and partial-batch responses);
//! * [`gateway`] emulates the HTTP API (routes, payload v2, JWT authorizer);
//! * [`tokens`] mints dev JWTs; [`seed`] writes demo data; [`stack`] ties it all
//!   together as [`LocalStack`]; [`testing`] starts a moto server for tests;
//! * [`invariants`] (the `dishpatch-invariants` crate) scans a stack's tables and
//!   reports every broken invariant (also `dishpatch invariants check`, the operator
//!   CLI of the `dishpatch-ops` crate); [`faults`] wraps handlers to inject faults;
//! * [`awsproxy`] sits between the functions and the emulator (opt-in): counts AWS calls,
//!   meters DynamoDB request units, injects AWS errors and throttling, and records each
//!   call's trace header;
//! * [`traces`] keeps the spans the functions record, served at `/_local/traces`;
//!   the operator console (the `dishpatch-console` crate) is mounted at `/console/` and
//!   the API description ([`apidocs`]) at `/openapi.json` and `/docs`;
//! * [`envfiles`] writes each function's environment for `cargo lambda watch`.
//!
//! Every function is invoked through [`dishpatch::runtime::invoke`] with the exact JSON
//! event AWS would send, so the dispatch code that runs here is the code that deploys.
//!
//! In tests, one stack per test with a unique prefix (the emulator is shared):
//!
//! ```no_run
//! # async fn t() {
//! use dishpatch_local::{testing, tokens, LocalStack, LocalStackOptions};
//! let local = LocalStack::start(
//!     LocalStackOptions::new(testing::unique_prefix("my-test"))
//!         .endpoint(testing::moto()) // AWS_ENDPOINT_URL, or a moto started for this process
//!         .retry_delay(std::time::Duration::ZERO),
//! )
//! .await
//! .unwrap();
//! let token = tokens::mint("alice", &["CUSTOMER"]).unwrap();
//! let orders = format!("{}/v1/orders", local.url()); // call with `Authorization: Bearer {token}`
//! let table = local.stack.table_name("OrdersTable"); // physical names, ARNs, URLs, envs
//! # let _ = (token, orders, table);
//! local.shutdown();
//! # }
//! ```
//!
//! Known differences from AWS: stream checkpoints live in memory (restarting `up`
//! against the same emulator and prefix replays each stream from `TRIM_HORIZON`; the
//! handlers are idempotent, or use a fresh prefix); batching windows are capped at
//! 100 ms; one concurrent invocation per event source; no throttling; every authorizer
//! is the dev-key JWT authorizer.
//!
//! What it may depend on: the six function crates (it hosts them), the shared crate, the
//! template reader, the invariant checker, the operator console, the card sandbox and
//! the emulator starter. It
//! is the one crate that links all of them; nothing deployed depends on it, and the
//! operator CLI may not (its dependency test checks).

pub mod apidocs;
pub mod awsproxy;
pub mod cloudwatch;
pub mod envfiles;
pub mod esm;
pub mod faults;
pub mod functions;
pub mod gateway;
pub mod provision;
pub mod schedule;
pub mod sdk;
pub mod seed;
pub mod serve;
pub mod soak;
pub mod stack;
pub mod testing;
pub mod tokens;
pub mod traces;

pub use dishpatch_invariants as invariants;
pub use dishpatch_template as template;
pub use provision::Stack;
pub use stack::{LocalStack, LocalStackOptions};

/// Errors of the local stack.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(transparent)]
    Invariants(#[from] invariants::Error),
    #[error("{0}")]
    Aws(String),
    #[error("function {function}: {source}")]
    Config {
        function: String,
        source: dishpatch::config::ConfigError,
    },
    #[error(
        "no function crate {0:?} in the local registry; add it to dishpatch_local::functions::build"
    )]
    UnknownFunction(String),
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
