//! Menu items and their stock counters: the port and its DynamoDB adapter.
//!
//! A menu item is `RESTAURANT#{restaurantId}`/`ITEM#{menuItemId}` with the attributes of
//! [`MenuItem`]. Admin edits are read-modify-write, conditional on the counters read, so
//! a reservation landing in between makes the edit retry instead of losing units.
//!
//! `RESTAURANT#{restaurantId}`/`MENU` counts the restaurant's items (`itemCount`): an item
//! is created in one transaction with that count's increment, conditional on the count
//! being below the cap, so concurrent creates cannot pass it.

use dishpatch::aws::dynamo::{
    built, classify, from_items, get_as, keyed, n, put_new, s, to_attr, transact, Action, Item,
};
use dishpatch::error::StoreError;
use dishpatch::keys::{item_sk, restaurant_pk, ITEM_SK_PREFIX, MENU_SK};
use dishpatch::menu::MenuItem;

#[async_trait::async_trait]
pub trait MenuStore: Send + Sync {
    /// Every item of the restaurant (any order).
    async fn list(&self, restaurant_id: &str) -> Result<Vec<MenuItem>, StoreError>;
    /// One item (strongly consistent).
    async fn get(
        &self,
        restaurant_id: &str,
        menu_item_id: &str,
    ) -> Result<Option<MenuItem>, StoreError>;
    /// Creates `item` if it is absent and its restaurant has fewer than `max_items`
    /// items; [`StoreError::Conflict`] if the item exists already.
    async fn create(&self, item: &MenuItem, max_items: u32) -> Result<Created, StoreError>;
    /// Writes `next` if the stored item is still `read`; [`StoreError::Conflict`] if it
    /// changed meanwhile.
    async fn save(&self, next: &MenuItem, read: &MenuItem) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The restaurant already has its maximum number of items: nothing was written.
    MenuFull,
}

#[derive(Clone, Debug)]
pub struct DynamoMenuStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMenuStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoMenuStore {
            client,
            table: table.into(),
        }
    }
}

/// The key of one menu item.
pub fn key(restaurant_id: &str, menu_item_id: &str) -> Item {
    dishpatch::aws::dynamo::key(restaurant_pk(restaurant_id), item_sk(menu_item_id))
}

#[async_trait::async_trait]
impl MenuStore for DynamoMenuStore {
    async fn list(&self, restaurant_id: &str) -> Result<Vec<MenuItem>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :item)")
                .expression_attribute_values(":pk", s(restaurant_pk(restaurant_id)))
                .expression_attribute_values(":item", s(ITEM_SK_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            out.extend(from_items::<MenuItem>(page.items)?);
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn get(
        &self,
        restaurant_id: &str,
        menu_item_id: &str,
    ) -> Result<Option<MenuItem>, StoreError> {
        get_as(&self.client, &self.table, key(restaurant_id, menu_item_id)).await
    }

    async fn create(&self, item: &MenuItem, max_items: u32) -> Result<Created, StoreError> {
        use aws_sdk_dynamodb::types::Update;
        let count = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(dishpatch::aws::dynamo::key(
                    restaurant_pk(&item.restaurant_id),
                    MENU_SK,
                )))
                .update_expression(
                    "SET restaurantId = :r, itemCount = if_not_exists(itemCount, :zero) + :one",
                )
                .condition_expression("attribute_not_exists(itemCount) OR itemCount < :max")
                .expression_attribute_values(":r", s(&item.restaurant_id))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_items))
                .build(),
        )?;
        let put = put_new(
            &self.table,
            keyed(key(&item.restaurant_id, &item.menu_item_id), item)?,
        )?;
        let tx = vec![Action::Update(count), Action::Put(put)];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Created::Created);
        };
        // The item decides first: an edit of an existing item is no create.
        if refused.failed(1) {
            return Err(StoreError::Conflict("the item exists".into()));
        }
        if refused.failed(0) {
            return Ok(Created::MenuFull);
        }
        Err(refused.into())
    }

    async fn save(&self, next: &MenuItem, was: &MenuItem) -> Result<(), StoreError> {
        // An update (not a put): attributes this code does not know about survive.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&next.restaurant_id, &next.menu_item_id)))
            .update_expression(
                "SET restaurantId = :r, menuItemId = :m, #name = :name, price = :price, \
                 available = :available, reserved = :reserved, sold = :sold, stocked = :stocked",
            )
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":r", s(&next.restaurant_id))
            .expression_attribute_values(":m", s(&next.menu_item_id))
            .expression_attribute_values(":name", s(&next.name))
            .expression_attribute_values(":price", to_attr(&next.price)?)
            .expression_attribute_values(":available", n(next.available))
            .expression_attribute_values(":reserved", n(next.reserved))
            .expression_attribute_values(":sold", n(next.sold))
            .expression_attribute_values(":stocked", n(next.stocked))
            // The counters as read: any reserve, release or commit in between fails this.
            .condition_expression(
                "available = :was_available AND reserved = :was_reserved \
                 AND sold = :was_sold AND stocked = :was_stocked",
            )
            .expression_attribute_values(":was_available", n(was.available))
            .expression_attribute_values(":was_reserved", n(was.reserved))
            .expression_attribute_values(":was_sold", n(was.sold))
            .expression_attribute_values(":was_stocked", n(was.stocked))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
