//! What to check: at rest or in flight, and the facts the tables cannot show
//! (alerts sent, initial balances, the card provider's charges).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Nothing moves (the traffic stopped and every queue drained): run the cross-record
    /// checks too, and require every order to be terminal.
    pub expect_quiescent: bool,
    /// Orders that were alerted on `OpsAlertsTopic` (from an [`AlertTap`]). `None`: the
    /// alert check is skipped and COMPENSATION_FAILED orders are listed as unverified.
    pub alerted_orders: Option<BTreeSet<String>>,
    /// Initial wallet balances by customer: adds `balance == initial − captured`
    /// (assumes no top-ups since).
    pub initial_balances: Option<BTreeMap<String, i64>>,
    /// The card provider's charges (e.g. the sandbox's `GET /_sandbox/charges`): each
    /// credited top-up must match one of them exactly. `None`: checked within the
    /// tables only.
    pub provider_charges: Option<Vec<ProviderCharge>>,
}

/// A charge as the card provider records it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCharge {
    pub charge_id: String,
    pub reference: String,
    pub amount: i64,
    #[serde(default)]
    pub refunded_amount: i64,
}

impl CheckOptions {
    /// Everything, for a stack at rest.
    pub fn quiescent() -> Self {
        CheckOptions {
            expect_quiescent: true,
            ..Default::default()
        }
    }
    pub fn expect_quiescent(mut self, on: bool) -> Self {
        self.expect_quiescent = on;
        self
    }
    pub fn alerted_orders(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.alerted_orders = Some(ids.into_iter().collect());
        self
    }
    pub fn initial_balances<S: Into<String>>(
        mut self,
        balances: impl IntoIterator<Item = (S, i64)>,
    ) -> Self {
        self.initial_balances = Some(balances.into_iter().map(|(c, b)| (c.into(), b)).collect());
        self
    }
    pub fn provider_charges(mut self, charges: Vec<ProviderCharge>) -> Self {
        self.provider_charges = Some(charges);
        self
    }
}
