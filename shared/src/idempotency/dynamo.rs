//! The DynamoDB adapter: a table with partition key `id` (S) and TTL on `expiration`,
//! items in the Powertools layout.

use super::record::{IdempotencyRecord, Status, Timestamp};
use super::store::{Claim, IdempotencyStore};
use crate::aws::dynamo::{classify, from_item, n, s, to_item};
use crate::error::StoreError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

/// The Powertools claim condition: no record, or one past its `expiration`, or one
/// `INPROGRESS` past its `in_progress_expiration`.
pub const CLAIM_CONDITION: &str = "attribute_not_exists(#id) OR #expiration < :now \
     OR (#status = :inprogress AND attribute_exists(#in_progress_expiration) \
     AND #in_progress_expiration < :now_ms)";

/// Still the claim we wrote (nobody took it over after its in-progress expiry).
const OURS_CONDITION: &str =
    "#status = :inprogress AND #in_progress_expiration = :in_progress_expiration";
const OURS_CONDITION_NO_EXPIRY: &str =
    "#status = :inprogress AND attribute_not_exists(#in_progress_expiration)";

/// How often a failed claim that returned no record is tried again (the record went
/// away between the condition check and our read).
const CLAIM_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoIdempotencyStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A consistent read of one record (the fallback when a failed claim returned no
    /// item; diagnostics and tests).
    pub async fn get(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose()
    }

    /// The one conditional PutItem of a claim.
    pub(crate) async fn put_claim(
        &self,
        record: &IdempotencyRecord,
        now: Timestamp,
    ) -> Result<ClaimPut, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#in_progress_expiration", "in_progress_expiration")
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":now_ms", n(now.millis()))
            .expression_attribute_values(":inprogress", s(Status::InProgress.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimPut::Written),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => Ok(ClaimPut::Blocked(
                    e.item().cloned().map(from_item).transpose()?,
                )),
                _ => Err(classify(err)),
            },
        }
    }

    fn ours_condition<B: OursCondition>(builder: B, claim: &IdempotencyRecord) -> B {
        let builder = builder
            .name("#status", "status")
            .name("#in_progress_expiration", "in_progress_expiration")
            .value(":inprogress", s(Status::InProgress.as_str()));
        match claim.in_progress_expiration {
            Some(t) => builder
                .condition(OURS_CONDITION)
                .value(":in_progress_expiration", n(t)),
            None => builder.condition(OURS_CONDITION_NO_EXPIRY),
        }
    }
}

/// What the claim's PutItem did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaimPut {
    Written,
    /// The condition failed; the blocking record when DynamoDB returned it.
    Blocked(Option<IdempotencyRecord>),
}

/// The condition parts shared by PutItem and DeleteItem builders.
trait OursCondition: Sized {
    fn name(self, k: &str, v: &str) -> Self;
    fn value(self, k: &str, v: aws_sdk_dynamodb::types::AttributeValue) -> Self;
    fn condition(self, c: &str) -> Self;
}

macro_rules! ours_condition {
    ($t:ty) => {
        impl OursCondition for $t {
            fn name(self, k: &str, v: &str) -> Self {
                self.expression_attribute_names(k, v)
            }
            fn value(self, k: &str, v: aws_sdk_dynamodb::types::AttributeValue) -> Self {
                self.expression_attribute_values(k, v)
            }
            fn condition(self, c: &str) -> Self {
                self.condition_expression(c)
            }
        }
    };
}
ours_condition!(aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder);
ours_condition!(aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder);

#[async_trait::async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord, now: Timestamp) -> Result<Claim, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let existing = match self.put_claim(record, now).await? {
                ClaimPut::Written => return Ok(Claim::Claimed),
                // ALL_OLD gives the blocking record with the failure: no second read.
                ClaimPut::Blocked(Some(existing)) => Some(existing),
                ClaimPut::Blocked(None) => self.get(&record.id).await?,
            };
            if let Some(existing) = existing {
                return Ok(Claim::Exists(existing));
            }
        }
        Err(StoreError::Conflict(format!(
            "claim of {} kept failing without a record to show",
            record.id
        )))
    }

    async fn complete(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?));
        Self::ours_condition(put, record)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn release(&self, claim: &IdempotencyRecord) -> Result<(), StoreError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(&claim.id));
        Self::ours_condition(delete, claim)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
