//! Customer wallets: the port and its DynamoDB adapter.
//!
//! A wallet is `WALLET#{customerId}`/`WALLET` with `customerId`, `balance` (minor units)
//! and `currency`, flat so that conditions like `balance >= :a` stay simple. A wallet has
//! one currency for life: the first credit sets it. Money enters only by a credit that
//! writes its ledger entry and its guard (a top-up settled against a provider charge, or
//! an ADMIN credit's record) in the same transaction: see [`credit`].

use crate::ledger::{put_entry, LedgerEntry};
use dishpatch::aws::dynamo::{built, get_as, key, keyed, n, put_new, s, transact, Action, Item};
use dishpatch::error::StoreError;
use dishpatch::keys::{credit_sk, WALLET_SK};
use serde::{Deserialize, Serialize};

/// The currency of a wallet that does not exist yet (what `GET /v1/wallet` shows).
pub const DEFAULT_CURRENCY: &str = "EUR";
/// The most a wallet may hold (minor units): credits that would pass it are refused.
/// Refunds of the wallet's own payments are never refused.
pub const MAX_BALANCE: i64 = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub customer_id: String,
    pub balance: i64,
    pub currency: String,
}

/// What a credit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// The wallet holds the money and the ledger says so.
    Credited,
    /// The guard was already settled: an earlier run credited (or settled) it.
    AlreadySettled,
    /// The wallet holds another currency: nothing was written.
    CurrencyMismatch,
    /// The balance would pass [`MAX_BALANCE`]: nothing was written.
    LimitExceeded,
}

/// An ADMIN's credit as recorded: the guard that makes a retried credit (same
/// `Idempotency-Key`) land once, and what a replay answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredit {
    pub credit_id: String,
    /// The request's fingerprint: the same key with another request is refused.
    pub fingerprint: String,
    pub entry: LedgerEntry,
}

#[async_trait::async_trait]
pub trait WalletStore: Send + Sync {
    /// The customer's wallet (strongly consistent); `None` before the first credit.
    async fn get(&self, customer_id: &str) -> Result<Option<Wallet>, StoreError>;
    /// The ADMIN credit recorded under this id, if any.
    async fn admin_credit(
        &self,
        customer_id: &str,
        credit_id: &str,
    ) -> Result<Option<AdminCredit>, StoreError>;
    /// Records the ADMIN credit and moves its money, all or nothing (`AlreadySettled` if
    /// a credit with this id exists).
    async fn credit_admin(&self, credit: &AdminCredit) -> Result<Credit, StoreError>;
}

pub use dishpatch::keys::wallet_pk;

pub fn wallet_key(customer_id: &str) -> Item {
    key(wallet_pk(customer_id), WALLET_SK)
}

fn admin_credit_key(customer_id: &str, credit_id: &str) -> Item {
    key(wallet_pk(customer_id), credit_sk(credit_id))
}

/// Moves `entry.amount` into its wallet with `guard` and the ledger entry in one
/// transaction. The guard is what makes the credit happen once (a top-up's PENDING ->
/// CREDITED, a new ADMIN credit record); the wallet is created in the entry's currency
/// if it does not exist, and the credit is refused for another currency or a balance
/// that would pass [`MAX_BALANCE`].
pub async fn credit(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    guard: Action,
    entry: &LedgerEntry,
) -> Result<Credit, StoreError> {
    use aws_sdk_dynamodb::types::Update;
    if entry.amount <= 0 || entry.amount > MAX_BALANCE {
        return Ok(Credit::LimitExceeded);
    }
    let wallet = built(
        Update::builder()
            .table_name(table)
            .set_key(Some(wallet_key(&entry.customer_id)))
            // ADD is atomic: concurrent credits and captures never lose an update.
            .update_expression(
                "ADD balance :a SET currency = if_not_exists(currency, :c), customerId = :id",
            )
            .condition_expression(
                "(attribute_not_exists(currency) OR currency = :c) \
                 AND (attribute_not_exists(balance) OR balance <= :room)",
            )
            .expression_attribute_values(":a", n(entry.amount))
            .expression_attribute_values(":c", s(&entry.currency))
            .expression_attribute_values(":id", s(&entry.customer_id))
            .expression_attribute_values(":room", n(MAX_BALANCE - entry.amount))
            .build(),
    )?;
    let tx = vec![
        guard,
        Action::Update(wallet),
        Action::Put(put_entry(table, entry)?),
    ];
    let Err(refused) = transact(client, tx).await else {
        return Ok(Credit::Credited);
    };
    if refused.failed(0) {
        return Ok(Credit::AlreadySettled);
    }
    if refused.failed(1) {
        let held: Option<Wallet> = get_as(client, table, wallet_key(&entry.customer_id)).await?;
        return Ok(match held {
            Some(w) if w.currency != entry.currency => Credit::CurrencyMismatch,
            // Over the limit then; if the wallet changed since, the caller may retry.
            _ => Credit::LimitExceeded,
        });
    }
    Err(refused.into())
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
        get_as(&self.client, &self.table, wallet_key(customer_id)).await
    }

    async fn admin_credit(
        &self,
        customer_id: &str,
        credit_id: &str,
    ) -> Result<Option<AdminCredit>, StoreError> {
        let key = admin_credit_key(customer_id, credit_id);
        get_as(&self.client, &self.table, key).await
    }

    async fn credit_admin(&self, credit: &AdminCredit) -> Result<Credit, StoreError> {
        let key = admin_credit_key(&credit.entry.customer_id, &credit.credit_id);
        let guard = put_new(&self.table, keyed(key, credit)?)?;
        let guard = Action::Put(guard);
        self::credit(&self.client, &self.table, guard, &credit.entry).await
    }
}
