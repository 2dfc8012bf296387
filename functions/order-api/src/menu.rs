//! Reads menu items for pricing (the inventory table is owned by inventory; we only read).

use dishpatch::aws::dynamo::{classify, from_item, s, Item};
use dishpatch::error::StoreError;
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
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = Vec::with_capacity(ids.len());
        // BatchGetItem takes at most 100 keys; orders have at most 50 lines.
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| {
                Item::from([
                    ("pk".to_owned(), s(format!("RESTAURANT#{restaurant_id}"))),
                    ("sk".to_owned(), s(format!("ITEM#{id}"))),
                ])
            })
            .collect();
        if keys.is_empty() {
            return Ok(out);
        }
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Aws(e.to_string()))?,
        );
        // Unprocessed keys come back under throttling: ask again, a bounded number of times.
        for _ in 0..5 {
            let Some(req) = request.take() else { break };
            let resp = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(classify)?;
            for item in resp
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                out.push(from_item::<MenuItem>(item)?);
            }
            request = resp
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys().is_empty());
        }
        if request.is_some() {
            return Err(StoreError::Aws("menu read throttled".into()));
        }
        Ok(out)
    }
}
