//! The order store port and its DynamoDB adapter. Every write is conditional on
//! the version read, and carries the messages it causes with how each is delivered
//! (the outbox), which the table stream publishes.

use crate::aws::dynamo::page::{
    decode_token, encode_token, query_page, read_in_order, string_key, text,
};
use crate::aws::dynamo::{classify, from_item, s, to_item, Item};
use crate::error::StoreError;
use crate::order::Order;
use crate::outbox::Outgoing;
use crate::stored::{self, compact_outbox, expand_outbox, CompactOutbox};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub orders: Vec<Order>,
    pub next_token: Option<String>,
}

#[async_trait::async_trait]
pub trait OrderStore: Send + Sync {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError>;
    /// Writes `order` if it is new (`expected_version` = None) or still at `expected_version`.
    async fn save(
        &self,
        order: &Order,
        expected_version: Option<u64>,
        outbox: &[Outgoing],
    ) -> Result<(), StoreError>;
    /// The customer's orders, newest first.
    async fn list_for_customer(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError>;
    /// Ids of up to `limit` orders whose [`Order::deadline`] is before `before`, earliest
    /// placed first within each shard. A store without that index finds none.
    async fn overdue(&self, _before: &str, _limit: u32) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }
}

use dishpatch_core::keys::{customer_pk, open_shard, ORDER_PK_PREFIX, ORDER_SK};
pub use dishpatch_core::keys::{
    order_pk, sweep_shard, OVERDUE_INDEX, RESTAURANT_INDEX, SWEEP_SHARDS,
};

/// The stored item: the order plus its keys and the outbox of its latest write, its
/// timeline and outbox in their compact stored form ([`dishpatch_core::stored`]), so an
/// order write stays within one write unit. Reads take the earlier shapes too.
#[derive(Debug, Serialize)]
struct OrderRecord {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    status: String,
    /// Present only with a deadline: the key of the sparse [`OVERDUE_INDEX`].
    #[serde(
        rename = "sweepShard",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    sweep_shard: Option<String>,
    /// Flattened: its `restaurantId` and `createdAt` are the keys of the restaurant
    /// index ([`RESTAURANT_INDEX`]), so they stay top-level attributes of these names.
    #[serde(flatten)]
    order: Order,
    /// The trace context of the latest write's messages, once for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(skip_serializing_if = "StoredOutbox::is_empty")]
    outbox: StoredOutbox,
}

/// The outbox as stored: compact, or the full entries when they do not share what the
/// compact form stores once (and as every item written before it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredOutbox {
    Full(Vec<Outgoing>),
    Compact(CompactOutbox),
}

impl Default for StoredOutbox {
    fn default() -> Self {
        StoredOutbox::Full(vec![])
    }
}

impl StoredOutbox {
    fn is_empty(&self) -> bool {
        matches!(self, StoredOutbox::Full(v) if v.is_empty())
    }

    /// The entries, read with the order item they are in.
    fn entries(self, order: &Order, traceparent: Option<&str>) -> Result<Vec<Outgoing>, String> {
        match self {
            StoredOutbox::Full(v) => Ok(v),
            StoredOutbox::Compact(c) => expand_outbox(order, &c, traceparent),
        }
    }
}

impl OrderRecord {
    fn of(order: &Order, outbox: &[Outgoing]) -> OrderRecord {
        let (outbox, traceparent) = match compact_outbox(order, outbox) {
            Some((c, tp)) => (StoredOutbox::Compact(c), tp),
            None => (StoredOutbox::Full(outbox.to_vec()), None),
        };
        OrderRecord {
            pk: order_pk(&order.order_id),
            sk: ORDER_SK.into(),
            gsi1pk: customer_pk(&order.customer_id),
            gsi1sk: format!("{}#{}", order.created_at, order.order_id),
            status: order.status().as_str().to_owned(),
            sweep_shard: order
                .deadline
                .as_ref()
                .map(|_| sweep_shard(&order.order_id)),
            order: order.clone(),
            traceparent,
            outbox,
        }
    }

    /// The item: the record with its timeline compact, and its deadline as `due` while
    /// the key of the [`OVERDUE_INDEX`] (`deadline`) is the order's placing time, which
    /// never changes: the index entry is written when the order first waits on a deadline
    /// and removed at rest, not moved with every step. The placing time is before every
    /// deadline the order can have, so the index still finds every overdue order.
    fn item(&self) -> Result<Item, StoreError> {
        let mut v = serde_json::to_value(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if let Some(due) = v.as_object_mut().and_then(|o| o.remove("deadline")) {
            // As milliseconds after createdAt when that reads back the same.
            v["due"] = due
                .as_str()
                .and_then(|d| stored::offset_ms(&self.order.created_at, d))
                .map_or(due, Value::from);
            v["deadline"] = Value::String(self.order.created_at.clone());
        }
        v["timeline"] = Value::Array(
            self.order
                .timeline
                .iter()
                .map(|e| stored::timeline_entry(&self.order.created_at, e))
                .collect(),
        );
        to_item(&v)
    }
}

/// Reads every shape an order item has had: timeline entries compact or not, the
/// outbox compact, a list, or absent.
impl<'de> Deserialize<'de> for OrderRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            pk: String,
            sk: String,
            gsi1pk: String,
            gsi1sk: String,
            status: String,
            #[serde(rename = "sweepShard", default)]
            sweep_shard: Option<String>,
            #[serde(flatten)]
            order: Order,
            #[serde(default)]
            traceparent: Option<String>,
            #[serde(default)]
            outbox: StoredOutbox,
        }
        use serde::de::Error;
        let mut v = Value::deserialize(d)?;
        expand_timeline(&mut v).map_err(D::Error::custom)?;
        // The order's deadline: `due` (milliseconds after createdAt, or the time), or
        // `deadline` itself in items written before.
        let created = v["createdAt"].as_str().unwrap_or_default().to_owned();
        if let Some(o) = v.as_object_mut() {
            if let Some(due) = o.remove("due") {
                let due = match due.as_i64() {
                    Some(ms) => Value::from(
                        stored::after_ms(&created, ms)
                            .ok_or_else(|| D::Error::custom("unreadable due"))?,
                    ),
                    None => due,
                };
                o.insert("deadline".into(), due);
            }
        }
        let r: Raw = serde_json::from_value(v).map_err(D::Error::custom)?;
        Ok(OrderRecord {
            pk: r.pk,
            sk: r.sk,
            gsi1pk: r.gsi1pk,
            gsi1sk: r.gsi1sk,
            status: r.status,
            sweep_shard: r.sweep_shard,
            order: r.order,
            traceparent: r.traceparent,
            outbox: r.outbox,
        })
    }
}

/// An order item's timeline (JSON) with every compact entry made a full one.
fn expand_timeline(v: &mut Value) -> Result<(), String> {
    let created = v["createdAt"].as_str().unwrap_or_default().to_owned();
    if let Some(entries) = v.get_mut("timeline").and_then(Value::as_array_mut) {
        for e in entries.iter_mut() {
            let full = stored::read_timeline_entry(&created, e)
                .ok_or_else(|| format!("unreadable timeline entry {e}"))?;
            *e = serde_json::to_value(full).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Only the outbox of a stream image, read whatever its stored shape: the relay needs
/// nothing else.
#[derive(Debug)]
pub struct OutboxImage {
    pub outbox: Vec<Outgoing>,
}

impl<'de> Deserialize<'de> for OutboxImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let outbox = match v.get("outbox") {
            None => vec![],
            // A list reads alone (the order is not needed).
            Some(Value::Array(_)) => {
                serde_json::from_value(v["outbox"].clone()).map_err(D::Error::custom)?
            }
            Some(_) => {
                let r: OrderRecord = serde_json::from_value(v).map_err(D::Error::custom)?;
                r.outbox
                    .entries(&r.order, r.traceparent.as_deref())
                    .map_err(D::Error::custom)?
            }
        };
        Ok(OutboxImage { outbox })
    }
}

#[derive(Clone, Debug)]
pub struct DynamoOrderStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoOrderStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoOrderStore {
            client,
            table: table.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
}

#[async_trait::async_trait]
impl OrderStore for DynamoOrderStore {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(order_pk(order_id)))
            .key("sk", s(ORDER_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item
            .map(|i| from_item::<OrderRecord>(i).map(|r| r.order))
            .transpose()
    }

    async fn save(
        &self,
        order: &Order,
        expected_version: Option<u64>,
        outbox: &[Outgoing],
    ) -> Result<(), StoreError> {
        let record = OrderRecord::of(order, outbox);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record.item()?));
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        put.send().await.map_err(classify)?;
        Ok(())
    }

    async fn list_for_customer(
        &self,
        customer_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let gsi1pk = customer_pk(customer_id);
        let after = page_token
            .map(|token| {
                decode_cursor(token)
                    .filter(|c| c.gsi1pk == gsi1pk)
                    .map(|c| {
                        string_key([
                            ("pk", c.pk),
                            ("sk", c.sk),
                            ("gsi1pk", c.gsi1pk),
                            ("gsi1sk", c.gsi1sk),
                        ])
                    })
                    .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))
            })
            .transpose()?;
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :c")
            .expression_attribute_values(":c", s(&gsi1pk))
            .scan_index_forward(false)
            .limit(page_size as i32);
        let page = query_page(query, after).await?;
        // The index holds keys only (so the order's many updates never write it): the
        // page's orders are read from the table, fresh, in index order; an order deleted
        // since the query is simply left out.
        let orders = read_in_order(&self.client, &self.table, page.items)
            .await?
            .into_iter()
            .map(order_from_item)
            .collect::<Result<_, _>>()?;
        let next_token = page.last.and_then(|k| {
            let get = |n: &str| text(&k, n).map(str::to_owned);
            Some(encode_cursor(&Cursor {
                pk: get("pk")?,
                sk: get("sk")?,
                gsi1pk: get("gsi1pk")?,
                gsi1sk: get("gsi1sk")?,
            }))
        });
        Ok(Page { orders, next_token })
    }

    async fn overdue(&self, before: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for shard in 0..SWEEP_SHARDS {
            if ids.len() >= limit as usize {
                break;
            }
            let left = limit - ids.len() as u32;
            ids.extend(self.overdue_in(&open_shard(shard), before, left).await?);
        }
        Ok(ids)
    }
}

impl DynamoOrderStore {
    /// The id of every order of one shard overdue before `before`, up to `limit`: the
    /// index lists the shard's open orders placed before `before` (or, written before,
    /// due before it), and their items, read strongly consistent, say which are due.
    async fn overdue_in(
        &self,
        shard: &str,
        before: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OVERDUE_INDEX)
                .key_condition_expression("sweepShard = :s AND deadline < :t")
                .expression_attribute_values(":s", s(shard))
                .expression_attribute_values(":t", s(before))
                // One BatchGetItem's worth.
                .limit(100);
            let page = query_page(query, start.take()).await?;
            // In index order.
            for item in read_in_order(&self.client, &self.table, page.items).await? {
                let record = from_item::<OrderRecord>(item)?;
                let due = record.order.deadline.as_deref().is_some_and(|d| d < before);
                if due && ids.len() < limit as usize {
                    if let Some(id) = record.pk.strip_prefix(ORDER_PK_PREFIX) {
                        ids.push(id.to_owned());
                    }
                }
            }
            match page.last {
                Some(k) if ids.len() < limit as usize => start = Some(k),
                _ => return Ok(ids),
            }
        }
    }
}

/// An order from its stored item, as a read of one of the table's indexes finds it.
pub fn order_from_item(item: Item) -> Result<Order, StoreError> {
    from_item::<OrderRecord>(item).map(|r| r.order)
}

/// Longer tokens are not ones this store issued (its cursors are four bounded keys).
const MAX_TOKEN_LEN: usize = 1024;

fn encode_cursor(c: &Cursor) -> String {
    encode_token(c)
}

fn decode_cursor(token: &str) -> Option<Cursor> {
    decode_token(token, MAX_TOKEN_LEN)
}

/// True if the token is one this store could have issued (shape only).
pub fn is_page_token(token: &str) -> bool {
    decode_cursor(token).is_some()
}

#[cfg(test)]
#[path = "orders_emulator_tests.rs"]
mod emulator_tests;
