//! The order list and the saga funnel, read from the orders table (a scan of the order
//! items: the console is for a stack the size of a laptop's). One order's timeline is
//! the operator CLI's ([`dishpatch_ops::orders::snapshot`]).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use dishpatch_core::keys;
use dishpatch_ops::Target;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result};

/// The saga's forward path, in order: the funnel's stages.
pub const FORWARD: &[&str] = &["PENDING", "RESERVED", "PAID", "DISPATCHED", "DELIVERED"];
/// Where an order leaves the forward path.
pub const SIDE: &[&str] = &["CANCELLING", "CANCELLED", "COMPENSATION_FAILED"];

/// One order, as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRow {
    pub order_id: String,
    pub status: String,
    pub customer_id: String,
    pub restaurant_id: String,
    /// Minor units and currency, e.g. `(1250, "EUR")`.
    pub total: Option<(i64, String)>,
    pub payment_method: String,
    pub created_at: String,
    pub updated_at: String,
    /// Every status the order has been in (its timeline's and its current one).
    #[serde(skip)]
    pub reached: BTreeSet<String>,
}

impl OrderRow {
    /// An order item of the table (JSON), `None` when it is not an order.
    pub fn of(v: &Value) -> Option<OrderRow> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let order_id = s("/orderId")?;
        let status = s("/status").or_else(|| s("/saga/status"))?;
        // Either stored shape (compact strings or maps).
        let created = s("/createdAt").unwrap_or_default();
        let mut reached: BTreeSet<String> = v
            .get("timeline")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Value::String(_) => dishpatch_core::stored::read_timeline_entry(&created, e)
                    .map(|e| e.status.as_str().to_owned()),
                _ => e.get("status")?.as_str().map(str::to_owned),
            })
            .collect();
        reached.insert(status.clone());
        Some(OrderRow {
            order_id,
            status,
            customer_id: s("/customerId").unwrap_or_default(),
            restaurant_id: s("/restaurantId").unwrap_or_default(),
            total: v
                .pointer("/total/amount")
                .and_then(Value::as_i64)
                .zip(s("/total/currency")),
            payment_method: s("/paymentMethod").unwrap_or_default(),
            created_at: s("/createdAt").unwrap_or_default(),
            updated_at: s("/updatedAt").unwrap_or_default(),
            reached,
        })
    }
}

/// One funnel stage: how many orders ever reached it, and how many are in it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub status: &'static str,
    pub reached: usize,
    pub now: usize,
    /// On the forward path (else a way out of it).
    pub forward: bool,
}

/// The funnel over `orders`: every forward stage, then every way out.
pub fn funnel(orders: &[OrderRow]) -> Vec<Stage> {
    let mut reached: BTreeMap<&str, usize> = BTreeMap::new();
    let mut now: BTreeMap<&str, usize> = BTreeMap::new();
    for o in orders {
        for s in &o.reached {
            *reached.entry(s.as_str()).or_default() += 1;
        }
        *now.entry(o.status.as_str()).or_default() += 1;
    }
    let stage = |status: &'static str, forward| Stage {
        status,
        reached: reached.get(status).copied().unwrap_or(0),
        now: now.get(status).copied().unwrap_or(0),
        forward,
    };
    FORWARD
        .iter()
        .map(|s| stage(s, true))
        .chain(SIDE.iter().map(|s| stage(s, false)))
        .collect()
}

/// Every order of the stack, newest first.
pub async fn scan(target: &Target) -> Result<Vec<OrderRow>> {
    let table = target.table_name("OrdersTable");
    let mut pages = target
        .dynamodb()
        .scan()
        .table_name(&table)
        .filter_expression("sk = :sk")
        .expression_attribute_values(":sk", AttributeValue::S(keys::ORDER_SK.to_owned()))
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| Error::aws(format!("scan {table}"), e))?;
        let v: Value = serde_dynamo::from_item(item)
            .map_err(|e| Error::Other(format!("an item of {table}: {e}")))?;
        out.extend(OrderRow::of(&v));
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(id: &str, created: &str, path: &[&str]) -> OrderRow {
        let timeline: Vec<Value> = path.iter().map(|s| json!({"status": s})).collect();
        OrderRow::of(&json!({
            "orderId": id,
            "createdAt": created,
            "saga": {"status": path.last().unwrap()},
            "timeline": timeline,
            "total": {"amount": 1250, "currency": "EUR"},
        }))
        .unwrap()
    }

    #[test]
    fn the_funnel_counts_every_stage_an_order_reached_and_where_it_is_now() {
        let orders = [
            order("a", "1", &["PENDING", "RESERVED", "PAID", "DISPATCHED"]),
            order(
                "b",
                "2",
                &["PENDING", "RESERVED", "CANCELLING", "CANCELLED"],
            ),
            order("c", "3", &["PENDING"]),
        ];
        assert_eq!(orders[0].total, Some((1250, "EUR".into())));
        let f = funnel(&orders);
        let get = |s: &str| f.iter().find(|x| x.status == s).unwrap().clone();
        assert_eq!((get("PENDING").reached, get("PENDING").now), (3, 1));
        assert_eq!((get("RESERVED").reached, get("RESERVED").now), (2, 0));
        assert_eq!((get("DISPATCHED").reached, get("DISPATCHED").now), (1, 1));
        assert_eq!(
            (get("CANCELLED").reached, get("CANCELLED").forward),
            (1, false)
        );
        assert_eq!(f.len(), FORWARD.len() + SIDE.len());
    }

    #[test]
    fn items_that_are_not_orders_are_left_out() {
        assert_eq!(OrderRow::of(&json!({"pk": "ORDER#x", "sk": "ORDER"})), None);
    }
}
