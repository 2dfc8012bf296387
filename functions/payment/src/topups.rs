//! Paid top-ups: the record of one (its request, its provider charge, its outcome), the
//! port and its DynamoDB adapter.
//!
//! A top-up is `WALLET#{customerId}`/`TOPUP#{topUpId}`. It is written `PENDING` before the
//! card is charged and settled by one write conditional on still being `PENDING`:
//! `CREDITED` together with the wallet credit and its ledger entry (one transaction, see
//! [`crate::wallets::credit`]), `DECLINED` when the provider refused the card, or
//! `REFUNDED` when the charge went through but the wallet could not take the money (its
//! limit or currency changed under the request) and the charge was given back. The record
//! is also the request's idempotency record: its id comes from the caller and the
//! `Idempotency-Key`, and it keeps the request's fingerprint.

use crate::ledger::LedgerEntry;
use crate::wallets::{wallet_pk, Credit};
use dishpatch::aws::dynamo::{built, get_as, key, keyed, put_alone, put_new, s, Action, Item};
use dishpatch::error::StoreError;
use dishpatch::keys::top_up_sk;
use dishpatch::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopUpStatus {
    /// The charge was (or is being) asked of the provider; its answer is not recorded.
    Pending,
    /// Charged and credited.
    Credited,
    /// The provider refused the card: nothing was taken.
    Declined,
    /// Charged, but the wallet could not take it: the charge was refunded.
    Refunded,
}

impl TopUpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TopUpStatus::Pending => "PENDING",
            TopUpStatus::Credited => "CREDITED",
            TopUpStatus::Declined => "DECLINED",
            TopUpStatus::Refunded => "REFUNDED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUp {
    pub top_up_id: String,
    pub customer_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: TopUpStatus,
    /// A hash of the request (amount, currency, card token): the same key with another
    /// request is refused, also once the token is no longer kept.
    pub fingerprint: String,
    /// Kept only while PENDING: a retry must repeat the very same keyed charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<String>,
    /// Why it was not credited: the provider's decline code, or `WALLET_LIMIT_EXCEEDED` /
    /// `CURRENCY_MISMATCH` for a refunded charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TopUp {
    pub fn money(&self) -> Money {
        Money::new(self.amount, &self.currency)
    }

    /// The charge's reference and idempotency key at the provider.
    pub fn provider_key(&self) -> String {
        format!("topup:{}", self.top_up_id)
    }

    /// This top-up settled: no card token kept.
    pub fn settled(
        &self,
        status: TopUpStatus,
        charge_id: Option<String>,
        reason: Option<String>,
        at: &str,
    ) -> TopUp {
        TopUp {
            status,
            card_token: None,
            charge_id: charge_id.or_else(|| self.charge_id.clone()),
            reason,
            updated_at: at.to_owned(),
            ..self.clone()
        }
    }
}

#[async_trait::async_trait]
pub trait TopUpStore: Send + Sync {
    async fn get(&self, customer_id: &str, top_up_id: &str) -> Result<Option<TopUp>, StoreError>;
    /// Records a new PENDING top-up; false if one with this id exists.
    async fn begin(&self, top_up: &TopUp) -> Result<bool, StoreError>;
    /// Replaces a PENDING top-up with `settled` (DECLINED, REFUNDED); false if it is no
    /// longer PENDING.
    async fn settle(&self, settled: &TopUp) -> Result<bool, StoreError>;
    /// PENDING -> `credited` (CREDITED), the wallet credit and `entry`, all or nothing.
    async fn credit(&self, credited: &TopUp, entry: &LedgerEntry) -> Result<Credit, StoreError>;
}

fn top_up_key(customer_id: &str, top_up_id: &str) -> Item {
    key(wallet_pk(customer_id), top_up_sk(top_up_id))
}

fn item(top_up: &TopUp) -> Result<Item, StoreError> {
    keyed(top_up_key(&top_up.customer_id, &top_up.top_up_id), top_up)
}

#[derive(Clone, Debug)]
pub struct DynamoTopUpStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoTopUpStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoTopUpStore {
            client,
            table: table.into(),
        }
    }

    /// The whole-item put of `top_up` if the stored one is still PENDING.
    fn replace_pending(&self, top_up: &TopUp) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        built(
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item(top_up)?))
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", s(TopUpStatus::Pending.as_str()))
                .build(),
        )
    }
}

#[async_trait::async_trait]
impl TopUpStore for DynamoTopUpStore {
    async fn get(&self, customer_id: &str, top_up_id: &str) -> Result<Option<TopUp>, StoreError> {
        get_as(
            &self.client,
            &self.table,
            top_up_key(customer_id, top_up_id),
        )
        .await
    }

    async fn begin(&self, top_up: &TopUp) -> Result<bool, StoreError> {
        put_alone(&self.client, &put_new(&self.table, item(top_up)?)?).await
    }

    async fn settle(&self, settled: &TopUp) -> Result<bool, StoreError> {
        put_alone(&self.client, &self.replace_pending(settled)?).await
    }

    async fn credit(&self, credited: &TopUp, entry: &LedgerEntry) -> Result<Credit, StoreError> {
        let guard = Action::Put(self.replace_pending(credited)?);
        crate::wallets::credit(&self.client, &self.table, guard, entry).await
    }
}
