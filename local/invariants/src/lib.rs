//! `dishpatch-invariants`: the invariant checker. It scans a stack's tables and reports
//! every state that breaks one of the invariants (1–8) of `docs/architecture.md`, as far
//! as stored state can show them.
//!
//! It reads items as JSON views and finds a stack through the template
//! ([`dishpatch_template`]), so it depends on the AWS SDKs and nothing of the emulator,
//! the function crates or their HTTP servers: the operator CLI checks a deployed stack
//! with it, and the local stack checks itself with the same code.
//!
//! ```no_run
//! # async fn t(sdk: &aws_config::SdkConfig) -> dishpatch_invariants::Result<()> {
//! use dishpatch_invariants::{CheckOptions, Checker};
//! let template = dishpatch_template::Template::embedded().unwrap();
//! // Or Checker::for_stack / Checker::with_names / the table-only `check`.
//! let checker = Checker::for_prefix(sdk, &template, "dishpatch").await?;
//! // Mid-flight: only what holds at every instant.
//! let report = checker.check(&CheckOptions::default()).await?;
//! // After the traffic stopped: wait until nothing moves, then check everything.
//! let report = checker
//!     .check_at_quiescence(&CheckOptions::quiescent(), std::time::Duration::from_secs(30))
//!     .await?;
//! assert!(report.is_clean(), "{report}");
//! # Ok(()) }
//! ```
//!
//!
//! It reads every item with a paginated, strongly consistent `Scan` into small local
//! structs (`#[serde(default)]`, so extra attributes and new record kinds are tolerated)
//! and never writes anything. Items it cannot read are reported (`records.readable`).
//! "At most one reservation, payment and delivery per order" needs no check: the keys
//! (`PAYMENT#{orderId}`, ...) make a second one impossible; what is checked is that the
//! one record moved the right amount and is in a state its order allows.
//!
//! **Two kinds of check.** A `Scan` is not a snapshot and the saga moves one record after
//! another, so a check that compares two records can only be trusted when nothing moves:
//!
//! * *always*: what one item shows on its own — stock counters conserved and never
//!   negative, wallets never negative, a courier's status agrees with its own
//!   `activeOrderId`/`gsi1pk` — and comparisons with facts that never change once
//!   written: a payment's amount and customer against its order, a reservation's lines
//!   against its order's lines, every record belongs to an existing order (orders are
//!   scanned last, and never deleted), no order is still PENDING with a captured payment;
//! * *at quiescence* ([`CheckOptions::expect_quiescent`]): additionally every order is
//!   terminal, the reservation lines add up to each item's `reserved` and `sold`
//!   counters, a CANCELLED order holds no stock, no captured money and no courier, a
//!   DELIVERED order has a SOLD reservation, a captured wallet payment and a DELIVERED
//!   delivery, a BUSY courier has exactly the one DISPATCHED delivery its
//!   `activeOrderId` names (and no courier has two), wallets equal their initial
//!   balance minus what is captured (when [`CheckOptions::initial_balances`] is given),
//!   every COMPENSATION_FAILED order was alerted, and — with a [`Checker`], which also
//!   knows the queues — no message sits in a DLQ except for a COMPENSATION_FAILED order
//!   (the DLQs are read and their messages made visible again: see [`peek`]).
//!
//! **Ops alerts.** The `CompensationFailed` alerts go to the `OpsAlertsTopic` SNS topic,
//! whose history cannot be read back. The caller supplies the alerted order ids
//! ([`CheckOptions::alerted_orders`]); on the local stack an [`AlertTap`] (a queue
//! subscribed to the topic, which the local stack creates by default) collects
//! them. Without that list, COMPENSATION_FAILED orders are listed in
//! [`Report::unverified_alerts`] rather than reported as violations.
//!
//! **Money.** A wallet's initial balance is not stored, so without
//! [`CheckOptions::initial_balances`] the checker reports, per customer, the balance
//! and what is currently captured (charged and not refunded), refunded and declined;
//! with it, `balance == initial − captured` (this assumes no top-ups since the initial
//! balances were taken).
//!
//! The modules: [`invariant`] names each invariant; [`report`] is what a check found;
//! [`options`] what to check; `views` and `state` hold what was read; `checks` the
//! checks, one family each; [`tables`] the table-only check; [`checker`] the checker of a
//! stack's tables and queues; [`messages`] reads queues without consuming them;
//! [`alert_tap`] reads the ops alerts back.

pub mod alert_tap;
pub mod checker;
mod checks;
pub mod invariant;
pub mod messages;
pub mod options;
pub mod report;
mod state;
pub mod tables;
mod views;

pub use alert_tap::{AlertTap, ALERT_TAP_QUEUE, OPS_ALERTS_TOPIC};
pub use checker::{Checker, Depth};
pub use invariant::Invariant;
pub use messages::{order_id_of, peek};
pub use options::{CheckOptions, ProviderCharge};
pub use report::{CourierState, CustomerMoney, OrderRecords, Report, Scanned, Stock, Violation};
pub use tables::{check, Tables, TABLE_IDS};

/// One stored item, as the SDK returns it.
type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Errors of the checker: AWS calls that failed, and stacks that cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Aws(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An AWS SDK error with its full context (the SDK's `Display` alone says little).
    pub(crate) fn aws<E>(context: impl std::fmt::Display, err: E) -> Error
    where
        E: std::error::Error,
    {
        Error::Aws(aws_context(context, err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An AWS SDK error with its full context, as one line (the SDK's `Display` alone says
/// little); the stack and the operator CLI report their AWS failures the same way.
pub fn aws_context<E: std::error::Error>(context: impl std::fmt::Display, err: E) -> String {
    format!(
        "{context}: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(err)
    )
}
