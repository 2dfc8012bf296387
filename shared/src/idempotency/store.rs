//! The persistence port, and an in-memory adapter for tests.

use super::record::{IdempotencyRecord, Timestamp};
use crate::error::StoreError;

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The record is written: this caller runs the handler.
    Claimed,
    /// A live record holds the key (as it was when the claim failed).
    Exists(IdempotencyRecord),
}

/// Where idempotency records live. Every method is one write.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Writes the `INPROGRESS` `record` unless a live record holds its id, in one
    /// conditional write: it succeeds when there is no record, when the record is past
    /// its `expiration`, or when it is `INPROGRESS` past its `in_progress_expiration`
    /// ([`IdempotencyRecord::is_claimable`] at `now`). A failed claim returns the record
    /// that blocked it.
    async fn claim(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Claim, StoreError>;

    /// Replaces a claim with its `COMPLETED` record, if the claim is still there
    /// (`INPROGRESS` with the same `in_progress_expiration`); else [`StoreError::Conflict`].
    async fn complete(&self, record: &IdempotencyRecord) -> Result<(), StoreError>;

    /// Deletes a claim whose handler failed, if it is still there (as for `complete`),
    /// so a retry runs; else [`StoreError::Conflict`].
    async fn release(&self, claim: &IdempotencyRecord) -> Result<(), StoreError>;
}

/// Whether `existing` is still the claim `ours` (nobody took it over).
#[cfg(any(test, feature = "testing"))]
fn still_ours(existing: &IdempotencyRecord, ours: &IdempotencyRecord) -> bool {
    existing.status == super::record::Status::InProgress
        && existing.in_progress_expiration == ours.in_progress_expiration
}

/// Records in a map, with the same conditions as the DynamoDB adapter (tests only:
/// the DynamoDB semantics themselves are proven against the emulator).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    pub records: std::sync::Mutex<std::collections::HashMap<String, IdempotencyRecord>>,
    /// Write requests made, failed conditional ones included (DynamoDB bills those too).
    pub writes: std::sync::atomic::AtomicUsize,
}

#[cfg(any(test, feature = "testing"))]
impl InMemoryIdempotencyStore {
    pub fn get(&self, id: &str) -> Option<IdempotencyRecord> {
        self.records.lock().unwrap().get(id).cloned()
    }

    pub fn writes(&self) -> usize {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait::async_trait]
impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Claim, StoreError> {
        self.count();
        let mut records = self.records.lock().unwrap();
        match records.get(&record.id) {
            Some(existing) if !existing.is_claimable(now) => Ok(Claim::Exists(existing.clone())),
            _ => {
                records.insert(record.id.clone(), record.clone());
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.count();
        let mut records = self.records.lock().unwrap();
        match records.get(&record.id) {
            Some(existing) if still_ours(existing, record) => {
                records.insert(record.id.clone(), record.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "{} is not our claim",
                record.id
            ))),
        }
    }

    async fn release(&self, claim: &IdempotencyRecord) -> Result<(), StoreError> {
        self.count();
        let mut records = self.records.lock().unwrap();
        match records.get(&claim.id) {
            Some(existing) if still_ours(existing, claim) => {
                records.remove(&claim.id);
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!(
                "{} is not our claim",
                claim.id
            ))),
        }
    }
}
