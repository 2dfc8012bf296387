//! A courier's deliveries, newest first: the keys-only index `gsi2` on the delivery's own
//! `courierId` and `createdAt`, a page at a time, each page read fresh from the table.

use super::{index_sk, DynamoDeliveryStore};
use crate::deliveries::{decode_cursor, encode_cursor, Delivery, DeliveryPage};
use dishpatch::aws::dynamo::page::{query_page, read_in_order, string_key, text};
use dishpatch::aws::dynamo::{from_item, s, Item};
use dishpatch::error::StoreError;
use dishpatch::keys::{delivery_pk, DELIVERY_SK};

impl DynamoDeliveryStore {
    /// A page of the deliveries assigned to `courier_id`, after the page `page_token` ended.
    pub(super) async fn courier_page(
        &self,
        courier_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeliveryPage, StoreError> {
        let after = page_token
            .map(|token| {
                let sk = decode_cursor(token)
                    .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))?;
                let (created_at, order_id) = sk
                    .rsplit_once('#')
                    .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))?;
                Ok::<_, StoreError>(string_key([
                    ("pk", delivery_pk(order_id)),
                    ("sk", DELIVERY_SK.to_owned()),
                    ("courierId", courier_id.to_owned()),
                    ("createdAt", created_at.to_owned()),
                ]))
            })
            .transpose()?;
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(dishpatch::keys::COURIER_DELIVERIES_INDEX)
            .key_condition_expression("courierId = :c")
            .expression_attribute_values(":c", s(courier_id))
            .scan_index_forward(false)
            .limit(page_size.clamp(1, 100) as i32);
        let page = query_page(query, after).await?;
        let next_token = page.last.as_ref().and_then(|k: &Item| {
            let created_at = text(k, "createdAt")?;
            let order_id = text(k, "pk")?.strip_prefix("DELIVERY#")?;
            Some(encode_cursor(&index_sk(created_at, order_id)))
        });
        // Keys only: the page's deliveries are read from the table, fresh, in index order.
        let deliveries = read_in_order(&self.client, &self.table, page.items)
            .await?
            .into_iter()
            .map(from_item::<Delivery>)
            .collect::<Result<_, _>>()?;
        Ok(DeliveryPage {
            deliveries,
            next_token,
        })
    }
}
