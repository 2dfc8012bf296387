//! A sandbox card payment service provider (PSP) for local use and tests.
//!
//! It speaks the small HTTP contract the payment function's PSP adapter is written
//! against, keeps everything in memory, and can be told at runtime to fail, slow down or
//! go away, so tests and the chaos run can drive retries and the circuit breaker.
//!
//! # Provider API (authenticated)
//!
//! Every call needs `Authorization: Bearer <api key>` (else `401`) and an
//! `Idempotency-Key` header (else `400`).
//!
//! * `POST /v1/charges` `{"amount", "currency", "cardToken", "reference"}` →
//!   `201 {"chargeId", "status": "CAPTURED", "amount", "currency", "reference"}`
//! * `POST /v1/charges/{chargeId}/refunds` `{"amount"}` →
//!   `201 {"refundId", "status": "REFUNDED", "chargeId", "amount"}`; `404` for an
//!   unknown charge, `422` when the amount exceeds what is left to refund.
//!
//! A request carrying an idempotency key already used on the same route with the same
//! body gets the stored response again (same status and body, marked
//! `Idempotent-Replayed: true`) and changes nothing; the same key with a different body
//! is `422`. Keys are scoped per route (`POST /v1/charges` and each charge's refunds
//! route), so a client may use one key for a charge and for its refund. Stored are the
//! outcomes that happened: `201` charges and refunds and `402` declines. Nothing is
//! stored for requests refused before anything happened (`400`, `401`, `404`, `422`,
//! `500`, `503`, `504`), so retrying those runs them again.
//!
//! Card tokens: `tok_visa` approves; `tok_decline_funds` and `tok_decline_stolen`
//! decline with `402 {"status": "DECLINED", "code": "insufficient_funds" |
//! "card_stolen"}`; `tok_timeout` waits the timeout delay, then answers `504` having
//! charged nothing; `tok_charge_then_timeout` captures the charge (and stores its
//! response for replays) at once, then waits the timeout delay before answering — a
//! client with a shorter timeout loses the response and its retry with the same key gets
//! the stored `201` immediately; `tok_error` answers `500`. Any other token is `400
//! unknown_card_token`.
//!
//! Errors other than declines are `{"code": "...", "message": "..."}`.
//!
//! # Control API (`/_sandbox/*`, no authentication)
//!
//! These routes have **no authentication**: the sandbox is meant to listen on loopback
//! only (the `psp-sandbox` binary always does; [`start`] warns for any other address).
//!
//! * `GET /_sandbox/config`, `PUT /_sandbox/config` `{"failureRate": 0.0..=1.0,
//!   "latencyMs": u64, "down": bool}` (fields left out keep their value) → the config.
//!   `down` answers every charge and refund `503` at once; `failureRate` answers that
//!   share of them `503` (seeded randomness) before doing anything; `latencyMs` is
//!   added to every charge and refund that gets past those.
//! * `GET /_sandbox/charges` → `{"charges": [Charge...]}`: every captured charge, oldest
//!   first, with its idempotency key and refunds.
//! * `POST /_sandbox/reset` → `204`: forgets charges and idempotency keys, restores the
//!   default config and restarts the failure randomness from the seed.
//!
//! It depends on hyper, tokio, serde and tracing only: no dishpatch crate, so the
//! contract it serves is the provider's, not a copy of the adapter's assumptions.

mod server;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use state::{Charge, Refund, SandboxConfig};

/// The test card tokens the sandbox understands.
pub mod tokens {
    /// Approves and captures.
    pub const VISA: &str = "tok_visa";
    /// Declines with `insufficient_funds`.
    pub const DECLINE_FUNDS: &str = "tok_decline_funds";
    /// Declines with `card_stolen`.
    pub const DECLINE_STOLEN: &str = "tok_decline_stolen";
    /// Waits the timeout delay, then `504`; charges nothing.
    pub const TIMEOUT: &str = "tok_timeout";
    /// Captures at once, then waits the timeout delay before answering `201`.
    pub const CHARGE_THEN_TIMEOUT: &str = "tok_charge_then_timeout";
    /// Answers `500`; charges nothing.
    pub const ERROR: &str = "tok_error";
}

/// The API key the binary and [`SandboxOptions::default`] use.
pub const DEFAULT_API_KEY: &str = "dev-psp-key";
/// How long `tok_timeout` and `tok_charge_then_timeout` hold their answer by default.
pub const DEFAULT_TIMEOUT_DELAY: Duration = Duration::from_secs(10);

/// How to start a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Where to listen; port 0 picks a free port. Keep it on loopback.
    pub addr: SocketAddr,
    /// The bearer token clients must send.
    pub api_key: String,
    /// How long the timeout tokens hold their answer.
    pub timeout_delay: Duration,
    /// Seed for the `failureRate` randomness; `None` picks one (and logs it).
    pub seed: Option<u64>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: DEFAULT_API_KEY.to_owned(),
            timeout_delay: DEFAULT_TIMEOUT_DELAY,
            seed: None,
        }
    }
}

/// A running sandbox. Dropping it stops the server and closes every connection.
#[derive(Debug)]
pub struct Sandbox {
    /// The address it listens on (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    handle: SandboxHandle,
    task: JoinHandle<()>,
}

/// Binds `opts.addr` and serves the sandbox on it in the background.
pub async fn start(opts: SandboxOptions) -> std::io::Result<Sandbox> {
    let listener = TcpListener::bind(opts.addr).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "psp sandbox listening beyond loopback: /_sandbox/* has no authentication");
    }
    let seed = opts
        .seed
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let shared = Arc::new(state::Shared::new(opts.api_key, opts.timeout_delay, seed));
    let task = server::serve(listener, shared.clone());
    tracing::info!(%addr, seed, timeout_delay_ms = opts.timeout_delay.as_millis() as u64, "psp sandbox listening");
    Ok(Sandbox {
        addr,
        handle: SandboxHandle { shared },
        task,
    })
}

impl Sandbox {
    /// The base URL, e.g. `http://127.0.0.1:4010` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A cloneable handle on the sandbox's state.
    pub fn handle(&self) -> SandboxHandle {
        self.handle.clone()
    }

    /// See [`SandboxHandle::config`].
    pub fn config(&self) -> SandboxConfig {
        self.handle.config()
    }

    /// See [`SandboxHandle::set_config`].
    pub fn set_config(&self, config: SandboxConfig) -> Result<(), InvalidConfig> {
        self.handle.set_config(config)
    }

    /// See [`SandboxHandle::charges`].
    pub fn charges(&self) -> Vec<Charge> {
        self.handle.charges()
    }

    /// See [`SandboxHandle::reset`].
    pub fn reset(&self) {
        self.handle.reset()
    }

    /// Stops serving and waits until the server task is gone.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // `Drop` aborts again, which is harmless.
        let _ = (&mut self.task).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Direct access to a sandbox's state from Rust: the same operations as `/_sandbox/*`.
#[derive(Clone, Debug)]
pub struct SandboxHandle {
    shared: Arc<state::Shared>,
}

/// A config the sandbox refuses (a failure rate outside `0.0..=1.0`).
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidConfig(pub String);

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid sandbox config: {}", self.0)
    }
}

impl std::error::Error for InvalidConfig {}

impl SandboxHandle {
    /// The current fault config.
    pub fn config(&self) -> SandboxConfig {
        self.shared.config()
    }

    /// Replaces the fault config.
    pub fn set_config(&self, config: SandboxConfig) -> Result<(), InvalidConfig> {
        self.shared.set_config(config)
    }

    /// Every captured charge, oldest first, with its refunds.
    pub fn charges(&self) -> Vec<Charge> {
        self.shared.charges()
    }

    /// The captured charges whose `reference` is `reference`.
    pub fn charges_for(&self, reference: &str) -> Vec<Charge> {
        let mut all = self.shared.charges();
        all.retain(|c| c.reference == reference);
        all
    }

    /// Forgets every charge and idempotency key, restores the default config and
    /// restarts the failure randomness from the seed.
    pub fn reset(&self) {
        self.shared.reset()
    }

    /// The seed of the failure randomness.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }
}
