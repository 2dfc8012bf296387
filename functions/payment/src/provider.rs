//! The card payment provider (PSP), as the payment step sees it: a port, so handlers are
//! tested against a fake and deploy against [`crate::psp::HttpPaymentProvider`].
//!
//! Every call carries an idempotency key made from domain ids ([`capture_key`],
//! [`refund_key`]), never from a message id: the provider deduplicates on it, so a call
//! repeated after a lost answer, by a redelivered command or by a refund that has to learn
//! a capture's outcome, acts at most once and answers with the first call's result.
//!
//! An `Err` means "no decision": the provider did not answer, answered with an error a
//! repeat might get past (after the retries the time allowed), or was not called at all
//! (open breaker, no configuration). Declines are answers, never errors.

use dishpatch::money::Money;
use dishpatch::resilience::Snapshot;
use std::time::Duration;

/// The idempotency key of an order's card charge.
pub fn capture_key(order_id: &str) -> String {
    format!("{order_id}:capture")
}

/// The idempotency key of an order's card refund (at most one per order).
pub fn refund_key(order_id: &str) -> String {
    format!("{order_id}:refund")
}

/// Authorize and capture in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The provider's `reference`.
    pub order_id: String,
    pub amount: Money,
    pub card_token: String,
    pub idempotency_key: String,
}

impl Charge {
    /// The order's charge, keyed [`capture_key`].
    pub fn for_order(order_id: &str, amount: Money, card_token: &str) -> Self {
        Charge {
            order_id: order_id.to_owned(),
            amount,
            card_token: card_token.to_owned(),
            idempotency_key: capture_key(order_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken.
    Captured { charge_id: String },
    /// The provider refused the card (a stable lower-case code such as
    /// `insufficient_funds`, `card_stolen`, `card_declined`): nothing was taken, and
    /// asking again would not change the answer.
    Declined { code: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money is on its way back.
    Refunded { refund_id: String },
    /// The provider knows no such charge (404): our record and the provider disagree.
    UnknownCharge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer (network, timeout) or 408 / 429 / 5xx, after the retries the time allowed.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The circuit breaker is open: the provider was not called.
    #[error("payment provider circuit open; retry in {}s", retry_after.as_secs())]
    CircuitOpen { retry_after: Duration },
    /// An error answer a repeat will not fix by itself (401, 403, 404 on a charge, 409):
    /// credentials, configuration or a conflicting request. Operators must look.
    #[error("payment provider refused the request with {status}: {detail}")]
    Refused { status: u16, detail: String },
    /// The adapter cannot call the provider (no base URL, no API key).
    #[error("payment provider not configured: {0}")]
    Config(String),
}

impl ProviderError {
    /// Worth an operator's attention (logged as an error), as opposed to an outage that
    /// the breaker and retries ride out.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            ProviderError::Refused { .. } | ProviderError::Config(_)
        )
    }
}

#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Charges `charge.amount` to the card, deduplicated on `charge.idempotency_key`: a
    /// repeat with the same key returns the first charge without charging again.
    async fn authorize_capture(&self, charge: &Charge) -> Result<ChargeOutcome, ProviderError>;

    /// Refunds `amount` of the charge, deduplicated on `idempotency_key` the same way.
    async fn refund(
        &self,
        charge_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundOutcome, ProviderError>;

    /// The provider's circuit breaker, where it has one (for operator tools; its
    /// transitions are also logged and emitted as EMF metrics).
    fn breaker_snapshot(&self) -> Option<Snapshot> {
        None
    }
}

/// The provider when none is configured (no `PSP_BASE_URL`): every card call fails as
/// "not configured", so card payments wait (the message is retried) instead of being
/// declined, and wallet payments are unaffected.
#[derive(Debug, Clone)]
pub struct UnconfiguredProvider(pub String);

#[async_trait::async_trait]
impl PaymentProvider for UnconfiguredProvider {
    async fn authorize_capture(&self, _: &Charge) -> Result<ChargeOutcome, ProviderError> {
        Err(ProviderError::Config(self.0.clone()))
    }

    async fn refund(&self, _: &str, _: &Money, _: &str) -> Result<RefundOutcome, ProviderError> {
        Err(ProviderError::Config(self.0.clone()))
    }
}
