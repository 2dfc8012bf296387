//! Customer wallets: the port and its DynamoDB adapter.
//!
//! A wallet is `WALLET#{customerId}`/`WALLET` with `customerId`, `balance` (minor units)
//! and `currency`, flat so that conditions like `balance >= :a` stay simple. A wallet has
//! one currency for life: the first top-up sets it.

use dishpatch::aws::dynamo::{classify, from_item, get_consistent, n, s, Item};
use dishpatch::error::StoreError;
use dishpatch::money::Money;
use serde::{Deserialize, Serialize};

/// The currency of a wallet that does not exist yet (what `GET /v1/wallet` shows).
pub const DEFAULT_CURRENCY: &str = "EUR";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub customer_id: String,
    pub balance: i64,
    pub currency: String,
}

/// What a top-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopUp {
    /// Credited; the wallet after the top-up.
    Credited(Wallet),
    /// The wallet holds another currency: nothing was written.
    CurrencyMismatch,
}

#[async_trait::async_trait]
pub trait WalletStore: Send + Sync {
    /// The customer's wallet (strongly consistent); `None` before the first top-up.
    async fn get(&self, customer_id: &str) -> Result<Option<Wallet>, StoreError>;
    /// Adds `amount` to the wallet, creating it in that currency if it does not exist.
    async fn top_up(&self, customer_id: &str, amount: &Money) -> Result<TopUp, StoreError>;
}

pub fn wallet_key(customer_id: &str) -> Item {
    Item::from([
        ("pk".to_owned(), s(format!("WALLET#{customer_id}"))),
        ("sk".to_owned(), s("WALLET")),
    ])
}

#[derive(Clone, Debug)]
pub struct DynamoWalletStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoWalletStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoWalletStore {
            client,
            table: table.into(),
        }
    }
}

#[async_trait::async_trait]
impl WalletStore for DynamoWalletStore {
    async fn get(&self, customer_id: &str) -> Result<Option<Wallet>, StoreError> {
        get_consistent(&self.client, &self.table, wallet_key(customer_id))
            .await?
            .map(from_item::<Wallet>)
            .transpose()
    }

    async fn top_up(&self, customer_id: &str, amount: &Money) -> Result<TopUp, StoreError> {
        // ADD is atomic: concurrent top-ups and captures never lose an update.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(wallet_key(customer_id)))
            .update_expression(
                "ADD balance :a SET currency = if_not_exists(currency, :c), customerId = :id",
            )
            .condition_expression("attribute_not_exists(currency) OR currency = :c")
            .expression_attribute_values(":a", n(amount.amount))
            .expression_attribute_values(":c", s(&amount.currency))
            .expression_attribute_values(":id", s(customer_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(out) => {
                let item = out
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("top-up returned no wallet".into()))?;
                Ok(TopUp::Credited(from_item(item)?))
            }
            Err(StoreError::Conflict(_)) => Ok(TopUp::CurrencyMismatch),
            Err(e) => Err(e),
        }
    }
}
