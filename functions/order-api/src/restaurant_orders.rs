//! `GET /v1/restaurants/{restaurantId}/orders`: a restaurant's orders as its kitchen
//! sees them, newest first, optionally of one status.
//!
//! The orders table's keys-only index [`RESTAURANT_INDEX`] is keyed by the order's own
//! `restaurantId` and `createdAt`, which never change: only an order's first write
//! writes the index, and no attribute is added to the item. The status changes on every
//! saga step, so it is neither a key nor projected (either would write the index on every
//! transition). A list reads the index a chunk at a time, reads the chunk's orders from
//! the table, and keeps those of the asked status, examining at most [`MAX_EXAMINED`]
//! orders per request. A filtered page may so hold fewer orders than asked, even none,
//! with a `nextPageToken` that resumes after the last order examined.

use dishpatch::aws::dynamo::page::{decode_token, encode_token, query_page, string_key, text};
use dishpatch::aws::dynamo::{batch_get_consistent, key, s, Item};
use dishpatch::error::{Problem, StoreError};
use dishpatch::keys::{order_pk, ORDER_PK_PREFIX, ORDER_SK, RESTAURANT_INDEX};
use dishpatch::money::Money;
use dishpatch::order::{Order, OrderStatus};
use serde::{Deserialize, Serialize};

/// Orders a request examines at most (index keys read, and their orders read).
pub const MAX_EXAMINED: u32 = 200;
/// Index keys read per round when a status filter is set: fewer round trips when the
/// status is rare, few wasted reads when it is common.
const MIN_CHUNK: u32 = 25;
/// The most keys a `BatchGetItem` takes.
const MAX_CHUNK: u32 = 100;
/// Index reads a request makes at most (a read may find fewer keys than asked).
const MAX_ROUNDS: u32 = 10;
/// Longer tokens are not ones this API issued.
const MAX_TOKEN_LEN: usize = 512;

/// One order as its restaurant's kitchen sees it: what to cook, how much it comes to and
/// when it was placed. Nothing about the customer, the address, the payment or the
/// courier.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KitchenOrder {
    pub order_id: String,
    pub status: OrderStatus,
    pub items: Vec<KitchenLine>,
    pub total: Money,
    pub placed_at: String,
    pub updated_at: String,
}

/// A line of a [`KitchenOrder`]: the dish and how many.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KitchenLine {
    pub menu_item_id: String,
    pub name: String,
    pub quantity: u32,
}

impl From<&Order> for KitchenOrder {
    fn from(o: &Order) -> Self {
        KitchenOrder {
            order_id: o.order_id.clone(),
            status: o.status(),
            items: o
                .items
                .iter()
                .map(|l| KitchenLine {
                    menu_item_id: l.menu_item_id.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            total: o.total.clone(),
            placed_at: o.created_at.clone(),
            updated_at: o.updated_at.clone(),
        }
    }
}

/// One page of a restaurant's orders.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KitchenOrderPage {
    pub items: Vec<KitchenOrder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A position in a restaurant's index: an order's placement time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub created_at: String,
    pub order_id: String,
}

impl IndexKey {
    pub fn of(order: &Order) -> Self {
        IndexKey {
            created_at: order.created_at.clone(),
            order_id: order.order_id.clone(),
        }
    }
}

/// What one read of the index found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexPage {
    pub keys: Vec<IndexKey>,
    /// Where the next read resumes; `None` when the index has nothing further.
    pub last: Option<IndexKey>,
}

/// The index of a restaurant's orders and the orders it points to.
#[async_trait::async_trait]
pub trait RestaurantOrderIndex: Send + Sync {
    /// Up to `limit` (at most 100) keys of the restaurant's orders, newest first,
    /// strictly after `after`.
    async fn keys(
        &self,
        restaurant_id: &str,
        after: Option<&IndexKey>,
        limit: u32,
    ) -> Result<IndexPage, StoreError>;

    /// The orders `keys` name (at most 100), read fresh, in any order; an order no
    /// longer there is left out.
    async fn orders(&self, keys: &[IndexKey]) -> Result<Vec<Order>, StoreError>;
}

/// What the page token carries: the list it belongs to and where it resumes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cursor {
    /// The restaurant.
    r: String,
    /// The status filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<OrderStatus>,
    /// The last examined order's `createdAt` and id.
    c: String,
    o: String,
}

fn encode(restaurant_id: &str, status: Option<OrderStatus>, at: &IndexKey) -> String {
    encode_token(&Cursor {
        r: restaurant_id.to_owned(),
        s: status,
        c: at.created_at.clone(),
        o: at.order_id.clone(),
    })
}

/// The position a token resumes at, if it is one this list issued: same restaurant, same
/// filter, and a position that is an order's (a timestamp and an id).
fn decode(
    token: &str,
    restaurant_id: &str,
    status: Option<OrderStatus>,
) -> Result<IndexKey, Problem> {
    let invalid = || Problem::bad_request("page_token", "page_token is not valid for this list");
    let c: Cursor = decode_token(token, MAX_TOKEN_LEN).ok_or_else(invalid)?;
    let timestamp = c.c.len() <= 40 && chrono::DateTime::parse_from_rfc3339(&c.c).is_ok();
    if c.r != restaurant_id
        || c.s != status
        || !timestamp
        || !dishpatch::validation::is_valid_id(&c.o)
    {
        return Err(invalid());
    }
    Ok(IndexKey {
        created_at: c.c,
        order_id: c.o,
    })
}

/// The `status` query parameter: absent, or one order status by name.
pub fn parse_status(raw: Option<&str>) -> Result<Option<OrderStatus>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map(Some)
        .map_err(|_| {
            Problem::bad_request(
                "status",
                "status must be one of PENDING, RESERVED, PAID, DISPATCHED, DELIVERED, \
                 CANCELLING, CANCELLED, COMPENSATION_FAILED",
            )
        })
}

/// One page of the restaurant's orders, newest first, of `status` if given: at most
/// `page_size` (1..=100), from where `token` left off. At most [`MAX_EXAMINED`] orders
/// are examined; when that bound ends the page early, the token resumes after the last
/// one examined.
pub async fn list(
    index: &dyn RestaurantOrderIndex,
    restaurant_id: &str,
    status: Option<OrderStatus>,
    page_size: u32,
    token: Option<&str>,
) -> Result<KitchenOrderPage, Problem> {
    let mut after = token
        .map(|t| decode(t, restaurant_id, status))
        .transpose()?;
    let page_size = page_size.clamp(1, MAX_CHUNK);
    let mut items: Vec<KitchenOrder> = Vec::new();
    let mut examined = 0u32;
    let mut rounds = 0u32;
    loop {
        let wanted = page_size - items.len() as u32;
        let chunk = match status {
            None => wanted,
            Some(_) => wanted.max(MIN_CHUNK),
        }
        .min(MAX_EXAMINED - examined)
        .min(MAX_CHUNK);
        let page = index.keys(restaurant_id, after.as_ref(), chunk).await?;
        examined += page.keys.len() as u32;
        let mut found = index.orders(&page.keys).await?;
        for (i, key) in page.keys.iter().enumerate() {
            let Some(at) = found.iter().position(|o| o.order_id == key.order_id) else {
                continue;
            };
            let order = found.swap_remove(at);
            // The index names only this restaurant's orders; a read never shows another's.
            if order.restaurant_id != restaurant_id || status.is_some_and(|s| order.status() != s) {
                continue;
            }
            items.push(KitchenOrder::from(&order));
            if items.len() as u32 == page_size {
                let more = i + 1 < page.keys.len() || page.last.is_some();
                return Ok(KitchenOrderPage {
                    items,
                    next_page_token: more.then(|| encode(restaurant_id, status, key)),
                });
            }
        }
        // Nothing further, or the work bound is reached: resume after what was examined.
        let Some(last) = page.last else {
            return Ok(KitchenOrderPage {
                items,
                next_page_token: None,
            });
        };
        rounds += 1;
        if examined >= MAX_EXAMINED || rounds >= MAX_ROUNDS {
            return Ok(KitchenOrderPage {
                items,
                next_page_token: Some(encode(restaurant_id, status, &last)),
            });
        }
        after = Some(last);
    }
}

/// [`RestaurantOrderIndex`] on the orders table and its index [`RESTAURANT_INDEX`].
pub struct DynamoRestaurantOrders {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoRestaurantOrders {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRestaurantOrders {
            client,
            table: table.into(),
        }
    }
}

/// The index's key of an item: its table keys and its index keys.
fn start_key(restaurant_id: &str, at: &IndexKey) -> Item {
    string_key([
        ("pk", order_pk(&at.order_id)),
        ("sk", ORDER_SK.to_owned()),
        ("restaurantId", restaurant_id.to_owned()),
        ("createdAt", at.created_at.clone()),
    ])
}

fn index_key(item: &Item) -> Option<IndexKey> {
    Some(IndexKey {
        created_at: text(item, "createdAt")?.to_owned(),
        order_id: text(item, "pk")?.strip_prefix(ORDER_PK_PREFIX)?.to_owned(),
    })
}

#[async_trait::async_trait]
impl RestaurantOrderIndex for DynamoRestaurantOrders {
    async fn keys(
        &self,
        restaurant_id: &str,
        after: Option<&IndexKey>,
        limit: u32,
    ) -> Result<IndexPage, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RESTAURANT_INDEX)
            .key_condition_expression("restaurantId = :r")
            .expression_attribute_values(":r", s(restaurant_id))
            .scan_index_forward(false)
            .limit(limit.clamp(1, MAX_CHUNK) as i32);
        let page = query_page(query, after.map(|a| start_key(restaurant_id, a))).await?;
        let keys = page
            .items
            .iter()
            // Only order items carry both keys; anything else is skipped.
            .filter(|i| text(i, "sk") == Some(ORDER_SK))
            .filter_map(index_key)
            .collect();
        Ok(IndexPage {
            keys,
            last: page.last.as_ref().and_then(index_key),
        })
    }

    async fn orders(&self, keys: &[IndexKey]) -> Result<Vec<Order>, StoreError> {
        let keys: Vec<Item> = keys
            .iter()
            .map(|k| key(order_pk(&k.order_id), ORDER_SK))
            .collect();
        batch_get_consistent(&self.client, &self.table, keys)
            .await?
            .into_iter()
            .map(dishpatch::orders::order_from_item)
            .collect()
    }
}
