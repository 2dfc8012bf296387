//! The pure core: the record, its key, the payload hash, the expiry rules and the
//! decision for a duplicate. No I/O, no AWS types; time comes in as a [`Timestamp`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A point in time, epoch milliseconds. Records keep `expiration` in epoch seconds (the
/// DynamoDB TTL unit) and `in_progress_expiration` in epoch milliseconds, as Powertools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole epoch seconds, rounded down (what DynamoDB TTL compares with).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

/// Where "now" comes from: the system clock in functions, a [`ManualClock`] in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(t.millis()))
    }

    /// Starts at the system's now.
    pub fn now_from_system() -> Self {
        ManualClock::at(SystemClock.now())
    }

    pub fn set(&self, t: Timestamp) {
        self.0
            .store(t.millis(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.set(self.now().plus(d));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The `status` attribute. `EXPIRED` is never written by this crate (an expired record
/// is recognised from its `expiration`), but is read, as Powertools defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "INPROGRESS")]
    InProgress,
    #[serde(rename = "COMPLETED")]
    Completed,
    #[serde(rename = "EXPIRED")]
    Expired,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "INPROGRESS",
            Status::Completed => "COMPLETED",
            Status::Expired => "EXPIRED",
        }
    }
}

/// One idempotency record, attribute for attribute the Powertools item layout, so
/// functions in other languages can share the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// `"{prefix}#{sha256 hex of the key material}"`.
    pub id: String,
    /// Epoch seconds; the table's TTL attribute. Past it the record counts as absent,
    /// whether or not DynamoDB has deleted it yet.
    pub expiration: i64,
    /// Epoch milliseconds: when the claiming invocation's time runs out. Past it an
    /// `INPROGRESS` record may be taken over (its handler crashed or timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_expiration: Option<i64>,
    pub status: Status,
    /// The stored result, as a JSON string (`COMPLETED` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The payload hash, when payload validation is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
}

impl IdempotencyRecord {
    /// A claim: `INPROGRESS` until `now + remaining` (the invocation's deadline), kept
    /// at most `expires_after`.
    pub fn in_progress(
        id: impl Into<String>,
        validation: Option<String>,
        now: Timestamp,
        remaining: Duration,
        expires_after: Duration,
    ) -> Self {
        IdempotencyRecord {
            id: id.into(),
            expiration: now.plus(expires_after).secs(),
            in_progress_expiration: Some(now.plus(remaining).millis()),
            status: Status::InProgress,
            data: None,
            validation,
        }
    }

    /// This claim completed with `data`; kept for `expires_after` from `now`.
    pub fn completed(&self, data: String, now: Timestamp, expires_after: Duration) -> Self {
        IdempotencyRecord {
            expiration: now.plus(expires_after).secs(),
            status: Status::Completed,
            data: Some(data),
            ..self.clone()
        }
    }

    /// Past its `expiration`: treated as absent (TTL deletion lags by up to days).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expiration < now.secs()
    }

    /// An `INPROGRESS` record whose invocation's time has run out.
    pub fn is_in_progress_expired(&self, now: Timestamp) -> bool {
        self.status == Status::InProgress
            && self
                .in_progress_expiration
                .is_some_and(|t| t < now.millis())
    }

    /// Whether a new claim may overwrite this record. The DynamoDB adapter's condition
    /// expression is exactly this rule.
    pub fn is_claimable(&self, now: Timestamp) -> bool {
        self.is_expired(now) || self.is_in_progress_expired(now)
    }

    /// The status as Powertools reports it: `EXPIRED` once past `expiration`.
    pub fn effective_status(&self, now: Timestamp) -> Status {
        if self.is_expired(now) {
            Status::Expired
        } else {
            self.status
        }
    }
}

/// What to do with a request, given the record found for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No live record: run the handler.
    Fresh,
    /// A completed call with this key and payload: answer with its stored result.
    Replay(String),
    /// A concurrent duplicate is still running: try again later.
    InProgress,
    /// The key was used with a different payload: a client error, never retried.
    PayloadMismatch,
}

/// The decision for a request whose payload hash is `validation` (`None`: not checked).
/// The payload is checked before the status, so reusing a key with another payload is a
/// mismatch whether the first call is still running or done.
pub fn decide(
    existing: Option<&IdempotencyRecord>,
    validation: Option<&str>,
    now: Timestamp,
) -> Outcome {
    let Some(record) = existing.filter(|r| !r.is_claimable(now)) else {
        return Outcome::Fresh;
    };
    if let (Some(stored), Some(ours)) = (record.validation.as_deref(), validation) {
        if stored != ours {
            return Outcome::PayloadMismatch;
        }
    }
    match record.status {
        Status::Completed => Outcome::Replay(record.data.clone().unwrap_or_else(|| "null".into())),
        // A live INPROGRESS record, or an EXPIRED status written by another
        // implementation before its `expiration`: not ours to take; retry later.
        Status::InProgress | Status::Expired => Outcome::InProgress,
    }
}

/// The record id for key material from domain ids, e.g. `[caller, Idempotency-Key]` or
/// `[orderId, step]` (never a transport id such as the SQS message id, which changes
/// when a message is re-sent): `"{prefix}#{sha256 hex}"`, like Powertools'
/// `"{function}.{handler}#{hash}"`. The parts are hashed as a JSON array, so
/// `["a#b", "c"]` and `["a", "b#c"]` differ.
pub fn record_id(prefix: &str, parts: &[&str]) -> String {
    let hash = sha256_hex(&canonical_json(&Value::from(
        parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>(),
    )));
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}#{hash}")
    }
}

/// SHA-256 hex of the payload's canonical JSON: object key order and whitespace do not
/// change it; any change of a value does.
pub fn payload_hash(payload: &Value) -> String {
    sha256_hex(&canonical_json(payload))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compact JSON with object keys sorted (recursively), whatever map type serde_json was
/// built with.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const HOUR: Duration = Duration::from_secs(3600);

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn item_layout_is_powertools() {
        let claim = IdempotencyRecord::in_progress(
            "p#h",
            Some("v".into()),
            t(1_700_000_000_500),
            Duration::from_millis(9_500),
            HOUR,
        );
        assert_eq!(
            serde_json::to_value(&claim).unwrap(),
            json!({"id": "p#h", "expiration": 1_700_003_600, "in_progress_expiration": 1_700_000_010_000_i64,
                   "status": "INPROGRESS", "validation": "v"})
        );
        let done = claim.completed("{\"a\":1}".into(), t(1_700_000_002_000), HOUR);
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            json!({"id": "p#h", "expiration": 1_700_003_602, "in_progress_expiration": 1_700_000_010_000_i64,
                   "status": "COMPLETED", "data": "{\"a\":1}", "validation": "v"})
        );
        // A record written by Powertools without the optional attributes reads back.
        let bare: IdempotencyRecord =
            serde_json::from_value(json!({"id": "x", "expiration": 5, "status": "EXPIRED"}))
                .unwrap();
        assert_eq!(bare.status, Status::Expired);
        assert_eq!(bare.in_progress_expiration, None);
    }

    #[test]
    fn key_is_prefix_hash_and_unambiguous() {
        let id = record_id("order-api.place_order", &["alice", "k-1"]);
        let (prefix, hash) = id.split_once('#').unwrap();
        assert_eq!(prefix, "order-api.place_order");
        assert_eq!(hash.len(), 64);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, record_id("order-api.place_order", &["alice", "k-1"]));
        assert_ne!(id, record_id("order-api.place_order", &["bob", "k-1"]));
        assert_ne!(id, record_id("other", &["alice", "k-1"]));
        assert_ne!(record_id("p", &["a#b", "c"]), record_id("p", &["a", "b#c"]));
        assert_eq!(record_id("", &["a"]).len(), 64);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b": [ {"y":1,"x":2} ], "a": "é\"", "c": null}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":"é\"","b":[{"x":2,"y":1}],"c":null}"#
        );
        assert_eq!(
            payload_hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn expiry_rules() {
        let now = t(10_000_500);
        let claim = IdempotencyRecord::in_progress("i", None, now, Duration::from_secs(2), HOUR);
        assert!(!claim.is_claimable(now));
        assert!(
            !claim.is_claimable(now.plus(Duration::from_secs(2))),
            "at the deadline"
        );
        assert!(
            claim.is_claimable(now.plus(Duration::from_millis(2001))),
            "past it"
        );
        let done = claim.completed("1".into(), now, HOUR);
        assert!(
            !done.is_claimable(now.plus(Duration::from_secs(10))),
            "completed: no takeover"
        );
        assert!(
            !done.is_claimable(now.plus(HOUR)),
            "same second as expiration"
        );
        assert!(done.is_claimable(now.plus(HOUR + Duration::from_secs(1))));
        assert_eq!(done.effective_status(now), Status::Completed);
        assert_eq!(done.effective_status(now.plus(2 * HOUR)), Status::Expired);
        // No in-progress expiry (another writer without a Lambda context): only `expiration`.
        let open = IdempotencyRecord {
            in_progress_expiration: None,
            ..claim.clone()
        };
        assert!(!open.is_claimable(now.plus(HOUR)));
        assert!(open.is_claimable(now.plus(HOUR + Duration::from_secs(1))));
    }

    #[test]
    fn decisions() {
        let now = t(1_000_000);
        let claim = IdempotencyRecord::in_progress(
            "i",
            Some("h".into()),
            now,
            Duration::from_secs(5),
            HOUR,
        );
        assert_eq!(decide(None, Some("h"), now), Outcome::Fresh);
        assert_eq!(decide(Some(&claim), Some("h"), now), Outcome::InProgress);
        assert_eq!(
            decide(Some(&claim), Some("x"), now),
            Outcome::PayloadMismatch
        );
        assert_eq!(decide(Some(&claim), None, now), Outcome::InProgress);
        let later = now.plus(Duration::from_secs(6));
        assert_eq!(decide(Some(&claim), Some("x"), later), Outcome::Fresh);
        let done = claim.completed("{\"n\":1}".into(), now, HOUR);
        assert_eq!(
            decide(Some(&done), Some("h"), later),
            Outcome::Replay("{\"n\":1}".into())
        );
        assert_eq!(
            decide(Some(&done), Some("x"), later),
            Outcome::PayloadMismatch
        );
        let unvalidated = IdempotencyRecord {
            validation: None,
            ..done.clone()
        };
        assert!(matches!(
            decide(Some(&unvalidated), Some("x"), later),
            Outcome::Replay(_)
        ));
        let no_data = IdempotencyRecord {
            data: None,
            ..done.clone()
        };
        assert_eq!(
            decide(Some(&no_data), None, later),
            Outcome::Replay("null".into())
        );
        assert_eq!(
            decide(Some(&done), Some("x"), now.plus(2 * HOUR)),
            Outcome::Fresh
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-zA-Z0-9 _#\"\\\\é]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The same value with every object's keys inserted in reverse order.
    fn reinsert_reversed(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m.iter().rev() {
                    out.insert(k.clone(), reinsert_reversed(x));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(reinsert_reversed).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn hash_ignores_key_order_and_formatting(v in json_value()) {
            let reordered = reinsert_reversed(&v);
            prop_assert_eq!(payload_hash(&v), payload_hash(&reordered));
            let pretty: Value = serde_json::from_str(&serde_json::to_string_pretty(&reordered).unwrap()).unwrap();
            prop_assert_eq!(payload_hash(&v), payload_hash(&pretty));
            // Canonical JSON is JSON for the same value.
            let back: Value = serde_json::from_str(&canonical_json(&v)).unwrap();
            prop_assert_eq!(back, v);
        }

        #[test]
        fn a_changed_payload_is_a_mismatch(v in json_value(), w in json_value(), secs in 0i64..3600) {
            prop_assume!(v != w);
            let now = Timestamp::from_secs(1_700_000_000);
            let record = IdempotencyRecord::in_progress("i", Some(payload_hash(&v)), now, HOUR, HOUR)
                .completed("1".into(), now, HOUR);
            let at = now.plus(Duration::from_secs(secs as u64));
            prop_assert_eq!(decide(Some(&record), Some(&payload_hash(&w)), at), Outcome::PayloadMismatch);
            prop_assert_eq!(decide(Some(&record), Some(&payload_hash(&v)), at), Outcome::Replay("1".into()));
        }

        /// The decision follows the Powertools condition, for every record and time.
        #[test]
        fn decision_follows_the_claim_condition(
            expiration in 0i64..2_000,
            ipe in proptest::option::of(0i64..2_000_000),
            completed in any::<bool>(),
            now_ms in 0i64..2_000_000,
        ) {
            let record = IdempotencyRecord {
                id: "i".into(),
                expiration,
                in_progress_expiration: ipe,
                status: if completed { Status::Completed } else { Status::InProgress },
                data: completed.then(|| "7".to_owned()),
                validation: Some("h".into()),
            };
            let now = t(now_ms);
            let condition = expiration < now_ms.div_euclid(1000)
                || (!completed && ipe.is_some_and(|p| p < now_ms));
            prop_assert_eq!(record.is_claimable(now), condition);
            let expected = if condition {
                Outcome::Fresh
            } else if completed {
                Outcome::Replay("7".into())
            } else {
                Outcome::InProgress
            };
            prop_assert_eq!(decide(Some(&record), Some("h"), now), expected);
            // Claimability never comes back as time passes.
            if condition {
                prop_assert!(record.is_claimable(t(now_ms + 1)));
            }
        }
    }
}
