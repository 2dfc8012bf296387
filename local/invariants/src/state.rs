//! Everything read from the tables, sorted by kind into the views.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;

use crate::views::*;
use crate::{Invariant, Item, Violation};

/// Everything read from the tables.
#[derive(Clone, Default)]
pub(crate) struct State {
    pub(crate) orders: BTreeMap<String, OrderView>,
    pub(crate) items: BTreeMap<(String, String), MenuItemView>,
    pub(crate) reservations: BTreeMap<String, ReservationView>,
    pub(crate) wallets: BTreeMap<String, WalletView>,
    pub(crate) payments: BTreeMap<String, PaymentView>,
    pub(crate) ledger: Vec<LedgerView>,
    pub(crate) top_ups: BTreeMap<String, TopUpView>,
    pub(crate) couriers: BTreeMap<String, CourierView>,
    pub(crate) deliveries: BTreeMap<String, DeliveryView>,
    pub(crate) other: usize,
    pub(crate) unreadable: Vec<Violation>,
}

pub(crate) fn key_of(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The id after `PREFIX#` in the partition key, used when the body lacks it.
pub(crate) fn id_after<'a>(pk: &'a str, prefix: &str) -> Option<&'a str> {
    pk.strip_prefix(prefix)
}

impl State {
    pub(crate) fn read<T: for<'de> Deserialize<'de>>(
        &mut self,
        table: &str,
        item: Item,
    ) -> Option<T> {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        match serde_dynamo::from_item::<_, T>(item) {
            Ok(v) => Some(v),
            Err(e) => {
                self.unreadable.push(Violation {
                    invariant: Invariant::RecordReadable,
                    subject: format!("{table} {pk}/{sk}"),
                    detail: e.to_string(),
                });
                None
            }
        }
    }

    pub(crate) fn add_inventory(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let (Some(r), Some(m)) = (id_after(&pk, "RESTAURANT#"), id_after(&sk, "ITEM#")) {
            let (r, m) = (r.to_owned(), m.to_owned());
            if let Some(mut v) = self.read::<MenuItemView>("inventory", item) {
                v.restaurant_id = r.clone();
                v.menu_item_id = m.clone();
                self.items.insert((r, m), v);
            }
        } else if let Some(o) = id_after(&pk, "RESERVATION#").filter(|_| sk == "RESERVATION") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<ReservationView>("inventory", item) {
                v.order_id = o.clone();
                self.reservations.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }

    pub(crate) fn add_payments(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk == "WALLET") {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<WalletView>("payments", item) {
                v.customer_id = c.clone();
                self.wallets.insert(c, v);
            }
        } else if let Some(o) = id_after(&pk, "PAYMENT#").filter(|_| sk == "PAYMENT") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<PaymentView>("payments", item) {
                v.order_id = o.clone();
                self.payments.insert(o, v);
            }
        } else if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk.starts_with("TX#")) {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<LedgerView>("payments", item) {
                v.customer_id = c;
                self.ledger.push(v);
            }
        } else if let Some(c) = id_after(&pk, "WALLET#").filter(|_| sk.starts_with("TOPUP#")) {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<TopUpView>("payments", item) {
                v.customer_id = c;
                self.top_ups.insert(v.top_up_id.clone(), v);
            }
        } else {
            self.other += 1;
        }
    }

    pub(crate) fn add_delivery(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(c) = id_after(&pk, "COURIER#").filter(|_| sk == "COURIER") {
            let c = c.to_owned();
            if let Some(mut v) = self.read::<CourierView>("delivery", item) {
                v.courier_id = c.clone();
                self.couriers.insert(c, v);
            }
        } else if let Some(o) = id_after(&pk, "DELIVERY#").filter(|_| sk == "DELIVERY") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<DeliveryView>("delivery", item) {
                v.order_id = o.clone();
                self.deliveries.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }

    pub(crate) fn add_order(&mut self, item: Item) {
        let pk = key_of(&item, "pk");
        let sk = key_of(&item, "sk");
        if let Some(o) = id_after(&pk, "ORDER#").filter(|_| sk == "ORDER") {
            let o = o.to_owned();
            if let Some(mut v) = self.read::<OrderView>("orders", item) {
                v.order_id = o.clone();
                self.orders.insert(o, v);
            }
        } else {
            self.other += 1;
        }
    }
}
