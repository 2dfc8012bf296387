//! Small views of the stored items: only the attributes the checks read, each
//! defaulted, so extra attributes and new record kinds are tolerated.

use std::collections::BTreeMap;

use serde::Deserialize;

pub(crate) const TERMINAL: &[&str] = &["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];

pub(crate) fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct MoneyView {
    pub(crate) amount: i64,
    pub(crate) currency: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct LineView {
    pub(crate) menu_item_id: String,
    pub(crate) quantity: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SagaView {
    pub(crate) status: String,
    pub(crate) cancel_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OrderView {
    pub(crate) order_id: String,
    pub(crate) customer_id: String,
    pub(crate) restaurant_id: String,
    pub(crate) status: String,
    pub(crate) items: Vec<LineView>,
    pub(crate) total: MoneyView,
    pub(crate) payment_method: String,
    pub(crate) saga: SagaView,
    pub(crate) updated_at: String,
}

impl OrderView {
    pub(crate) fn status(&self) -> &str {
        if self.status.is_empty() {
            &self.saga.status
        } else {
            &self.status
        }
    }
    pub(crate) fn quantities(&self) -> BTreeMap<String, i64> {
        quantities(&self.items)
    }
}

pub(crate) fn quantities(lines: &[LineView]) -> BTreeMap<String, i64> {
    let mut q = BTreeMap::new();
    for l in lines {
        *q.entry(l.menu_item_id.clone()).or_insert(0) += l.quantity;
    }
    q
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct MenuItemView {
    pub(crate) restaurant_id: String,
    pub(crate) menu_item_id: String,
    pub(crate) available: i64,
    pub(crate) reserved: i64,
    pub(crate) sold: i64,
    pub(crate) stocked: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ReservationView {
    pub(crate) order_id: String,
    pub(crate) restaurant_id: String,
    pub(crate) items: Vec<LineView>,
    pub(crate) status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WalletView {
    pub(crate) customer_id: String,
    pub(crate) balance: i64,
    pub(crate) currency: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct LedgerView {
    pub(crate) entry_id: String,
    pub(crate) customer_id: String,
    pub(crate) kind: String,
    pub(crate) amount: i64,
    pub(crate) order_id: Option<String>,
    pub(crate) top_up_id: Option<String>,
    pub(crate) charge_id: Option<String>,
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct TopUpView {
    pub(crate) top_up_id: String,
    pub(crate) customer_id: String,
    pub(crate) amount: i64,
    pub(crate) status: String,
    pub(crate) charge_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PaymentView {
    pub(crate) order_id: String,
    pub(crate) customer_id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    pub(crate) method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct CourierView {
    pub(crate) courier_id: String,
    pub(crate) status: String,
    pub(crate) active_order_id: Option<String>,
    pub(crate) gsi1pk: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct DeliveryView {
    pub(crate) order_id: String,
    pub(crate) courier_id: Option<String>,
    pub(crate) status: String,
    pub(crate) gsi1pk: Option<String>,
}
