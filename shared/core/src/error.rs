//! API errors with stable codes, rendered as RFC 9457 `application/problem+json`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! problem_codes {
    ($($(#[$doc:meta])* $name:ident => $code:literal),* $(,)?) => {
        /// Every code a [`Problem`] carries. Clients branch on these strings, so a
        /// variant's string never changes once shipped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ProblemCode { $($(#[$doc])* $name),* }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$name),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(ProblemCode::$name => $code),* }
            }
        }
    };
}

problem_codes! {
    ValidationFailed => "VALIDATION_FAILED",
    Unauthorized => "UNAUTHORIZED",
    Forbidden => "FORBIDDEN",
    NotFound => "NOT_FOUND",
    Internal => "INTERNAL",
    Unavailable => "UNAVAILABLE",
    PayloadTooLarge => "PAYLOAD_TOO_LARGE",
    /// A conditional write lost to another writer: the client may retry.
    ConcurrentUpdate => "CONCURRENT_UPDATE",
    RequestInProgress => "REQUEST_IN_PROGRESS",
    IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
    UnknownMenuItem => "UNKNOWN_MENU_ITEM",
    AmountTooLarge => "AMOUNT_TOO_LARGE",
    MixedCurrencies => "MIXED_CURRENCIES",
    OrderNotCancellable => "ORDER_NOT_CANCELLABLE",
    MenuFull => "MENU_FULL",
    DeliveryCancelled => "DELIVERY_CANCELLED",
    /// A courier with an active delivery cannot go off shift until it is done.
    CourierOnDelivery => "COURIER_ON_DELIVERY",
    CardDeclined => "CARD_DECLINED",
    /// Also the reason stored on a top-up refunded for this cause.
    CurrencyMismatch => "CURRENCY_MISMATCH",
    /// Also the reason stored on a top-up refunded for this cause.
    WalletLimitExceeded => "WALLET_LIMIT_EXCEEDED",
    PaymentProviderUnavailable => "PAYMENT_PROVIDER_UNAVAILABLE",
}

impl ProblemCode {
    /// The problem's `type` URI: the code in lower kebab case.
    pub fn type_uri(self) -> String {
        format!(
            "https://dishpatch.dev/problems/{}",
            self.as_str().to_lowercase().replace('_', "-")
        )
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable: clients branch on this, never on `detail`.
    pub code: ProblemCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds the client should wait before retrying (a `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: u16, code: ProblemCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: code.type_uri(),
            title: title_for(status).to_owned(),
            status,
            code,
            detail: detail.into(),
            field: None,
            request_id: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        Problem::new(400, ProblemCode::ValidationFailed, detail).with_field(field)
    }
    pub fn unauthorized() -> Self {
        Problem::new(
            401,
            ProblemCode::Unauthorized,
            "a valid bearer token is required",
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(403, ProblemCode::Forbidden, detail)
    }
    pub fn not_found(what: &str) -> Self {
        Problem::new(404, ProblemCode::NotFound, format!("{what} was not found"))
    }
    pub fn conflict(code: ProblemCode, detail: impl Into<String>) -> Self {
        Problem::new(409, code, detail)
    }
    pub fn unprocessable(code: ProblemCode, detail: impl Into<String>) -> Self {
        Problem::new(422, code, detail)
    }
    pub fn internal() -> Self {
        Problem::new(
            500,
            ProblemCode::Internal,
            "the request could not be completed; it is safe to retry",
        )
    }
    pub fn unavailable() -> Self {
        Problem::new(
            503,
            ProblemCode::Unavailable,
            "a dependency is unavailable; retry later",
        )
    }
}

fn title_for(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        402 => "Payment Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Errors from storage and messaging adapters, free of SDK types.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in another state (duplicate, stale, taken).
    #[error("condition failed: {0}")]
    Conflict(String),
    #[error("stored item could not be read: {0}")]
    Corrupt(String),
    #[error("AWS call failed: {0}")]
    Aws(String),
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        match e {
            StoreError::Conflict(_) => {
                Problem::conflict(ProblemCode::ConcurrentUpdate, "the resource changed; retry")
            }
            StoreError::Corrupt(_) => Problem::internal(),
            StoreError::Aws(_) => Problem::unavailable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_serializes_as_its_string() {
        for &code in ProblemCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::from(code.as_str()), "{code:?}");
            assert_eq!(serde_json::from_value::<ProblemCode>(json).unwrap(), code);
        }
        let mut seen: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ProblemCode::ALL.len(), "codes are distinct");
    }

    #[test]
    fn renders_the_code_and_its_type_uri() {
        let p = Problem::conflict(ProblemCode::ConcurrentUpdate, "retry");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["code"], "CONCURRENT_UPDATE");
        assert_eq!(
            json["type"],
            "https://dishpatch.dev/problems/concurrent-update"
        );
        assert_eq!(json["title"], "Conflict");
    }
}
