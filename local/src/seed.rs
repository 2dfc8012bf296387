//! Demo data, written through the real tables with the SDK. One small module so the
//! item layouts are easy to adjust when the function authors refine them.
//!
//! Items are only written when missing (`attribute_not_exists(pk)`), so re-seeding a
//! running stack never resets stock or balances.

use aws_config::SdkConfig;
use dishpatch::keys;
use serde_json::{json, Value};

use crate::provision::Stack;
use crate::{Error, Result};

/// The restaurant the demo orders go to.
pub const RESTAURANT_ID: &str = "r-1";
/// A second restaurant, managed by someone else.
pub const OTHER_RESTAURANT_ID: &str = "r-2";
pub const CUSTOMERS: &[(&str, i64)] = &[("alice", 10_000), ("bob", 5_000)];
pub const COURIERS: &[(&str, &str)] = &[("courier-1", "Courier One"), ("courier-2", "Courier Two")];
/// (manager, the restaurants they manage): their tokens carry these.
pub const MANAGERS: &[(&str, &[&str])] = &[("manager-1", &["r-1"]), ("manager-2", &["r-2"])];
/// (restaurantId, name)
pub const RESTAURANTS: &[(&str, &str)] = &[("r-1", "Casa Lisboa"), ("r-2", "Porto Grill")];
/// (menuItemId, name, price in cents, stock) of r-1
pub const MENU: &[(&str, &str, i64, i64)] = &[
    ("m-1", "Margherita", 950, 50),
    ("m-2", "Bifana", 650, 50),
    ("m-3", "Pastel de nata", 150, 200),
];
/// The same of r-2
pub const OTHER_MENU: &[(&str, &str, i64, i64)] = &[("m-21", "Francesinha", 1250, 20)];

/// The restaurants a demo manager manages (none for anyone else).
pub fn restaurants_of(manager: &str) -> Vec<String> {
    MANAGERS
        .iter()
        .filter(|(m, _)| *m == manager)
        .flat_map(|(_, rs)| rs.iter().map(|r| r.to_string()))
        .collect()
}

/// (table logical id, item) pairs of the demo data.
pub fn items() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let menus = [(RESTAURANTS[0], MENU), (RESTAURANTS[1], OTHER_MENU)];
    for ((restaurant, restaurant_name), menu) in menus {
        // The item count a create checks against the cap (functions/inventory/src/menu.rs).
        out.push((
            "InventoryTable",
            json!({
                "pk": keys::restaurant_pk(restaurant),
                "sk": keys::MENU_SK,
                "restaurantId": restaurant,
                "itemCount": menu.len(),
            }),
        ));
        for (id, name, price, stock) in menu {
            out.push((
                "InventoryTable",
                json!({
                    "pk": keys::restaurant_pk(restaurant),
                    "sk": keys::item_sk(id),
                    "restaurantId": restaurant,
                    "restaurantName": restaurant_name,
                    "menuItemId": id,
                    "name": name,
                    "price": {"amount": price, "currency": "EUR"},
                    "available": stock,
                    "reserved": 0,
                    "sold": 0,
                    "stocked": stock,
                }),
            ));
        }
    }
    for (customer, balance) in CUSTOMERS {
        out.push((
            "PaymentsTable",
            json!({
                "pk": keys::wallet_pk(customer),
                "sk": keys::WALLET_SK,
                "customerId": customer,
                "balance": balance,
                "currency": "EUR",
            }),
        ));
        out.push(("PaymentsTable", opening_entry(customer, *balance)));
    }
    for (courier, name) in COURIERS {
        out.push((
            "DeliveryTable",
            json!({
                "pk": keys::courier_pk(courier),
                "sk": keys::COURIER_SK,
                "courierId": courier,
                "name": name,
                "status": "AVAILABLE",
                "gsi1pk": keys::AVAILABLE_COURIERS,
                "gsi1sk": courier,
            }),
        ));
    }
    out
}

/// Writes the demo data into the stack's tables; returns how many items were new.
pub async fn seed(stack: &Stack, sdk: &SdkConfig) -> Result<usize> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut written = 0;
    for (table, item) in items() {
        let Some(t) = stack.tables.get(table) else {
            tracing::warn!(table, "seed skipped: the template has no such table");
            continue;
        };
        let item =
            serde_dynamo::to_item(&item).map_err(|e| Error::Other(format!("seed item: {e}")))?;
        match client
            .put_item()
            .table_name(&t.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => written += 1,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(Error::aws(format!("seed {}", t.name), e)),
        }
    }
    tracing::info!(prefix = %stack.prefix, written, "demo data seeded");
    Ok(written)
}

/// The ledger entry that explains a seeded wallet's balance (an ADMIN credit with a
/// reason), so `balance == sum of entries` holds from the start.
pub fn opening_entry(customer: &str, balance: i64) -> Value {
    let entry = payment::LedgerEntry::admin_credit(
        customer,
        "opening-balance",
        &dishpatch::money::Money::new(balance, "EUR"),
        "opening balance (demo data)",
        "seed",
        "2026-01-01T00:00:00.000Z",
    );
    let mut item = serde_json::to_value(&entry).expect("entries serialize");
    item["pk"] = json!(keys::wallet_pk(customer));
    item["sk"] = json!(entry.sort_key());
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_menu_item_reads_as_a_menu_item_and_counts_match() {
        let inventory: Vec<Value> = items()
            .into_iter()
            .filter(|(t, _)| *t == "InventoryTable")
            .map(|(_, i)| i)
            .collect();
        for (restaurant, _) in RESTAURANTS {
            let pk = keys::restaurant_pk(restaurant);
            let menu: Vec<&Value> = inventory
                .iter()
                .filter(|i| i["pk"] == pk.as_str() && i["sk"] != keys::MENU_SK)
                .collect();
            for item in &menu {
                let m: dishpatch::menu::MenuItem = serde_json::from_value((*item).clone()).unwrap();
                assert_eq!(item["sk"], keys::item_sk(&m.menu_item_id));
                assert!(m.conserves_stock() && m.price.amount > 0);
            }
            let count = inventory
                .iter()
                .find(|i| i["pk"] == pk.as_str() && i["sk"] == keys::MENU_SK)
                .unwrap();
            assert_eq!(count["itemCount"], menu.len());
        }
        assert_eq!(restaurants_of("manager-1"), vec!["r-1"]);
        assert!(restaurants_of("alice").is_empty());
    }
}
