//! The sandbox's in-memory state and the provider logic, free of HTTP.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{tokens, InvalidConfig};

/// The runtime-adjustable faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxConfig {
    /// Share of charges and refunds answered `503` before anything happens, `0.0..=1.0`.
    pub failure_rate: f64,
    /// Added to every charge and refund that is not failed by `down` or `failure_rate`.
    pub latency_ms: u64,
    /// Every charge and refund answers `503` at once.
    pub down: bool,
}

impl SandboxConfig {
    fn validate(&self) -> Result<(), InvalidConfig> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(InvalidConfig(format!(
                "failureRate must be within 0.0..=1.0, got {}",
                self.failure_rate
            )));
        }
        Ok(())
    }
}

/// A `PUT /_sandbox/config` body: fields left out keep their value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigPatch {
    failure_rate: Option<f64>,
    latency_ms: Option<u64>,
    down: Option<bool>,
}

/// A captured charge, as `GET /_sandbox/charges` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub charge_id: String,
    /// Always `CAPTURED`; see `refunded_amount` for refunds.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub card_token: String,
    pub reference: String,
    /// The idempotency key of the request that made it.
    pub idempotency_key: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Sum of `refunds[].amount`.
    pub refunded_amount: i64,
    pub refunds: Vec<Refund>,
}

/// A refund of a charge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub refund_id: String,
    /// Always `REFUNDED`.
    pub status: String,
    pub charge_id: String,
    pub amount: i64,
    pub idempotency_key: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// `POST /v1/charges` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChargeRequest {
    amount: i64,
    currency: String,
    card_token: String,
    reference: String,
}

impl ChargeRequest {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.amount <= 0 {
            return Err("amount must be a positive number of minor units".into());
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency must be an ISO 4217 code such as EUR".into());
        }
        if self.card_token.is_empty() {
            return Err("cardToken must not be empty".into());
        }
        if self.reference.is_empty() {
            return Err("reference must not be empty".into());
        }
        Ok(())
    }

    pub(crate) fn reference(&self) -> &str {
        &self.reference
    }
}

/// `POST /v1/charges/{chargeId}/refunds` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundRequest {
    amount: i64,
}

impl RefundRequest {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.amount <= 0 {
            return Err("amount must be a positive number of minor units".into());
        }
        Ok(())
    }
}

/// An HTTP answer, before it becomes one.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    /// Served from an idempotency record.
    pub replayed: bool,
}

impl Reply {
    fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            replayed: false,
        }
    }
}

/// `{"code", "message"}` with `status`.
pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::new(status, json!({ "code": code, "message": message.into() }))
}

/// When to send a charge's answer.
pub(crate) enum Outcome {
    Now(Reply),
    /// Hold the answer this long first (the timeout tokens).
    After(Duration, Reply),
}

/// What the fault config says about the next charge or refund.
pub(crate) enum Fault {
    Down,
    Failure,
    Pass { latency: Duration },
}

struct Stored {
    /// The request body it answered.
    fingerprint: Value,
    status: u16,
    body: Value,
}

/// SplitMix64: small, seedable, good enough for fault injection.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Inner {
    config: SandboxConfig,
    charges: Vec<Charge>,
    /// By (route, idempotency key).
    idempotency: HashMap<(String, String), Stored>,
    rng: Rng,
}

impl Inner {
    fn new(seed: u64) -> Self {
        Self {
            config: SandboxConfig::default(),
            charges: Vec::new(),
            idempotency: HashMap::new(),
            rng: Rng(seed),
        }
    }

    /// The stored answer for `key` on `scope`, or `422` when the key was used with
    /// another body; `None` when the key is new.
    fn replay(&self, scope: &str, key: &str, fingerprint: &Value) -> Option<Reply> {
        let stored = self.idempotency.get(&(scope.to_owned(), key.to_owned()))?;
        if stored.fingerprint == *fingerprint {
            Some(Reply {
                status: stored.status,
                body: stored.body.clone(),
                replayed: true,
            })
        } else {
            Some(error(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ))
        }
    }

    fn store(&mut self, scope: &str, key: &str, fingerprint: Value, reply: &Reply) {
        self.idempotency.insert(
            (scope.to_owned(), key.to_owned()),
            Stored {
                fingerprint,
                status: reply.status,
                body: reply.body.clone(),
            },
        );
    }
}

pub(crate) struct Shared {
    pub api_key: String,
    pub timeout_delay: Duration,
    pub seed: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("timeout_delay", &self.timeout_delay)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

const CHARGES_ROUTE: &str = "POST /v1/charges";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

impl Shared {
    pub(crate) fn new(api_key: String, timeout_delay: Duration, seed: u64) -> Self {
        Self {
            api_key,
            timeout_delay,
            seed,
            inner: Mutex::new(Inner::new(seed)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; recover anyway rather than cascade.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> SandboxConfig {
        self.lock().config
    }

    pub(crate) fn set_config(&self, config: SandboxConfig) -> Result<(), InvalidConfig> {
        config.validate()?;
        self.lock().config = config;
        tracing::info!(?config, "psp sandbox config set");
        Ok(())
    }

    pub(crate) fn patch_config(&self, patch: ConfigPatch) -> Result<SandboxConfig, InvalidConfig> {
        let mut inner = self.lock();
        let mut config = inner.config;
        if let Some(v) = patch.failure_rate {
            config.failure_rate = v;
        }
        if let Some(v) = patch.latency_ms {
            config.latency_ms = v;
        }
        if let Some(v) = patch.down {
            config.down = v;
        }
        config.validate()?;
        inner.config = config;
        tracing::info!(?config, "psp sandbox config set");
        Ok(config)
    }

    pub(crate) fn charges(&self) -> Vec<Charge> {
        self.lock().charges.clone()
    }

    pub(crate) fn reset(&self) {
        *self.lock() = Inner::new(self.seed);
        tracing::info!("psp sandbox reset");
    }

    /// Rolls the fault dice for one charge or refund.
    pub(crate) fn fault(&self) -> Fault {
        let mut inner = self.lock();
        let config = inner.config;
        if config.down {
            return Fault::Down;
        }
        let rate = config.failure_rate;
        if rate >= 1.0 || (rate > 0.0 && inner.rng.next_f64() < rate) {
            return Fault::Failure;
        }
        Fault::Pass {
            latency: Duration::from_millis(config.latency_ms),
        }
    }

    /// Runs a validated charge with idempotency key `key`; `fingerprint` is its body.
    pub(crate) fn charge(&self, key: &str, fingerprint: Value, req: &ChargeRequest) -> Outcome {
        let mut inner = self.lock();
        if let Some(reply) = inner.replay(CHARGES_ROUTE, key, &fingerprint) {
            return Outcome::Now(reply);
        }
        let decline = |code: &str| Reply::new(402, json!({ "status": "DECLINED", "code": code }));
        match req.card_token.as_str() {
            tokens::TIMEOUT => Outcome::After(
                self.timeout_delay,
                error(
                    504,
                    "gateway_timeout",
                    "the card network did not answer in time",
                ),
            ),
            tokens::ERROR => Outcome::Now(error(500, "internal_error", "the provider failed")),
            tokens::DECLINE_FUNDS | tokens::DECLINE_STOLEN => {
                let code = if req.card_token == tokens::DECLINE_FUNDS {
                    "insufficient_funds"
                } else {
                    "card_stolen"
                };
                let reply = decline(code);
                inner.store(CHARGES_ROUTE, key, fingerprint, &reply);
                Outcome::Now(reply)
            }
            tokens::VISA | tokens::CHARGE_THEN_TIMEOUT => {
                let charge = Charge {
                    charge_id: new_id("ch"),
                    status: "CAPTURED".into(),
                    amount: req.amount,
                    currency: req.currency.clone(),
                    card_token: req.card_token.clone(),
                    reference: req.reference.clone(),
                    idempotency_key: key.to_owned(),
                    created_at: now(),
                    refunded_amount: 0,
                    refunds: Vec::new(),
                };
                let reply = Reply::new(
                    201,
                    json!({
                        "chargeId": charge.charge_id,
                        "status": charge.status,
                        "amount": charge.amount,
                        "currency": charge.currency,
                        "reference": charge.reference,
                    }),
                );
                tracing::info!(charge_id = %charge.charge_id, reference = %charge.reference, amount = charge.amount, "psp sandbox charge captured");
                inner.charges.push(charge);
                inner.store(CHARGES_ROUTE, key, fingerprint, &reply);
                if req.card_token == tokens::CHARGE_THEN_TIMEOUT {
                    Outcome::After(self.timeout_delay, reply)
                } else {
                    Outcome::Now(reply)
                }
            }
            other => Outcome::Now(error(
                400,
                "unknown_card_token",
                format!("unknown card token {other:?}"),
            )),
        }
    }

    /// Runs a validated refund of `charge_id` with idempotency key `key`.
    pub(crate) fn refund(
        &self,
        charge_id: &str,
        key: &str,
        fingerprint: Value,
        req: &RefundRequest,
    ) -> Reply {
        let scope = format!("POST /v1/charges/{charge_id}/refunds");
        let mut inner = self.lock();
        if let Some(reply) = inner.replay(&scope, key, &fingerprint) {
            return reply;
        }
        let Some(charge) = inner.charges.iter_mut().find(|c| c.charge_id == charge_id) else {
            return error(404, "charge_not_found", format!("no charge {charge_id}"));
        };
        let left = charge.amount - charge.refunded_amount;
        if req.amount > left {
            return error(
                422,
                "refund_exceeds_charge",
                format!(
                    "a refund of {} exceeds the {left} left to refund",
                    req.amount
                ),
            );
        }
        let refund = Refund {
            refund_id: new_id("re"),
            status: "REFUNDED".into(),
            charge_id: charge_id.to_owned(),
            amount: req.amount,
            idempotency_key: key.to_owned(),
            created_at: now(),
        };
        let reply = Reply::new(
            201,
            json!({
                "refundId": refund.refund_id,
                "status": refund.status,
                "chargeId": refund.charge_id,
                "amount": refund.amount,
            }),
        );
        tracing::info!(refund_id = %refund.refund_id, %charge_id, amount = refund.amount, "psp sandbox refund made");
        charge.refunded_amount += refund.amount;
        charge.refunds.push(refund);
        inner.store(&scope, key, fingerprint, &reply);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_uniform_enough() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        let ys: Vec<f64> = (0..1000).map(|_| b.next_f64()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let below_half = xs.iter().filter(|x| **x < 0.5).count();
        assert!((400..600).contains(&below_half), "{below_half}");
    }

    #[test]
    fn config_rejects_rates_outside_unit_interval() {
        for rate in [-0.1, 1.1, f64::NAN] {
            let c = SandboxConfig {
                failure_rate: rate,
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{rate}");
        }
        for rate in [0.0, 0.5, 1.0] {
            let c = SandboxConfig {
                failure_rate: rate,
                ..Default::default()
            };
            assert!(c.validate().is_ok(), "{rate}");
        }
    }

    #[test]
    fn charge_requests_are_validated() {
        let ok = ChargeRequest {
            amount: 100,
            currency: "EUR".into(),
            card_token: "tok_visa".into(),
            reference: "o-1".into(),
        };
        assert!(ok.validate().is_ok());
        for bad in [
            ChargeRequest {
                amount: 0,
                ..clone(&ok)
            },
            ChargeRequest {
                amount: -5,
                ..clone(&ok)
            },
            ChargeRequest {
                currency: "eur".into(),
                ..clone(&ok)
            },
            ChargeRequest {
                currency: "EURO".into(),
                ..clone(&ok)
            },
            ChargeRequest {
                card_token: String::new(),
                ..clone(&ok)
            },
            ChargeRequest {
                reference: String::new(),
                ..clone(&ok)
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    fn clone(r: &ChargeRequest) -> ChargeRequest {
        ChargeRequest {
            amount: r.amount,
            currency: r.currency.clone(),
            card_token: r.card_token.clone(),
            reference: r.reference.clone(),
        }
    }
}
