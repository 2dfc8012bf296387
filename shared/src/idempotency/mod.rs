//! Idempotency with the semantics of the Powertools for AWS Lambda idempotency utility.
//!
//! A call is identified by key material from domain ids (for HTTP: the caller and the
//! `Idempotency-Key` header; for a saga step: `orderId` and the step; never a transport
//! id such as the SQS message id). [`Idempotency::run`]:
//!
//! 1. claims the key with one conditional write of an `INPROGRESS` record whose
//!    `in_progress_expiration` is the invocation's deadline (the Lambda context's
//!    remaining time) and which stores the payload hash;
//! 2. when a live record holds the key, does not run the handler: a `COMPLETED` record
//!    is replayed ([`Handled::Replayed`]), an `INPROGRESS` one is a concurrent duplicate
//!    ([`IdempotencyError::InProgress`]), a different payload hash is a client error
//!    ([`IdempotencyError::PayloadMismatch`]);
//! 3. otherwise runs the handler: a success is stored (`COMPLETED`, `data`, TTL
//!    `expiration`, default 1 h), a failure deletes the claim so a retry runs.
//!
//! Expiry is decided in code as well as by the table's TTL (which lags, and which the
//! emulator never applies): a `COMPLETED` record past `expiration` counts as absent, and
//! an `INPROGRESS` record past `in_progress_expiration` (its invocation crashed or timed
//! out) may be taken over.
//!
//! Layers: [`record`] is the pure core (record, key, payload hash, expiry rules,
//! [`Outcome`]); [`store`] the persistence port; [`dynamo`] its DynamoDB adapter;
//! [`http`] the `Idempotency-Key` conventions for API routes.

pub mod dynamo;
pub mod http;
pub mod record;
pub mod store;

#[cfg(test)]
mod emulator_tests;

pub use dynamo::DynamoIdempotencyStore;
pub use record::{
    canonical_json, decide, payload_hash, record_id, Clock, IdempotencyRecord, ManualClock,
    Outcome, Status, SystemClock, Timestamp,
};
#[cfg(any(test, feature = "testing"))]
pub use store::InMemoryIdempotencyStore;
pub use store::{Claim, IdempotencyStore};

use crate::error::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a completed result is kept (and replayed), as in Powertools.
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(3600);
/// The longest a Lambda invocation runs: the in-progress expiry when there is no
/// Lambda context to read the deadline from.
pub const MAX_LAMBDA_RUNTIME: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// The part of the record id before `#`, e.g. `order-api.place_order`: one per
    /// idempotent operation, so keys of different operations never meet.
    pub key_prefix: String,
    /// How long a completed result is kept (the TTL `expiration`).
    pub expires_after: Duration,
    /// Store the payload hash and refuse a reused key with a different payload.
    pub payload_validation: bool,
}

impl IdempotencyConfig {
    pub fn new(key_prefix: impl Into<String>) -> Self {
        IdempotencyConfig {
            key_prefix: key_prefix.into(),
            expires_after: DEFAULT_EXPIRES_AFTER,
            payload_validation: true,
        }
    }

    pub fn expires_after(mut self, d: Duration) -> Self {
        self.expires_after = d;
        self
    }

    pub fn without_payload_validation(mut self) -> Self {
        self.payload_validation = false;
        self
    }
}

/// A result, and whether it was produced now or replayed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled<T> {
    /// The handler ran in this call; its result is stored.
    Ran(T),
    /// A previous call's stored result; the handler did not run.
    Replayed(T),
}

impl<T> Handled<T> {
    pub fn into_inner(self) -> T {
        match self {
            Handled::Ran(t) | Handled::Replayed(t) => t,
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self, Handled::Replayed(_))
    }
}

/// Why [`Idempotency::run`] has no result.
#[derive(Debug)]
pub enum IdempotencyError<E> {
    /// A call with this key is running now: retry later (HTTP `409` + `Retry-After`;
    /// SQS: report the item as a batch failure so it comes back).
    InProgress,
    /// The key was used with a different payload: a client error (HTTP `422`; SQS: the
    /// DLQ), never retried.
    PayloadMismatch,
    /// The handler failed; its claim was released, so a retry runs it again.
    Handler(E),
    /// The store failed (the claim could not be made, or a stored result not read).
    Store(StoreError),
}

impl<E> IdempotencyError<E> {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            IdempotencyError::InProgress | IdempotencyError::Store(_)
        )
    }
}

impl<E: std::fmt::Display> std::fmt::Display for IdempotencyError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdempotencyError::InProgress => {
                f.write_str("a call with this idempotency key is in progress")
            }
            IdempotencyError::PayloadMismatch => {
                f.write_str("the idempotency key was used with a different payload")
            }
            IdempotencyError::Handler(e) => write!(f, "{e}"),
            IdempotencyError::Store(e) => write!(f, "idempotency store: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for IdempotencyError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdempotencyError::Handler(e) => Some(e),
            IdempotencyError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The wrapper: a store, a configuration and a clock. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    config: IdempotencyConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    pub fn new(store: Arc<dyn IdempotencyStore>, config: IdempotencyConfig) -> Self {
        Idempotency {
            store,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the system clock (tests: expiry without waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store and clock for one operation: key prefix `"{prefix}.{name}"`, like
    /// Powertools' `"{function}.{handler}"`.
    pub fn for_operation(&self, name: &str) -> Self {
        let mut op = self.clone();
        op.config.key_prefix = if self.config.key_prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.config.key_prefix)
        };
        op
    }

    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn IdempotencyStore> {
        &self.store
    }

    /// The record id for this key material under this configuration's prefix.
    pub fn record_id(&self, key: &[&str]) -> String {
        record_id(&self.config.key_prefix, key)
    }

    /// The payload hash stored in `validation` (`None` when validation is off).
    pub fn validation<P: Serialize + ?Sized>(
        &self,
        payload: &P,
    ) -> Result<Option<String>, StoreError> {
        if !self.config.payload_validation {
            return Ok(None);
        }
        let value =
            serde_json::to_value(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(payload_hash(&value)))
    }

    /// Runs `handler` at most once per `key` while its result is kept (see the module
    /// docs). `remaining` is the invocation's remaining time ([`remaining_time`]): a
    /// claim whose handler never finishes (a crash, a timeout) blocks duplicates until
    /// then, and is taken over after. Only a successful result is stored; a handler
    /// error releases the claim.
    ///
    /// Writes: a fresh call makes two (the claim, then the result; a failed handler's
    /// release instead of the result); a duplicate makes one failed conditional write
    /// and no read.
    pub async fn run<T, E, P, F, Fut>(
        &self,
        key: &[&str],
        payload: &P,
        remaining: Duration,
        handler: F,
    ) -> Result<Handled<T>, IdempotencyError<E>>
    where
        T: Serialize + DeserializeOwned,
        P: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let validation = self.validation(payload).map_err(IdempotencyError::Store)?;
        let now = self.clock.now();
        let claim = IdempotencyRecord::in_progress(
            self.record_id(key),
            validation.clone(),
            now,
            remaining,
            self.config.expires_after,
        );
        if let Claim::Exists(existing) = self
            .store
            .claim(&claim, now)
            .await
            .map_err(IdempotencyError::Store)?
        {
            return match decide(Some(&existing), validation.as_deref(), now) {
                Outcome::Replay(data) => serde_json::from_str(&data)
                    .map(Handled::Replayed)
                    .map_err(|e| {
                        IdempotencyError::Store(StoreError::Corrupt(format!(
                            "stored result of {} does not read back: {e}",
                            claim.id
                        )))
                    }),
                Outcome::PayloadMismatch => Err(IdempotencyError::PayloadMismatch),
                Outcome::InProgress => Err(IdempotencyError::InProgress),
                // The store found a record our rules call claimable: it changed between
                // its check and now. Not ours; the caller retries.
                Outcome::Fresh => {
                    tracing::warn!(id = %claim.id, "claim refused for a claimable record; reporting in progress");
                    Err(IdempotencyError::InProgress)
                }
            };
        }
        match handler().await {
            Ok(result) => {
                match serde_json::to_string(&result) {
                    Ok(data) => {
                        let done =
                            claim.completed(data, self.clock.now(), self.config.expires_after);
                        // The effect happened: answer with it even if it cannot be
                        // recorded. A retry then waits for the claim's in-progress expiry.
                        if let Err(e) = self.store.complete(&done).await {
                            tracing::error!(id = %claim.id, error = %e, "idempotency result not stored");
                        }
                    }
                    Err(e) => {
                        tracing::error!(id = %claim.id, error = %e, "result not serialisable; claim released");
                        self.release(&claim).await;
                    }
                }
                Ok(Handled::Ran(result))
            }
            Err(e) => {
                self.release(&claim).await;
                Err(IdempotencyError::Handler(e))
            }
        }
    }

    async fn release(&self, claim: &IdempotencyRecord) {
        if let Err(e) = self.store.release(claim).await {
            // It stays INPROGRESS until its in-progress expiry, then is taken over.
            tracing::warn!(id = %claim.id, error = %e, "idempotency claim not released");
        }
    }
}

/// The invocation's remaining time from its Lambda context
/// ([`lambda_runtime::Context::deadline`]); [`MAX_LAMBDA_RUNTIME`] without one.
pub fn remaining_time(ctx: Option<&lambda_runtime::Context>) -> Duration {
    match ctx {
        Some(c) if c.deadline > 0 => c
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
        _ => MAX_LAMBDA_RUNTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn setup() -> (Idempotency, Arc<InMemoryIdempotencyStore>, Arc<ManualClock>) {
        let store = Arc::new(InMemoryIdempotencyStore::default());
        let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_700_000_000)));
        let idem = Idempotency::new(store.clone(), IdempotencyConfig::new("test.op"))
            .with_clock(clock.clone());
        (idem, store, clock)
    }

    const SEC: Duration = Duration::from_secs(1);

    async fn call(
        idem: &Idempotency,
        runs: &AtomicUsize,
        payload: serde_json::Value,
        result: Result<u32, &'static str>,
    ) -> Result<Handled<u32>, IdempotencyError<&'static str>> {
        idem.run(&["order-1", "reserve"], &payload, 10 * SEC, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            result
        })
        .await
    }

    #[tokio::test]
    async fn ran_then_replayed_then_expired() {
        let (idem, store, clock) = setup();
        let runs = AtomicUsize::new(0);
        let p = serde_json::json!({"a": 1, "b": [1, 2]});
        assert_eq!(
            call(&idem, &runs, p.clone(), Ok(7)).await.unwrap(),
            Handled::Ran(7)
        );
        assert_eq!(store.writes(), 2, "claim + result");
        let reordered: serde_json::Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        let again = call(&idem, &runs, reordered, Ok(8)).await.unwrap();
        assert_eq!(again, Handled::Replayed(7));
        assert!(again.is_replay());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            store.writes(),
            3,
            "a duplicate is one failed conditional write"
        );
        let record = store.get(&idem.record_id(&["order-1", "reserve"])).unwrap();
        assert_eq!(record.status, Status::Completed);
        assert_eq!(record.data.as_deref(), Some("7"));
        assert_eq!(record.expiration, clock.now().secs() + 3600);
        // Past the TTL (never applied by the store here) it runs again.
        clock.advance(DEFAULT_EXPIRES_AFTER + SEC);
        assert_eq!(call(&idem, &runs, p, Ok(9)).await.unwrap(), Handled::Ran(9));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn mismatch_and_in_progress() {
        let (idem, store, clock) = setup();
        let runs = AtomicUsize::new(0);
        let key = ["order-1", "reserve"];
        let claim = IdempotencyRecord::in_progress(
            idem.record_id(&key),
            idem.validation(&serde_json::json!({"a": 1})).unwrap(),
            clock.now(),
            2 * SEC,
            DEFAULT_EXPIRES_AFTER,
        );
        assert_eq!(
            store.claim(&claim, clock.now()).await.unwrap(),
            Claim::Claimed
        );
        let r = call(&idem, &runs, serde_json::json!({"a": 1}), Ok(1)).await;
        assert!(matches!(r, Err(IdempotencyError::InProgress)));
        assert!(r.unwrap_err().is_retryable());
        let r = call(&idem, &runs, serde_json::json!({"a": 2}), Ok(1)).await;
        assert!(matches!(r, Err(IdempotencyError::PayloadMismatch)));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        // The claimer crashed: after its deadline the key is taken over.
        clock.advance(2 * SEC + Duration::from_millis(1));
        let r = call(&idem, &runs, serde_json::json!({"a": 2}), Ok(5)).await;
        assert_eq!(r.unwrap(), Handled::Ran(5));
        // The crashed claimer cannot overwrite or delete the new owner's record.
        assert!(store
            .complete(&claim.completed("0".into(), clock.now(), SEC))
            .await
            .is_err());
        assert!(store.release(&claim).await.is_err());
        assert_eq!(store.get(&claim.id).unwrap().data.as_deref(), Some("5"));
    }

    #[tokio::test]
    async fn a_failed_handler_releases_its_claim() {
        let (idem, store, _) = setup();
        let runs = AtomicUsize::new(0);
        let p = serde_json::json!({"a": 1});
        let r = call(&idem, &runs, p.clone(), Err("boom")).await;
        assert!(matches!(r, Err(IdempotencyError::Handler("boom"))));
        assert_eq!(r.unwrap_err().to_string(), "boom");
        assert!(store
            .get(&idem.record_id(&["order-1", "reserve"]))
            .is_none());
        assert_eq!(store.writes(), 2, "claim + release");
        assert_eq!(call(&idem, &runs, p, Ok(3)).await.unwrap(), Handled::Ran(3));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn operations_have_their_own_keys() {
        let (idem, _, _) = setup();
        let op = idem.for_operation("place_order");
        assert_eq!(op.config().key_prefix, "test.op.place_order");
        assert!(op.record_id(&["k"]).starts_with("test.op.place_order#"));
        assert_ne!(op.record_id(&["k"]), idem.record_id(&["k"]));
        let runs = AtomicUsize::new(0);
        call(&idem, &runs, serde_json::json!(1), Ok(1))
            .await
            .unwrap();
        let r = op
            .run(&["order-1", "reserve"], &1, SEC, || async {
                Ok::<u32, ()>(2)
            })
            .await;
        assert_eq!(r.unwrap(), Handled::Ran(2));
    }

    #[tokio::test]
    async fn without_payload_validation_any_payload_replays() {
        let store = Arc::new(InMemoryIdempotencyStore::default());
        let idem = Idempotency::new(
            store.clone(),
            IdempotencyConfig::new("p").without_payload_validation(),
        );
        let runs = AtomicUsize::new(0);
        call(&idem, &runs, serde_json::json!(1), Ok(1))
            .await
            .unwrap();
        let r = call(&idem, &runs, serde_json::json!(2), Ok(2))
            .await
            .unwrap();
        assert_eq!(r, Handled::Replayed(1));
        assert_eq!(
            store
                .get(&idem.record_id(&["order-1", "reserve"]))
                .unwrap()
                .validation,
            None
        );
    }

    #[tokio::test]
    async fn an_unreadable_stored_result_is_a_store_error() {
        let (idem, _, _) = setup();
        let runs = AtomicUsize::new(0);
        idem.run(&["k"], &1, SEC, || async { Ok::<_, ()>("text".to_owned()) })
            .await
            .unwrap();
        let r = idem
            .run(&["k"], &1, SEC, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<u32, ()>(1)
            })
            .await;
        assert!(matches!(
            r,
            Err(IdempotencyError::Store(StoreError::Corrupt(_)))
        ));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn remaining_time_from_the_context() {
        assert_eq!(remaining_time(None), MAX_LAMBDA_RUNTIME);
        let mut ctx = lambda_runtime::Context::default();
        assert_eq!(
            remaining_time(Some(&ctx)),
            MAX_LAMBDA_RUNTIME,
            "no deadline"
        );
        let deadline = SystemTime::now() + Duration::from_secs(5);
        ctx.deadline = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = remaining_time(Some(&ctx));
        assert!(
            left <= Duration::from_secs(5) && left > Duration::from_secs(4),
            "{left:?}"
        );
        ctx.deadline = 1;
        assert_eq!(remaining_time(Some(&ctx)), Duration::ZERO, "past");
    }
}
