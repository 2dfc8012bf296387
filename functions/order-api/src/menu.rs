//! Reads menu items for pricing (the inventory table is owned by inventory; we only read).

use dishpatch::aws::dynamo::{batch_get_consistent, from_item, key, Item};
use dishpatch::error::StoreError;
use dishpatch::keys::{item_sk, restaurant_pk};
use dishpatch::menu::MenuItem;

#[async_trait::async_trait]
pub trait MenuReader: Send + Sync {
    /// The items of `restaurant_id` among `ids`; unknown ids are simply absent.
    async fn items(&self, restaurant_id: &str, ids: &[String])
        -> Result<Vec<MenuItem>, StoreError>;
}

pub struct DynamoMenuReader {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoMenuReader {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoMenuReader { client, table }
    }
}

#[async_trait::async_trait]
impl MenuReader for DynamoMenuReader {
    async fn items(
        &self,
        restaurant_id: &str,
        ids: &[String],
    ) -> Result<Vec<MenuItem>, StoreError> {
        // BatchGetItem takes at most 100 keys; orders have at most 50 lines.
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| key(restaurant_pk(restaurant_id), item_sk(id)))
            .collect();
        batch_get_consistent(&self.client, &self.table, keys)
            .await?
            .into_iter()
            .map(from_item::<MenuItem>)
            .collect()
    }
}
