//! The card payment provider over HTTPS: the [`PaymentProvider`] adapter.
//!
//! Contract (`{base}` is `PSP_BASE_URL`; every call `Authorization: Bearer <key>` and
//! `Idempotency-Key: <key>`):
//!
//! * `POST {base}/v1/charges` `{amount, currency, cardToken, reference}` → `201`/`200`
//!   `{chargeId, status: "CAPTURED"}`; `402 {status: "DECLINED", code}` is a decline.
//! * `POST {base}/v1/charges/{chargeId}/refunds` `{amount}` → `201`/`200`
//!   `{refundId, status: "REFUNDED"}`; `404` for an unknown charge.
//!
//! Resilience, from `dishpatch::resilience` (read its module docs): each attempt has a
//! 5 s timeout ([`RetryPolicy::attempt_timeout`], shortened to the time left); a
//! failed attempt is retried after 500 ms, 1 s, 2 s (±20 % jitter) on no answer, 408,
//! 429 or 5xx — safe because every call carries an idempotency key — and never on a
//! decline; every attempt goes through one [`CircuitBreaker`] per provider, held by the
//! adapter (built once per container, so shared by its invocations), which fails fast
//! while open (`PSP_BREAKER_OPEN_SECONDS`, 30 s, read at cold start) and logs and emits
//! (EMF) its transitions. Every attempt is counted by result, and every retry by its
//! number ([`metrics`]). The retries stop at the invocation's deadline
//! ([`dishpatch::runtime::deadline`]) less a margin for the work after the call, or,
//! where the deadline is unknown, after a conservative default budget
//! ([`PspConfig::default_budget`], 8 s).
//!
//! Status mapping: `2xx` is the answer; `402` is a decline (`code` from the body); `400`
//! is a decline too (`code`, e.g. `unknown_card_token`, default `invalid_request`): the
//! provider refused the request before anything happened, and repeating it cannot
//! change that. `408`, `429`, `5xx`, timeouts and network errors are transient. Any
//! other status (`401`, `403`, `404` on a charge, `409`, `422` such as a key reused
//! with another body) is [`ProviderError::Refused`]: not retried, not a decline (money
//! may have been taken under that key), for an operator to look at.
//!
//! The API key is `PSP_API_KEY` if set, else the SecureString SSM parameter named by
//! `PSP_API_KEY_PARAMETER`, read (with decryption) on the first card call of the
//! container and kept for its life; an unreadable parameter fails that call as
//! not-configured and is tried again on the next, and never keeps wallet payments or the
//! HTTP routes from working.

use crate::provider::{Charge, ChargeOutcome, PaymentProvider, ProviderError, RefundOutcome};
use dishpatch::config::Env;
use dishpatch::money::Money;
use dishpatch::resilience::{
    retry, BreakerConfig, BreakerError, Call, CircuitBreaker, Classify, Clock, Deadline, Fault,
    RetryPolicy, Sleeper, SystemClock, TokioSleeper,
};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod metrics;

/// The breaker's (and the metrics') name for this provider.
pub const PROVIDER: &str = "psp";

#[derive(Debug, Clone, PartialEq)]
pub struct PspConfig {
    /// `PSP_BASE_URL`, e.g. `https://psp.example.com` (a path prefix is kept).
    pub base_url: String,
    pub policy: RetryPolicy,
    pub breaker: BreakerConfig,
    /// How long one provider call (with its retries) may take when the invocation's
    /// deadline is unknown: 8 s, as if only 8 s of a 10 s invocation were left.
    pub default_budget: Duration,
    /// Kept from the invocation's remaining time for the work after the call (the
    /// conditional write and the publish).
    pub margin: Duration,
    /// An attempt is not started with less time than this left.
    pub min_attempt: Duration,
}

/// The bounds of `PSP_BREAKER_OPEN_SECONDS`: at least a second, and no longer than the
/// saga waits for a capture (`STEP_TIMEOUT_SECONDS`, 300), past which an open breaker
/// would only time orders out.
pub const BREAKER_OPEN_SECONDS: std::ops::RangeInclusive<u64> = 1..=300;

impl PspConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        PspConfig {
            base_url: base_url.into(),
            policy: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            default_budget: Duration::from_secs(8),
            margin: Duration::from_secs(2),
            min_attempt: Duration::from_millis(500),
        }
    }

    /// As [`PspConfig::new`], with the breaker's open period from
    /// `PSP_BREAKER_OPEN_SECONDS` (30 unless set). Read once, when the container builds
    /// its provider; a value that is not a whole number keeps the default, and one out
    /// of [`BREAKER_OPEN_SECONDS`] is brought within it, each with a warning.
    pub fn from_env(base_url: impl Into<String>, env: &Env) -> Self {
        let mut config = PspConfig::new(base_url);
        if let Some(raw) = env.get("PSP_BREAKER_OPEN_SECONDS") {
            config.breaker.open_for = breaker_open_for(raw, config.breaker.open_for);
        }
        config
    }
}

/// `raw` seconds as the breaker's open period, within [`BREAKER_OPEN_SECONDS`];
/// `default` when it is not a whole number.
fn breaker_open_for(raw: &str, default: Duration) -> Duration {
    let Ok(secs) = raw.trim().parse::<u64>() else {
        tracing::warn!(
            value = raw,
            default_seconds = default.as_secs(),
            "PSP_BREAKER_OPEN_SECONDS is not a whole number of seconds: the default is kept"
        );
        return default;
    };
    let bounded = secs.clamp(*BREAKER_OPEN_SECONDS.start(), *BREAKER_OPEN_SECONDS.end());
    if bounded != secs {
        tracing::warn!(
            value = secs,
            used = bounded,
            "PSP_BREAKER_OPEN_SECONDS is out of bounds (1 to 300): the nearest bound is used"
        );
    }
    Duration::from_secs(bounded)
}

/// Where the API key comes from.
#[derive(Clone)]
pub enum ApiKey {
    /// Given directly (`PSP_API_KEY`: local stack, tests).
    Static(String),
    /// A SecureString parameter, read with decryption once per container.
    Ssm {
        client: aws_sdk_ssm::Client,
        parameter: String,
    },
    /// Neither is configured: card calls fail as not configured.
    Missing,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Static(_) => f.write_str("ApiKey::Static(<redacted>)"),
            ApiKey::Ssm { parameter, .. } => write!(f, "ApiKey::Ssm({parameter})"),
            ApiKey::Missing => f.write_str("ApiKey::Missing"),
        }
    }
}

impl ApiKey {
    /// `PSP_API_KEY` if set, else `PSP_API_KEY_PARAMETER` (read through SSM).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &Env) -> Self {
        if let Ok(key) = env.require("PSP_API_KEY") {
            return ApiKey::Static(key);
        }
        match env.require("PSP_API_KEY_PARAMETER") {
            Ok(parameter) => ApiKey::Ssm {
                client: aws_sdk_ssm::Client::new(sdk),
                parameter,
            },
            Err(_) => ApiKey::Missing,
        }
    }

    async fn fetch(&self) -> Result<String, ProviderError> {
        match self {
            ApiKey::Static(key) => Ok(key.clone()),
            ApiKey::Ssm { client, parameter } => {
                let out = client
                    .get_parameter()
                    .name(parameter)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        ProviderError::Config(format!(
                            "reading SSM parameter {parameter}: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(e)
                        ))
                    })?;
                let key = out
                    .parameter
                    .and_then(|p| p.value)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        ProviderError::Config(format!("SSM parameter {parameter} has no value"))
                    })?;
                tracing::info!(parameter = %parameter, "payment provider API key read from SSM");
                Ok(key)
            }
            ApiKey::Missing => Err(ProviderError::Config(
                "neither PSP_API_KEY nor PSP_API_KEY_PARAMETER is set".into(),
            )),
        }
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AttemptError {
    Network(String),
    Timeout,
    /// Not started: less than [`PspConfig::min_attempt`] left before the deadline.
    NoTimeLeft,
    Status {
        status: u16,
        detail: String,
    },
    /// A success status with a body that does not say what happened.
    Garbled(String),
}

impl Classify for AttemptError {
    fn fault(&self) -> Fault {
        match self {
            AttemptError::Network(_) => Fault::Network,
            AttemptError::Timeout | AttemptError::NoTimeLeft => Fault::Timeout,
            AttemptError::Status { status, .. } => Fault::Status(*status),
            // The charge may have happened: worth another keyed try, like a 502.
            AttemptError::Garbled(_) => Fault::Status(502),
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Network(e) => write!(f, "no answer: {e}"),
            AttemptError::Timeout => f.write_str("no answer within the attempt's timeout"),
            AttemptError::NoTimeLeft => f.write_str("no time left in this invocation"),
            AttemptError::Status { status, detail } => write!(f, "HTTP {status}: {detail}"),
            AttemptError::Garbled(e) => write!(f, "unreadable answer: {e}"),
        }
    }
}

/// The adapter. Build it once per container (it holds the HTTP client, the API key and
/// the circuit breaker).
pub struct HttpPaymentProvider<S = TokioSleeper> {
    http: reqwest::Client,
    base: Url,
    key_source: ApiKey,
    key: tokio::sync::OnceCell<String>,
    config: PspConfig,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
    sleeper: S,
}

impl HttpPaymentProvider<TokioSleeper> {
    pub fn new(config: PspConfig, key: ApiKey) -> Result<Self, String> {
        HttpPaymentProvider::with_clock(config, key, Arc::new(SystemClock), TokioSleeper)
    }
}

impl<S: Sleeper> HttpPaymentProvider<S> {
    /// With the breaker's and the retries' clock, and what waits between retries.
    pub fn with_clock(
        config: PspConfig,
        key: ApiKey,
        clock: Arc<dyn Clock>,
        sleeper: S,
    ) -> Result<Self, String> {
        let base = Url::parse(&config.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("PSP_BASE_URL {:?} is not an http(s) URL", config.base_url))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.policy.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("dishpatch-payment/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let breaker = CircuitBreaker::new(PROVIDER, config.breaker, clock.clone());
        Ok(HttpPaymentProvider {
            http,
            base,
            key_source: key,
            key: tokio::sync::OnceCell::new(),
            config,
            breaker,
            clock,
            sleeper,
        })
    }

    /// Where breaker transitions go besides the log (replacing the EMF line on stdout).
    pub fn on_transition(
        mut self,
        sink: impl Fn(&dishpatch::resilience::Transition) + Send + Sync + 'static,
    ) -> Self {
        self.breaker = self.breaker.on_transition(sink);
        self
    }

    /// The provider's circuit breaker (state for the operator tools).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// By when this call (with its retries) must be done.
    fn deadline(&self) -> Deadline {
        match dishpatch::runtime::deadline::deadline_epoch_ms() {
            Some(deadline_ms) => {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or_default();
                Deadline::from_epoch_millis(&self.clock, deadline_ms, now_ms, self.config.margin)
            }
            None => Deadline::within(&self.clock, self.config.default_budget),
        }
    }

    async fn api_key(&self) -> Result<&str, ProviderError> {
        self.key
            .get_or_try_init(|| self.key_source.fetch())
            .await
            .map(String::as_str)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked to be an http(s) base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// POSTs `body` to `url` with retries and the breaker; `read` turns an answer
    /// (status, body) into the outcome or the attempt's error.
    async fn post<T>(
        &self,
        operation: &'static str,
        url: Url,
        idempotency_key: &str,
        body: Value,
        read: fn(u16, &[u8]) -> Result<T, AttemptError>,
    ) -> Result<T, ProviderError> {
        let api_key = self.api_key().await?;
        let deadline = self.deadline();
        let call = Call::with_idempotency_key().deadline(deadline);
        let (url, body) = (&url, &body);
        let attempts = &AtomicU32::new(0);
        let result = retry(
            &self.config.policy,
            &self.clock,
            &self.sleeper,
            call,
            move || async move {
                let n = attempts.fetch_add(1, Ordering::Relaxed);
                let left = deadline.remaining(&self.clock);
                let attempt = if left < self.config.min_attempt {
                    Err(BreakerError::Call(AttemptError::NoTimeLeft))
                } else {
                    let timeout = left.min(self.config.policy.attempt_timeout);
                    self.breaker
                        .call(|| self.attempt(url, api_key, idempotency_key, body, timeout, read))
                        .await
                };
                metrics::attempted(n, operation, idempotency_key, &attempt);
                attempt
            },
        )
        .await;
        result.map_err(|e| {
            let err = match e {
                BreakerError::Rejected(r) => ProviderError::CircuitOpen {
                    retry_after: r.retry_after,
                },
                BreakerError::Call(AttemptError::Status { status, detail })
                    if !Fault::Status(status).is_transient() =>
                {
                    ProviderError::Refused { status, detail }
                }
                BreakerError::Call(other) => ProviderError::Unavailable(other.to_string()),
            };
            tracing::warn!(
                provider = PROVIDER,
                operation,
                idempotency_key,
                error = %err,
                "payment provider call failed"
            );
            err
        })
    }

    async fn attempt<T>(
        &self,
        url: &Url,
        api_key: &str,
        idempotency_key: &str,
        body: &Value,
        timeout: Duration,
        read: fn(u16, &[u8]) -> Result<T, AttemptError>,
    ) -> Result<T, AttemptError> {
        let sent = self
            .http
            .post(url.clone())
            .bearer_auth(api_key)
            .header("Idempotency-Key", idempotency_key)
            .timeout(timeout)
            .json(body)
            .send()
            .await;
        let resp = sent.map_err(reqwest_error)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(reqwest_error)?;
        read(status, &bytes)
    }
}

fn reqwest_error(e: reqwest::Error) -> AttemptError {
    if e.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Network(chain(&e.without_url()))
    }
}

/// An error with its causes ("error sending request: ... Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A short, printable piece of an error body for the logs.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    charge_id: Option<String>,
    refund_id: Option<String>,
    status: Option<String>,
    code: Option<String>,
}

fn answer(body: &[u8]) -> Result<Answer, AttemptError> {
    serde_json::from_slice(body)
        .map_err(|e| AttemptError::Garbled(format!("{e}: {}", snippet(body))))
}

/// A provider's decline code, kept to what is safe in a reason, a log and a metric.
fn decline_code(code: Option<String>, default: &str) -> String {
    code.filter(|c| {
        !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    })
    .map(|c| c.to_ascii_lowercase())
    .unwrap_or_else(|| default.to_owned())
}

fn read_charge(status: u16, body: &[u8]) -> Result<ChargeOutcome, AttemptError> {
    match status {
        200..=299 => {
            let a = answer(body)?;
            match a.status.as_deref() {
                Some("DECLINED") => Ok(ChargeOutcome::Declined {
                    code: decline_code(a.code, "card_declined"),
                }),
                None | Some("CAPTURED") => match a.charge_id.filter(|id| !id.is_empty()) {
                    Some(charge_id) => Ok(ChargeOutcome::Captured { charge_id }),
                    None => Err(AttemptError::Garbled(format!(
                        "no chargeId: {}",
                        snippet(body)
                    ))),
                },
                Some(other) => Err(AttemptError::Garbled(format!("charge status {other:?}"))),
            }
        }
        402 => Ok(ChargeOutcome::Declined {
            code: decline_code(answer(body).unwrap_or_default().code, "card_declined"),
        }),
        400 => Ok(ChargeOutcome::Declined {
            code: decline_code(answer(body).unwrap_or_default().code, "invalid_request"),
        }),
        _ => Err(AttemptError::Status {
            status,
            detail: snippet(body),
        }),
    }
}

fn read_refund(status: u16, body: &[u8]) -> Result<RefundOutcome, AttemptError> {
    match status {
        200..=299 => match answer(body)?.refund_id.filter(|id| !id.is_empty()) {
            Some(refund_id) => Ok(RefundOutcome::Refunded { refund_id }),
            None => Err(AttemptError::Garbled(format!(
                "no refundId: {}",
                snippet(body)
            ))),
        },
        404 => Ok(RefundOutcome::UnknownCharge),
        _ => Err(AttemptError::Status {
            status,
            detail: snippet(body),
        }),
    }
}

#[async_trait::async_trait]
impl<S: Sleeper + 'static> PaymentProvider for HttpPaymentProvider<S> {
    async fn authorize_capture(&self, charge: &Charge) -> Result<ChargeOutcome, ProviderError> {
        let body = json!({
            "amount": charge.amount.amount,
            "currency": charge.amount.currency,
            "cardToken": charge.card_token,
            "reference": charge.order_id,
        });
        let url = self.url(&["v1", "charges"]);
        self.post("charge", url, &charge.idempotency_key, body, read_charge)
            .await
    }

    async fn refund(
        &self,
        charge_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundOutcome, ProviderError> {
        let body = json!({"amount": amount.amount});
        let url = self.url(&["v1", "charges", charge_id, "refunds"]);
        self.post("refund", url, idempotency_key, body, read_refund)
            .await
    }

    fn breaker_snapshot(&self) -> Option<dishpatch::resilience::Snapshot> {
        Some(self.breaker.snapshot())
    }
}

#[cfg(test)]
mod tests;
