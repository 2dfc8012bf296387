//! Demo data, written through the real tables with the SDK. One small module so the
//! item layouts are easy to adjust when the function authors refine them.
//!
//! Items are only written when missing (`attribute_not_exists(pk)`), so re-seeding a
//! running stack never resets stock or balances.

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::provision::Stack;
use crate::{Error, Result};

pub const RESTAURANT_ID: &str = "r-1";
pub const CUSTOMERS: &[(&str, i64)] = &[("alice", 10_000), ("bob", 5_000)];
pub const COURIERS: &[(&str, &str)] = &[("courier-1", "Courier One"), ("courier-2", "Courier Two")];
/// (menuItemId, name, price in cents, stock)
pub const MENU: &[(&str, &str, i64, i64)] = &[
    ("m-1", "Margherita", 950, 50),
    ("m-2", "Bifana", 650, 50),
    ("m-3", "Pastel de nata", 150, 200),
];

/// (table logical id, item) pairs of the demo data.
pub fn items() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for (id, name, price, stock) in MENU {
        out.push((
            "InventoryTable",
            json!({
                "pk": format!("RESTAURANT#{RESTAURANT_ID}"),
                "sk": format!("ITEM#{id}"),
                "restaurantId": RESTAURANT_ID,
                "restaurantName": "Casa Lisboa",
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
    for (customer, balance) in CUSTOMERS {
        out.push((
            "PaymentsTable",
            json!({
                "pk": format!("WALLET#{customer}"),
                "sk": "WALLET",
                "customerId": customer,
                "balance": balance,
                "currency": "EUR",
            }),
        ));
    }
    for (courier, name) in COURIERS {
        out.push((
            "DeliveryTable",
            json!({
                "pk": format!("COURIER#{courier}"),
                "sk": "COURIER",
                "courierId": courier,
                "name": name,
                "status": "AVAILABLE",
                "gsi1pk": "COURIER#AVAILABLE",
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
