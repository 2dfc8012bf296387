//! What other crates reuse of the benchmark: its local Lambda Runtime API.

pub mod runtime_api;

/// The type of an invocation's event, for callers without their own `bytes` dependency.
pub use bytes::Bytes;
