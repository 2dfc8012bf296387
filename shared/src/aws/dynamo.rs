//! DynamoDB helpers shared by the function adapters.

use crate::error::StoreError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub mod page;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A typed value as a DynamoDB item (serde_dynamo does the mapping).
pub fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The key of the item `pk`/`sk`: every table here is keyed that way.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// `value` as the item stored at `key`: its attributes and the key beside them.
pub fn keyed<T: serde::Serialize>(key: Item, value: &T) -> Result<Item, StoreError> {
    let mut item = to_item(value)?;
    item.extend(key);
    Ok(item)
}

/// A query's items (absent: none) as typed values.
pub fn from_items<T: serde::de::DeserializeOwned>(
    items: Option<Vec<Item>>,
) -> Result<Vec<T>, StoreError> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(from_item)
        .collect()
}

pub fn to_attr<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Maps an SDK error: a failed condition (or a cancelled transaction) is a conflict,
/// everything else is an AWS failure worth retrying.
pub fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or("").to_owned();
    let msg = match &err {
        SdkError::ServiceError(se) => se.err().message().unwrap_or("").to_owned(),
        other => format!("{other:?}"),
    };
    match code.as_str() {
        "ConditionalCheckFailedException" | "TransactionCanceledException" => {
            StoreError::Conflict(format!("{code}: {msg}"))
        }
        _ => StoreError::Aws(format!("{code}: {msg}")),
    }
}

trait CodeOf {
    fn code(&self) -> Option<&str>;
}

impl<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R> CodeOf for SdkError<E, R> {
    fn code(&self) -> Option<&str> {
        match self {
            SdkError::ServiceError(se) => se.err().code(),
            _ => None,
        }
    }
}

/// Reasons a cancelled transaction gives, one per action (`None` where it passed).
pub fn cancellation_reasons<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Vec<Option<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match err {
        SdkError::ServiceError(se) => match se.err() {
            E::TransactionCanceledException(t) => t
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                .collect(),
            _ => vec![],
        },
        _ => vec![],
    }
}

/// One item by key, read strongly consistent: every step decides on what it reads,
/// so a stale read would make it decide twice.
pub async fn get_consistent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(classify)?;
    Ok(out.item)
}

/// [`get_consistent`], as a typed value (the key's attributes are not part of it).
pub async fn get_as<T: serde::de::DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
) -> Result<Option<T>, StoreError> {
    get_consistent(client, table, key)
        .await?
        .map(from_item)
        .transpose()
}

/// Up to 100 items by key, read strongly consistent, in no particular order; missing
/// keys are simply absent. Keys DynamoDB leaves unprocessed (throttling) are asked for
/// again a bounded number of times, then the read fails rather than answer short.
pub async fn batch_get_consistent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let mut out = Vec::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(out);
    }
    let mut request = Some(
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Aws(e.to_string()))?,
    );
    for _ in 0..5 {
        let Some(req) = request.take() else { break };
        let resp = client
            .batch_get_item()
            .request_items(table, req)
            .send()
            .await
            .map_err(classify)?;
        out.extend(
            resp.responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default(),
        );
        request = resp
            .unprocessed_keys
            .and_then(|mut u| u.remove(table))
            .filter(|k| !k.keys().is_empty());
    }
    if request.is_some() {
        return Err(StoreError::Aws(format!("{table}: batch read throttled")));
    }
    Ok(out)
}

/// The cancellation reason of a transaction action whose condition failed.
pub const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// A request builder's result, its error (a missing required field) as a store error.
pub fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Aws(e.to_string()))
}

/// A conditional write's outcome: `true` if it was applied, `false` if its condition
/// failed; any other failure stays an error.
pub fn applied<T>(r: Result<T, StoreError>) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A transaction's `Put` run on its own as one conditional PutItem (see [`applied`]).
pub async fn put_alone(
    client: &aws_sdk_dynamodb::Client,
    put: &aws_sdk_dynamodb::types::Put,
) -> Result<bool, StoreError> {
    applied(
        client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await
            .map_err(classify),
    )
}

/// A transaction's `Update` run on its own as one conditional UpdateItem (see [`applied`]).
pub async fn update_alone(
    client: &aws_sdk_dynamodb::Client,
    update: &aws_sdk_dynamodb::types::Update,
) -> Result<bool, StoreError> {
    applied(
        client
            .update_item()
            .table_name(update.table_name())
            .set_key(Some(update.key().clone()))
            .update_expression(update.update_expression())
            .set_condition_expression(update.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(update.expression_attribute_names().cloned())
            .set_expression_attribute_values(update.expression_attribute_values().cloned())
            .send()
            .await
            .map_err(classify),
    )
}

/// A `Put` of a new item: its condition fails if an item with the same key exists, so
/// the first writer of a record wins and a duplicate learns it lost.
pub fn put_new(table: &str, item: Item) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
    built(
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build(),
    )
}

/// An update of the record at `key` from status `from` to `to`, stamped `updatedAt = at`,
/// whose condition fails unless the record is still `from`: a record moves on once. A
/// caller may narrow the condition further (`#status = :from AND ...`).
pub fn status_move(
    table: &str,
    key: Item,
    from: &str,
    to: &str,
    at: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression("SET #status = :to, updatedAt = :at")
        .condition_expression("#status = :from")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":from", s(from))
        .expression_attribute_values(":to", s(to))
        .expression_attribute_values(":at", s(at))
}

/// One action of a transaction.
#[derive(Debug, Clone)]
pub enum Action {
    Put(aws_sdk_dynamodb::types::Put),
    Update(aws_sdk_dynamodb::types::Update),
}

impl From<Action> for aws_sdk_dynamodb::types::TransactWriteItem {
    fn from(action: Action) -> Self {
        let item = aws_sdk_dynamodb::types::TransactWriteItem::builder();
        match action {
            Action::Put(put) => item.put(put),
            Action::Update(update) => item.update(update),
        }
        .build()
    }
}

/// Runs `actions` as one transaction: all of them, or none ([`Refused`] says why, by
/// each action's position).
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    actions: Vec<Action>,
) -> Result<(), Refused> {
    match client
        .transact_write_items()
        .set_transact_items(Some(actions.into_iter().map(Into::into).collect()))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => Err(Refused {
            reasons: cancellation_reasons(&err),
            error: classify(err),
        }),
    }
}

/// A transaction that wrote nothing: the reason of each action (by its position), and
/// the failure as a store error, for when no reason decides the outcome.
#[derive(Debug)]
pub struct Refused {
    reasons: Vec<Option<String>>,
    pub error: StoreError,
}

impl Refused {
    /// The cancellation reason of action `i` (`None` where it passed, or the
    /// transaction failed as a whole).
    pub fn reason(&self, i: usize) -> Option<&str> {
        self.reasons.get(i).and_then(|r| r.as_deref())
    }

    /// Whether action `i` failed its condition.
    pub fn failed(&self, i: usize) -> bool {
        self.reason(i) == Some(CONDITION_FAILED)
    }

    /// The first action from `from` on that failed its condition.
    pub fn first_failed(&self, from: usize) -> Option<usize> {
        (from..self.reasons.len()).find(|i| self.failed(*i))
    }
}

impl From<Refused> for StoreError {
    fn from(r: Refused) -> Self {
        r.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_record_reads_back_without_its_key() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Record {
            status: String,
        }
        let record = Record {
            status: "RESERVED".into(),
        };
        let item = keyed(key("RESERVATION#o-1", "RESERVATION"), &record).unwrap();
        assert_eq!(item["pk"], s("RESERVATION#o-1"));
        assert_eq!(item["sk"], s("RESERVATION"));
        assert_eq!(from_item::<Record>(item).unwrap(), record);
    }

    #[test]
    fn a_refusal_names_the_actions_whose_condition_failed() {
        let refused = Refused {
            reasons: vec![
                None,
                Some("TransactionConflict".into()),
                Some(CONDITION_FAILED.into()),
            ],
            error: StoreError::Conflict("TransactionCanceledException".into()),
        };
        assert!(!refused.failed(0) && !refused.failed(1) && refused.failed(2));
        assert!(!refused.failed(3), "no such action");
        assert_eq!(refused.reason(1), Some("TransactionConflict"));
        assert_eq!(refused.first_failed(1), Some(2));
        assert_eq!(refused.first_failed(3), None);
        assert!(matches!(StoreError::from(refused), StoreError::Conflict(_)));
    }
}
