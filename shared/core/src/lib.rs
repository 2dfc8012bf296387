//! The pure dishpatch domain: what every function computes without I/O.
//!
//! [`money`], [`order`], [`menu`], [`pricing`], [`validation`], the message
//! [`envelope`], the [`saga`] state machine, [`orchestration`] (a saga transition in,
//! the next order version and its [`outbox`] out), API [`error`]s and function
//! [`config`] as a plain map; the table [`keys`] computed from an id; the names other
//! programs read back: [`metrics`] and the attributes of a [`parked`] message.
//!
//! This crate may not depend on any AWS, Lambda or HTTP crate, nor on an async
//! runtime: what lives here is testable as plain functions, and `tests/core_is_pure.rs`
//! fails the build's tests if such a dependency creeps in. Adapters and entry points
//! live in `dishpatch-shared`, which builds on this crate and re-exports it.

pub mod config;
pub mod envelope;
pub mod error;
/// A sample order for tests; not part of any deployed binary.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod keys;
pub mod menu;
pub mod metrics;
pub mod money;
pub mod orchestration;
pub mod order;
pub mod outbox;
pub mod parked;
pub mod pricing;
pub mod saga;
pub mod stored;
pub mod validation;
