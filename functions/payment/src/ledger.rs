//! The wallet ledger: one entry per movement of a wallet's money (a paid top-up, an order's
//! capture, its refund, an ADMIN credit), written in the same transaction as the move, so
//! a wallet's balance always equals the sum of its entries.
//!
//! An entry is `WALLET#{customerId}` / `TX#{createdAt}#{entryId}` beside the wallet item:
//! one query of the wallet's partition, newest first, reads the customer's history.
//! Entries are never updated or deleted.

use dishpatch::aws::dynamo::page::{decode_text_token, encode_text_token, query_page, text};
use dishpatch::aws::dynamo::{from_item, key, keyed, put_new, s};
use dishpatch::error::StoreError;
use dishpatch::keys::{ledger_sk, LEDGER_SK_PREFIX as SK_PREFIX};
use dishpatch::money::Money;
use serde::{Deserialize, Serialize};

/// Longest sort key a page token may carry (`TX#` + a timestamp + an entry id).
const MAX_CURSOR_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryKind {
    /// Money in from a successful card charge.
    TopUp,
    /// An order paid from the wallet (negative).
    Capture,
    /// An order's wallet payment given back.
    Refund,
    /// Money in by an ADMIN, with a recorded reason.
    AdminCredit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Unique per movement: `capture:{orderId}`, `refund:{orderId}`, `topup:{topUpId}`,
    /// `credit:{creditId}`.
    pub entry_id: String,
    pub customer_id: String,
    pub kind: EntryKind,
    /// Signed minor units: positive into the wallet, negative out of it.
    pub amount: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_up_id: Option<String>,
    /// The provider's charge behind a top-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<String>,
    /// Why an ADMIN credited the wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ADMIN who credited it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub created_at: String,
}

impl LedgerEntry {
    fn base(
        customer_id: &str,
        kind: EntryKind,
        entry_id: String,
        amount: i64,
        currency: &str,
        at: &str,
    ) -> Self {
        LedgerEntry {
            entry_id,
            customer_id: customer_id.to_owned(),
            kind,
            amount,
            currency: currency.to_owned(),
            order_id: None,
            top_up_id: None,
            charge_id: None,
            reason: None,
            actor: None,
            created_at: at.to_owned(),
        }
    }

    /// The debit of an order paid from the wallet.
    pub fn capture(customer_id: &str, order_id: &str, amount: &Money, at: &str) -> Self {
        LedgerEntry {
            order_id: Some(order_id.to_owned()),
            ..Self::base(
                customer_id,
                EntryKind::Capture,
                format!("capture:{order_id}"),
                -amount.amount,
                &amount.currency,
                at,
            )
        }
    }

    /// The credit of an order's wallet payment given back.
    pub fn refund(customer_id: &str, order_id: &str, amount: &Money, at: &str) -> Self {
        LedgerEntry {
            order_id: Some(order_id.to_owned()),
            ..Self::base(
                customer_id,
                EntryKind::Refund,
                format!("refund:{order_id}"),
                amount.amount,
                &amount.currency,
                at,
            )
        }
    }

    /// The credit of a paid top-up.
    pub fn top_up(
        customer_id: &str,
        top_up_id: &str,
        charge_id: &str,
        amount: &Money,
        at: &str,
    ) -> Self {
        LedgerEntry {
            top_up_id: Some(top_up_id.to_owned()),
            charge_id: Some(charge_id.to_owned()),
            ..Self::base(
                customer_id,
                EntryKind::TopUp,
                format!("topup:{top_up_id}"),
                amount.amount,
                &amount.currency,
                at,
            )
        }
    }

    /// An ADMIN's credit, with its reason.
    pub fn admin_credit(
        customer_id: &str,
        credit_id: &str,
        amount: &Money,
        reason: &str,
        actor: &str,
        at: &str,
    ) -> Self {
        LedgerEntry {
            reason: Some(reason.to_owned()),
            actor: Some(actor.to_owned()),
            ..Self::base(
                customer_id,
                EntryKind::AdminCredit,
                format!("credit:{credit_id}"),
                amount.amount,
                &amount.currency,
                at,
            )
        }
    }

    pub fn sort_key(&self) -> String {
        ledger_sk(&self.created_at, &self.entry_id)
    }
}

/// The put that records `entry` (inside the transaction that moves the money).
pub fn put_entry(
    table: &str,
    entry: &LedgerEntry,
) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
    let key = key(
        crate::wallets::wallet_pk(&entry.customer_id),
        entry.sort_key(),
    );
    put_new(table, keyed(key, entry)?)
}

/// One page of a wallet's entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    pub next_token: Option<String>,
}

#[async_trait::async_trait]
pub trait LedgerStore: Send + Sync {
    /// Up to `page_size` entries of the customer's wallet, newest first, after the page
    /// `page_token` ended (a token from [`LedgerPage::next_token`]).
    async fn page(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<LedgerPage, StoreError>;
}

/// A page token: the last sort key read, opaque to clients.
pub fn encode_cursor(sort_key: &str) -> String {
    encode_text_token(sort_key)
}

/// The sort key a page token names, if it is one this store could have issued.
pub fn decode_cursor(token: &str) -> Option<String> {
    let sk = decode_text_token(token, MAX_CURSOR_LEN * 2)?;
    (sk.starts_with(SK_PREFIX)
        && sk.len() <= MAX_CURSOR_LEN
        && sk.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(sk)
}

#[derive(Clone, Debug)]
pub struct DynamoLedgerStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoLedgerStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoLedgerStore {
            client,
            table: table.into(),
        }
    }
}

#[async_trait::async_trait]
impl LedgerStore for DynamoLedgerStore {
    async fn page(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<LedgerPage, StoreError> {
        let pk = crate::wallets::wallet_pk(customer_id);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tx)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":tx", s(SK_PREFIX))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(page_size as i32);
        let after = page_token
            .map(|token| {
                decode_cursor(token)
                    .map(|sk| key(&pk, sk))
                    .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))
            })
            .transpose()?;
        let page = query_page(query, after).await?;
        let entries = page
            .items
            .into_iter()
            .map(from_item::<LedgerEntry>)
            .collect::<Result<_, _>>()?;
        let next_token = page
            .last
            .as_ref()
            .and_then(|k| text(k, "sk"))
            .map(encode_cursor);
        Ok(LedgerPage {
            entries,
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_the_store_never_issued() {
        let sk = "TX#2026-12-06T08:00:00.000Z#capture:o-1";
        assert_eq!(decode_cursor(&encode_cursor(sk)).as_deref(), Some(sk));
        for bad in [
            "",
            "%%%",
            &encode_cursor("WALLET"),
            &encode_cursor("TX#a b"),
            &"A".repeat(1000),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_sort_by_time_then_id_and_carry_their_sign() {
        let m = Money::new(950, "EUR");
        let c = LedgerEntry::capture("c-1", "o-1", &m, "2026-12-06T08:00:00.000Z");
        let r = LedgerEntry::refund("c-1", "o-1", &m, "2026-12-06T08:00:01.000Z");
        assert_eq!(c.amount, -950);
        assert_eq!(r.amount, 950);
        assert!(c.sort_key() < r.sort_key());
    }
}
