//! The order aggregate as stored and as returned by the API.

use crate::money::Money;
use crate::saga::SagaState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Reserved,
    Paid,
    Dispatched,
    Delivered,
    /// Compensations are running; the order ends CANCELLED when they are all confirmed.
    Cancelling,
    Cancelled,
    CompensationFailed,
}

impl OrderStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::CompensationFailed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Reserved => "RESERVED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Dispatched => "DISPATCHED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelling => "CANCELLING",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::CompensationFailed => "COMPENSATION_FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postcode: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Wallet,
    Card,
}

/// A priced line: the price comes from the menu at the time of ordering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub menu_item_id: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// What a worker needs to reserve stock: no prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemQuantity {
    pub menu_item_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub at: String,
    pub status: OrderStatus,
    /// The message type or API action that caused the transition.
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub restaurant_id: String,
    pub items: Vec<LineItem>,
    pub total: Money,
    pub delivery_address: Address,
    pub payment_method: PaymentMethod,
    /// The payment provider's token for the card (CARD orders only): what the payment
    /// step charges. Never shown in [`OrderView`]; orders written before cards existed
    /// read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Optimistic-concurrency version: every write is conditional on it.
    pub version: u64,
    pub saga: SagaState,
    pub timeline: Vec<TimelineEntry>,
    /// When the step the order waits on is due ([`crate::saga::awaiting`]); absent at
    /// rest. The sweeper finds orders left past it by a lost message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

impl Order {
    pub fn status(&self) -> OrderStatus {
        self.saga.status
    }

    pub fn item_quantities(&self) -> Vec<ItemQuantity> {
        self.items
            .iter()
            .map(|l| ItemQuantity {
                menu_item_id: l.menu_item_id.clone(),
                quantity: l.quantity,
            })
            .collect()
    }
}

/// The public shape of an order (no outbox, no internal saga bookkeeping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub customer_id: String,
    pub restaurant_id: String,
    pub status: OrderStatus,
    pub items: Vec<LineItem>,
    pub total: Money,
    pub delivery_address: Address,
    pub payment_method: PaymentMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            order_id: o.order_id.clone(),
            customer_id: o.customer_id.clone(),
            restaurant_id: o.restaurant_id.clone(),
            status: o.status(),
            items: o.items.clone(),
            total: o.total.clone(),
            delivery_address: o.delivery_address.clone(),
            payment_method: o.payment_method,
            courier_id: o.saga.courier_id.clone(),
            cancel_reason: o.saga.cancel_reason.clone(),
            created_at: o.created_at.clone(),
            updated_at: o.updated_at.clone(),
        }
    }
}
