//! The soak's world on top of the demo data: customers with wallets (a share of them
//! nearly empty), extra couriers, plenty of stock, and one scarce item.

use std::sync::Arc;

use dishpatch::keys;
use serde_json::{json, Value};

use super::{SoakConfig, World};
use crate::{seed, Error, LocalStack, Result};

/// The scarce item: few units, so some orders find it out of stock.
pub const SCARCE_ITEM: &str = "m-9";
/// Items with plenty of stock: (id, name, price in cents).
pub const ITEMS: &[(&str, &str, i64)] = &[
    ("m-1", "Margherita", 950),
    ("m-2", "Bifana", 650),
    ("m-3", "Pastel de nata", 150),
];
const RICH: i64 = 200_000;
const POOR: i64 = 1_500;

pub async fn prepare(config: &SoakConfig, local: &LocalStack) -> Result<World> {
    let db = aws_sdk_dynamodb::Client::new(&local.sdk);
    let payments = local.stack.table_name("PaymentsTable").to_owned();
    let delivery = local.stack.table_name("DeliveryTable").to_owned();

    let mut customers = Vec::new();
    let mut balances: Vec<(String, i64)> = seed::CUSTOMERS
        .iter()
        .map(|(c, b)| (c.to_string(), *b))
        .collect();
    let poor_every = if config.poor_customer_share > 0.0 {
        (1.0 / config.poor_customer_share).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    for i in 0..config.customers.max(1) {
        let id = format!("soak-c{i:03}");
        let balance = if i % poor_every == poor_every - 1 {
            POOR
        } else {
            RICH
        };
        put(
            &db,
            &payments,
            json!({"pk": keys::wallet_pk(&id), "sk": keys::WALLET_SK, "customerId": id,
                   "balance": balance, "currency": "EUR"}),
        )
        .await?;
        put(&db, &payments, seed::opening_entry(&id, balance)).await?;
        balances.push((id.clone(), balance));
        customers.push(id);
    }
    let demo = seed::COURIERS.len();
    for i in demo..config.couriers.max(demo) {
        let id = format!("soak-courier-{}", i + 1);
        put(
            &db,
            &delivery,
            json!({"pk": keys::courier_pk(&id), "sk": keys::COURIER_SK, "courierId": id,
                   "name": format!("Soak courier {}", i + 1), "status": "AVAILABLE",
                   "gsi1pk": keys::AVAILABLE_COURIERS, "gsi1sk": id}),
        )
        .await?;
    }

    // Stock through the manager's API, as a restaurant would set it.
    let http = reqwest::Client::new();
    let token = crate::tokens::TokenRequest::new("soak-manager", &["MANAGER"])
        .restaurants(&[seed::RESTAURANT_ID])
        .mint()
        .map_err(|e| Error::Other(e.to_string()))?;
    let plenty = (config.orders as i64 * 6).clamp(100, 100_000);
    let mut stock: Vec<(&str, &str, i64, i64)> = ITEMS
        .iter()
        .map(|(id, n, p)| (*id, *n, *p, plenty))
        .collect();
    stock.push((SCARCE_ITEM, "Ginjinha", 300, config.scarce_stock.max(0)));
    for (id, name, price, units) in stock {
        let url = format!(
            "{}/v1/restaurants/{}/menu/items/{id}",
            local.url(),
            seed::RESTAURANT_ID
        );
        let resp = http
            .put(url)
            .bearer_auth(&token)
            .json(&json!({"name": name, "price": {"amount": price, "currency": "EUR"}, "stock": units}))
            .send()
            .await
            .map_err(|e| Error::Other(format!("set stock of {id}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::Other(format!(
                "set stock of {id}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            )));
        }
    }
    Ok(World {
        customers: Arc::new(customers),
        initial_balances: balances,
        couriers: config.couriers.max(demo),
    })
}

async fn put(db: &aws_sdk_dynamodb::Client, table: &str, item: Value) -> Result<()> {
    let item = serde_dynamo::to_item(item).map_err(|e| Error::Other(format!("item: {e}")))?;
    db.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| Error::aws(format!("put into {table}"), e))?;
    Ok(())
}
