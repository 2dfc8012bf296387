//! The payment record (one per order) and the wallet moves it makes: the port and its
//! DynamoDB adapter.
//!
//! A payment is `PAYMENT#{orderId}`/`PAYMENT` in the payments table, beside the wallets
//! (`WALLET#{customerId}`/`WALLET`). A capture writes the record, debits the wallet and
//! writes the debit's ledger entry in ONE transaction (the record conditional on not
//! existing, the debit on the balance covering it); a refund flips CAPTURED -> REFUNDED,
//! credits the wallet and writes the credit's entry in one transaction. So a customer is charged at most once and refunded at most once per order.
//!
//! A card payment has no wallet to move: the record is written `PENDING` before the
//! provider is called and moved on (`CAPTURED` with the provider's charge id, or
//! `DECLINED`) by one write conditional on still being `PENDING`; a card refund moves
//! `CAPTURED` -> `REFUNDED` the same way (see `handlers` for the flow).

use crate::ledger::{put_entry, LedgerEntry};
use crate::wallets::wallet_key;
use dishpatch::aws::dynamo::{
    applied, built, classify, get_as, key, keyed, n, put_alone, put_new, s, status_move, transact,
    Action, Item,
};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;
use dishpatch::keys::{payment_pk, PAYMENT_SK};
use dishpatch::money::Money;
use dishpatch::order::PaymentMethod;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// A card charge was (or is being) asked of the provider, whose answer is not yet
    /// recorded: the money may or may not have been taken. Only card payments pass here.
    Pending,
    /// The money was taken.
    Captured,
    /// Nothing was taken: the recorded outcome of a refused capture.
    Declined,
    /// The money was taken and given back.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Captured => "CAPTURED",
            PaymentStatus::Declined => "DECLINED",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }
}

/// Flat (amount and currency side by side) like the wallet, so conditions stay simple.
///
/// A tombstone (see [`Payment::tombstone`]) knows only its order: no customer, currency
/// or method is stored for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub customer_id: String,
    /// Minor units.
    pub amount: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<PaymentMethod>,
    pub status: PaymentStatus,
    /// Why a DECLINED payment was refused (a stable code such as `INSUFFICIENT_FUNDS`, or
    /// `CARD_DECLINED: insufficient_funds` from the card provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The provider's charge (a CAPTURED or REFUNDED card payment): what a refund names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<String>,
    /// The provider's refund (a REFUNDED card payment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The card token, kept only while PENDING: a redelivered capture, or a refund that
    /// finds the capture's outcome unknown, must repeat the very same keyed request.
    /// Settling the payment (any other status) rewrites the record without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Payment {
    /// The record of a capture of `amount` for the order (CAPTURED, as it is written).
    pub fn captured(
        order_id: &str,
        customer_id: &str,
        amount: Money,
        method: PaymentMethod,
        at: String,
    ) -> Self {
        Payment {
            order_id: order_id.to_owned(),
            customer_id: customer_id.to_owned(),
            amount: amount.amount,
            currency: amount.currency,
            method: Some(method),
            status: PaymentStatus::Captured,
            reason: None,
            charge_id: None,
            refund_id: None,
            card_token: None,
            created_at: at.clone(),
            updated_at: at,
        }
    }

    /// The record a card capture writes before it calls the provider (PENDING).
    pub fn pending_card(
        order_id: &str,
        customer_id: &str,
        amount: Money,
        card_token: &str,
        at: String,
    ) -> Self {
        Payment {
            status: PaymentStatus::Pending,
            card_token: Some(card_token.to_owned()),
            ..Payment::captured(order_id, customer_id, amount, PaymentMethod::Card, at)
        }
    }

    /// What a refund leaves when it finds no payment ("cancel wins"): REFUNDED, of 0. The
    /// saga refunds a capture that missed its deadline, whose command may still be in
    /// flight; when it lands it finds this record and takes no money.
    pub fn tombstone(order_id: &str, at: String) -> Self {
        Payment {
            order_id: order_id.to_owned(),
            customer_id: String::new(),
            amount: 0,
            currency: String::new(),
            method: None,
            status: PaymentStatus::Refunded,
            reason: None,
            charge_id: None,
            refund_id: None,
            card_token: None,
            created_at: at.clone(),
            updated_at: at,
        }
    }

    /// The amount; a tombstone's zero in the default currency, as a refund that found no
    /// payment always answered.
    pub fn money(&self) -> Money {
        let currency = match self.currency.as_str() {
            "" => crate::wallets::DEFAULT_CURRENCY,
            c => c,
        };
        Money::new(self.amount, currency)
    }
}

/// What an attempt to capture from the wallet did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The wallet is debited and the payment recorded CAPTURED.
    Captured,
    /// A payment for this order already exists (a duplicate, or a concurrent one won).
    Exists,
    /// No wallet, another currency, or a balance short of the amount: nothing was written.
    Refused,
}

#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync {
    /// The order's payment (strongly consistent).
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError>;
    /// Records `payment` (new, CAPTURED) and debits the customer's wallet, all or nothing.
    async fn capture_from_wallet(&self, payment: &Payment) -> Result<Capture, StoreError>;
    /// Records a new payment (DECLINED, a REFUNDED tombstone, or a card's PENDING) if none
    /// exists; false if one did.
    async fn record(&self, payment: &Payment) -> Result<bool, StoreError>;
    /// Replaces the order's payment with `payment` if it is still `expected` (a card's
    /// PENDING -> CAPTURED / DECLINED, CAPTURED -> REFUNDED); false if it is not.
    async fn replace(&self, payment: &Payment, expected: PaymentStatus)
        -> Result<bool, StoreError>;
    /// CAPTURED -> REFUNDED and the amount back into the wallet, in one transaction.
    /// False if the payment is no longer CAPTURED.
    async fn refund_to_wallet(&self, payment: &Payment) -> Result<bool, StoreError>;
}

fn payment_key(order_id: &str) -> Item {
    key(payment_pk(order_id), PAYMENT_SK)
}

#[derive(Clone, Debug)]
pub struct DynamoPaymentStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPaymentStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoPaymentStore {
            client,
            table: table.into(),
        }
    }

    fn item(payment: &Payment) -> Result<Item, StoreError> {
        keyed(payment_key(&payment.order_id), payment)
    }

    fn put_new(&self, payment: &Payment) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        put_new(&self.table, Self::item(payment)?)
    }

    /// The payer's wallet balance moved by the payment's amount (`:a`, in its currency
    /// `:c`) as `update` says, if `condition` holds.
    fn move_balance(
        &self,
        payment: &Payment,
        update: &str,
        condition: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(wallet_key(&payment.customer_id)))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_values(":a", n(payment.amount))
                .expression_attribute_values(":c", s(&payment.currency))
                .build(),
        )
    }
}

#[async_trait::async_trait]
impl PaymentStore for DynamoPaymentStore {
    async fn get(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        get_as(&self.client, &self.table, payment_key(order_id)).await
    }

    async fn capture_from_wallet(&self, payment: &Payment) -> Result<Capture, StoreError> {
        let debit = self.move_balance(
            payment,
            "SET balance = balance - :a",
            // Fails for a missing wallet too (no balance to compare).
            "balance >= :a AND currency = :c",
        )?;
        let entry = LedgerEntry::capture(
            &payment.customer_id,
            &payment.order_id,
            &payment.money(),
            &payment.created_at,
        );
        let tx = vec![
            Action::Put(self.put_new(payment)?),
            Action::Update(debit),
            Action::Put(put_entry(&self.table, &entry)?),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Capture::Captured);
        };
        // The record decides first: if it exists, the wallet question is moot.
        if refused.failed(0) {
            return Ok(Capture::Exists);
        }
        if refused.failed(1) {
            return Ok(Capture::Refused);
        }
        // TransactionConflict (the wallet is in another transaction) or an AWS failure:
        // nothing was written, the command is retried.
        Err(refused.into())
    }

    async fn record(&self, payment: &Payment) -> Result<bool, StoreError> {
        put_alone(&self.client, &self.put_new(payment)?).await
    }

    async fn replace(
        &self,
        payment: &Payment,
        expected: PaymentStatus,
    ) -> Result<bool, StoreError> {
        // A whole-item put: fields the new state does not carry (the card token) go.
        applied(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(payment)?))
                .condition_expression("#status = :expected")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":expected", s(expected.as_str()))
                .send()
                .await
                .map_err(classify),
        )
    }

    async fn refund_to_wallet(&self, payment: &Payment) -> Result<bool, StoreError> {
        let at = now();
        let refunded = built(
            status_move(
                &self.table,
                payment_key(&payment.order_id),
                PaymentStatus::Captured.as_str(),
                PaymentStatus::Refunded.as_str(),
                &at,
            )
            .build(),
        )?;
        let credit = self.move_balance(payment, "SET balance = balance + :a", "currency = :c")?;
        let entry = LedgerEntry::refund(
            &payment.customer_id,
            &payment.order_id,
            &payment.money(),
            &at,
        );
        let tx = vec![
            Action::Update(refunded),
            Action::Update(credit),
            Action::Put(put_entry(&self.table, &entry)?),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(true);
        };
        if refused.failed(0) {
            return Ok(false);
        }
        if refused.failed(1) {
            // The wallet the money came from is gone or changed currency: never true
            // unless edited by hand. Refuse (the command goes to the DLQ after its retries
            // and the saga raises the alert) rather than credit the wrong thing.
            return Err(StoreError::Corrupt(format!(
                "wallet of {} cannot take back {} {}",
                payment.customer_id, payment.amount, payment.currency
            )));
        }
        Err(refused.into())
    }
}
