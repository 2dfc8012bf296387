//! The card provider's request and retry counts: every attempt is one request
//! (`ProviderRequests` by result), and every attempt after the first a retry
//! (`ProviderRetries` by its number), so the retry rate is retries over requests.

use super::AttemptError;
use dishpatch::emf::metrics::{PROVIDER_REQUESTS, PROVIDER_RETRIES};
use dishpatch::emf::Line;
use dishpatch::resilience::BreakerError;

/// What an attempt came to: SUCCESS (an answer, a decline included), TIMEOUT (no answer
/// in time, or no time left to ask), REJECTED (the open breaker refused it, nothing was
/// sent) or FAILURE (no answer, an error status, an unreadable answer).
pub(super) fn result<T>(attempt: &Result<T, BreakerError<AttemptError>>) -> &'static str {
    match attempt {
        Ok(_) => "SUCCESS",
        Err(BreakerError::Rejected(_)) => "REJECTED",
        Err(BreakerError::Call(AttemptError::Timeout | AttemptError::NoTimeLeft)) => "TIMEOUT",
        Err(BreakerError::Call(_)) => "FAILURE",
    }
}

/// Emits attempt `n` (0 the first) of `operation` and its result.
pub(super) fn attempted<T>(
    n: u32,
    operation: &str,
    idempotency_key: &str,
    attempt: &Result<T, BreakerError<AttemptError>>,
) {
    let mut line = Line::new().count(&PROVIDER_REQUESTS, [result(attempt)]);
    if n > 0 {
        line = line.count(&PROVIDER_RETRIES, [n.to_string()]);
    }
    line.property("provider", super::PROVIDER)
        .property("operation", operation)
        .property("idempotencyKey", idempotency_key)
        .emit();
}
