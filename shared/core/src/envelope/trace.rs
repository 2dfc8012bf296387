//! Where a new envelope's `traceparent` comes from: the trace of the code making it.
//!
//! Core knows no runtime, so the runtime names the source once per process
//! ([`set_source`]); until then (core's own tests, tools) envelopes carry none. A
//! message made while handling another continues its cause's trace when there is no
//! source ([`super::Envelope::follow`]).

use std::sync::OnceLock;

static SOURCE: OnceLock<fn() -> Option<String>> = OnceLock::new();

/// Names the function giving the current trace as a W3C `traceparent`. The first
/// call wins: one runtime per process.
pub fn set_source(source: fn() -> Option<String>) {
    let _ = SOURCE.set(source);
}

/// The current `traceparent`, if a source is set and there is a trace.
pub fn current() -> Option<String> {
    SOURCE.get().and_then(|source| source())
}
