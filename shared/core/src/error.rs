//! API errors with stable codes, rendered as RFC 9457 `application/problem+json`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable: clients branch on this, never on `detail`.
    pub code: &'static str,
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
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!(
                "https://dishpatch.dev/problems/{}",
                code.to_lowercase().replace('_', "-")
            ),
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
        Problem::new(400, "VALIDATION_FAILED", detail).with_field(field)
    }
    pub fn unauthorized() -> Self {
        Problem::new(401, "UNAUTHORIZED", "a valid bearer token is required")
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(403, "FORBIDDEN", detail)
    }
    pub fn not_found(what: &str) -> Self {
        Problem::new(404, "NOT_FOUND", format!("{what} was not found"))
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(409, code, detail)
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(422, code, detail)
    }
    pub fn internal() -> Self {
        Problem::new(
            500,
            "INTERNAL",
            "the request could not be completed; it is safe to retry",
        )
    }
    pub fn unavailable() -> Self {
        Problem::new(
            503,
            "UNAVAILABLE",
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
                Problem::conflict("CONCURRENT_UPDATE", "the resource changed; retry")
            }
            StoreError::Corrupt(_) => Problem::internal(),
            StoreError::Aws(_) => Problem::unavailable(),
        }
    }
}
