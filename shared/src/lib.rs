//! The dishpatch shared crate: what every function agrees on.
//!
//! Pure parts (no I/O, no AWS types): [`money`], [`order`], [`menu`], [`validation`],
//! [`pricing`], [`envelope`], [`saga`], [`error`].
//! Edges: [`http`] (API conventions), [`runtime`] (one entry point per Lambda),
//! [`aws`] (adapters behind narrow ports), [`config`], [`logging`].

pub mod aws;
pub mod config;
pub mod envelope;
pub mod error;
pub mod http;
#[cfg(any(test, feature = "testing"))]
pub mod http_fuzz;
pub mod idempotency;
pub mod logging;
pub mod menu;
pub mod money;
pub mod orchestration;
pub mod order;
pub mod orders;
pub mod pricing;
pub mod resilience;
pub mod runtime;
pub mod saga;
/// Fakes and emulator helpers for tests; not part of any deployed binary.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod validation;
