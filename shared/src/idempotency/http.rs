//! The `Idempotency-Key` header on API routes: the same key and body get the same
//! response (status, headers, body) without running the route again; the same key with
//! another body is `422 IDEMPOTENCY_KEY_REUSED`; a duplicate while the first is running
//! is `409 REQUEST_IN_PROGRESS` with `Retry-After`. Only `2xx` responses are stored:
//! anything else releases the key, so a corrected request may use it.

use super::{Handled, Idempotency, IdempotencyError};
use crate::error::{Problem, ProblemCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

pub const HEADER: &str = "Idempotency-Key";
pub const MAX_KEY_LEN: usize = 128;
/// Seconds a client is told to wait before retrying a request still in progress.
pub const RETRY_AFTER_SECS: u32 = 1;
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The `Idempotency-Key` header: `None` when absent; a `400` problem naming the header
/// unless it is 1..=128 printable ASCII characters.
pub fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    let mut values = req.headers().get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        Problem::bad_request(
            HEADER,
            format!("{HEADER} must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        )
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(HEADER, format!("send one {HEADER}")));
    }
    let key = value.to_str().map_err(|_| invalid())?;
    if is_valid_key(key) {
        Ok(Some(key.to_owned()))
    } else {
        Err(invalid())
    }
}

pub fn is_valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// A response as stored in `data`: status, headers, body text (byte for byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

impl StoredResponse {
    pub fn from_response(resp: &Response<Body>) -> Self {
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = match resp.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        StoredResponse {
            status: resp.status().as_u16(),
            headers,
            body,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut builder = Response::builder().status(self.status);
        for (k, v) in &self.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
            .body(if self.body.is_empty() {
                Body::Empty
            } else {
                Body::Text(self.body)
            })
            .unwrap_or_else(|_| crate::http::json(500, &Problem::internal()))
    }
}

/// Why a route's answer was not stored.
enum NotStored {
    Problem(Problem),
    Unsuccessful(Response<Body>),
}

/// `resp` marked as the replay of an earlier answer (`Idempotent-Replayed: true`).
pub fn replayed(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(
        REPLAYED_HEADER,
        lambda_http::http::HeaderValue::from_static("true"),
    );
    resp
}

pub fn in_progress_problem() -> Problem {
    Problem::conflict(
        ProblemCode::RequestInProgress,
        format!("a request with this {HEADER} is still being processed; retry shortly"),
    )
    .with_field(HEADER)
}

pub fn key_reused_problem() -> Problem {
    Problem::unprocessable(
        ProblemCode::IdempotencyKeyReused,
        format!("this {HEADER} was already used with a different request body"),
    )
    .with_field(HEADER)
}

/// Runs `route` once per `key` (e.g. `[caller, Idempotency-Key]`) and `payload` (the
/// request body as JSON), with the in-progress expiry from the request's Lambda context.
pub async fn respond<F, Fut>(
    idem: &Idempotency,
    req: &Request,
    key: &[&str],
    payload: &serde_json::Value,
    route: F,
) -> Result<Response<Body>, Problem>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response<Body>, Problem>>,
{
    let remaining = super::remaining_time(req.lambda_context_ref());
    let outcome = idem
        .run(key, payload, remaining, || async {
            match route().await {
                Ok(resp) if resp.status().is_success() => Ok(StoredResponse::from_response(&resp)),
                Ok(resp) => Err(NotStored::Unsuccessful(resp)),
                Err(p) => Err(NotStored::Problem(p)),
            }
        })
        .await;
    match outcome {
        Ok(Handled::Ran(stored)) => Ok(stored.into_response()),
        Ok(Handled::Replayed(stored)) => Ok(replayed(stored.into_response())),
        Err(IdempotencyError::InProgress) => {
            Err(in_progress_problem().with_retry_after(u64::from(RETRY_AFTER_SECS)))
        }
        Err(IdempotencyError::PayloadMismatch) => Err(key_reused_problem()),
        Err(IdempotencyError::Handler(NotStored::Problem(p))) => Err(p),
        Err(IdempotencyError::Handler(NotStored::Unsuccessful(resp))) => Ok(resp),
        Err(IdempotencyError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key(&"k".repeat(128)));
        assert!(is_valid_key("6f1c5e0e-3b1e-4c52-9d1e-2f9b3c1d0a77"));
        assert!(is_valid_key("with space ~!"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key(&"k".repeat(129)));
        assert!(!is_valid_key("tab\there"));
        assert!(!is_valid_key("é"));
        assert!(!is_valid_key("del\x7f"));
    }

    #[test]
    fn stored_response_round_trips() {
        let mut resp = crate::http::json(201, &serde_json::json!({"b": 1, "a": 2}));
        resp.headers_mut().insert(
            "location",
            lambda_http::http::HeaderValue::from_static("/v1/orders/o-1"),
        );
        let stored = StoredResponse::from_response(&resp);
        let text = serde_json::to_string(&stored).unwrap();
        let back: StoredResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stored);
        let again = back.into_response();
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["location"], "/v1/orders/o-1");
        assert_eq!(again.headers()["content-type"], "application/json");
        assert_eq!(again.body(), resp.body());
    }
}
