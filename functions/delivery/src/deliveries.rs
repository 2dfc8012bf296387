//! The delivery record (one per order) and the courier pool: the port and its DynamoDB adapter.
//!
//! A courier item is `COURIER#{id}`/`COURIER` with `status` AVAILABLE|BUSY; only while
//! AVAILABLE does it carry `gsi1pk = COURIER#AVAILABLE`, so the sparse index `gsi1` lists
//! exactly the free couriers. Claiming a courier and writing the delivery happen in one
//! transaction conditional on the courier still being AVAILABLE: a courier is never on two
//! active deliveries (invariant 4). An off-shift courier is `OFF_SHIFT`, out of the index.
//!
//! A delivery that found no free courier is WAITING and carries `gsi1pk =
//! DELIVERY#WAITING` (`gsi1sk` = when it began to wait, then the order), so the same
//! sparse index lists the waiting deliveries oldest first; a courier claims one in the
//! same kind of transaction. A courier's deliveries are listed by the keys-only index
//! `gsi2` on the delivery's own `courierId` and `createdAt`: set once, never changed.

use dishpatch::aws::dynamo::{
    batch_get_consistent, built, classify, from_item, from_items, get_as, key, keyed, n, put_alone,
    put_new, s, status_move, transact, update_alone, Action, Item,
};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;
use dishpatch::keys::{courier_pk, delivery_pk, COURIER_SK, DELIVERY_SK, WAITING_DELIVERIES};
use dishpatch::order::Address;
use serde::{Deserialize, Serialize};

/// The partition key of the sparse "free couriers" index.
pub use dishpatch::keys::AVAILABLE_COURIERS as AVAILABLE_KEY;
const GSI: &str = "gsi1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Dispatched,
    Delivered,
    Cancelled,
    /// No courier could be found: the recorded outcome of the dispatch step (before
    /// orders waited for one).
    Unavailable,
    /// No courier was free: waiting for one, in the waiting index, oldest first.
    Waiting,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Dispatched => "DISPATCHED",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Cancelled => "CANCELLED",
            DeliveryStatus::Unavailable => "UNAVAILABLE",
            DeliveryStatus::Waiting => "WAITING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub order_id: String,
    /// Absent only for a record without a courier: UNAVAILABLE, or a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    pub status: DeliveryStatus,
    /// Empty (and not stored) only for a tombstone: a cancel names no restaurant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restaurant_id: String,
    /// Absent only for a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<Address>,
    /// Why a record has no courier (`NO_COURIER`, or `CANCELLED` for a tombstone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When a courier was claimed for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<String>,
    /// Until when a WAITING delivery keeps looking for a courier (the saga's deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_by: Option<String>,
    /// Retries of a WAITING delivery scheduled so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The order's trace (the dispatch command's `traceparent`), continued by the
    /// courier's completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The sort key of a delivery in the waiting index, or in its courier's list.
fn index_sk(at: &str, order_id: &str) -> String {
    format!("{at}#{order_id}")
}

/// The reason a tombstone records, and a dispatch that finds it repeats.
pub const CANCELLED_BEFORE_DISPATCH: &str = "CANCELLED";

impl Delivery {
    /// What a cancel leaves when it finds no delivery ("cancel wins"): CANCELLED, with no
    /// courier. The saga cancels a dispatch that missed its deadline, whose command may
    /// still be in flight; when it lands it finds this record and claims no courier.
    pub fn tombstone(order_id: &str, at: String) -> Self {
        Delivery {
            order_id: order_id.to_owned(),
            courier_id: None,
            status: DeliveryStatus::Cancelled,
            restaurant_id: String::new(),
            delivery_address: None,
            reason: Some(CANCELLED_BEFORE_DISPATCH.to_owned()),
            created_at: at.clone(),
            updated_at: at,
            dispatched_at: None,
            dispatch_by: None,
            attempt: 0,
            traceparent: None,
        }
    }

    /// Whether the delivery holds its courier (invariant 4: at most one per courier).
    pub fn is_active(&self) -> bool {
        self.status == DeliveryStatus::Dispatched
    }
}

/// A courier as stored: on shift (AVAILABLE, or BUSY with `activeOrderId`) or OFF_SHIFT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Courier {
    #[serde(default)]
    pub courier_id: String,
    pub status: CourierStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_order_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CourierStatus {
    Available,
    Busy,
    OffShift,
}

impl CourierStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CourierStatus::Available => "AVAILABLE",
            CourierStatus::Busy => "BUSY",
            CourierStatus::OffShift => "OFF_SHIFT",
        }
    }

    pub fn on_shift(self) -> bool {
        self != CourierStatus::OffShift
    }
}

/// Tries of a shift change whose courier changed between the write and the read.
const SHIFT_ATTEMPTS: usize = 3;

/// What going off shift did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffShift {
    /// Off shift now (or already; or never on: no courier record, nothing written).
    Done(Option<Courier>),
    /// On a delivery: stays on shift until it is done.
    OnDelivery(Courier),
}

/// Shifts: a courier's own record.
#[async_trait::async_trait]
pub trait CourierStore: Send + Sync {
    /// The courier (strongly consistent).
    async fn courier(&self, courier_id: &str) -> Result<Option<Courier>, StoreError>;
    /// OFF_SHIFT (or no record yet: it is created) -> AVAILABLE, listed as free. A courier
    /// already on shift is left as it is. The courier as it is afterwards.
    async fn go_on_shift(&self, courier_id: &str) -> Result<Courier, StoreError>;
    /// AVAILABLE -> OFF_SHIFT, out of the free index; refused while BUSY.
    async fn go_off_shift(&self, courier_id: &str) -> Result<OffShift, StoreError>;
}

/// A page of a courier's deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub next_token: Option<String>,
}

/// What one attempt to claim a courier for a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The courier is now BUSY with this order and the delivery is recorded DISPATCHED.
    Claimed,
    /// The courier is no longer AVAILABLE (someone else claimed it): try the next one.
    CourierTaken,
    /// Another transaction touched the courier at the same moment; the winner is not known yet.
    Contended,
    /// A delivery record for this order already exists (a concurrent duplicate won).
    DeliveryExists,
}

#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The order's delivery record (strongly consistent).
    async fn get(&self, order_id: &str) -> Result<Option<Delivery>, StoreError>;
    /// Up to `limit` couriers that looked AVAILABLE (the index is eventually consistent).
    async fn available_couriers(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Claims `courier_id` (AVAILABLE -> BUSY) and records `delivery` (new) in one transaction.
    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError>;
    /// Records a delivery without a courier (UNAVAILABLE, or a CANCELLED tombstone) if none
    /// exists yet; false if one already existed.
    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError>;
    /// DISPATCHED (by `courier_id`) -> `to`, and the courier back to AVAILABLE, in one
    /// transaction. False if the delivery is not DISPATCHED by that courier.
    async fn finish(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` orders whose delivery looked WAITING, oldest first (the index is
    /// eventually consistent).
    async fn waiting(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Claims `courier_id` (AVAILABLE -> BUSY) for the WAITING delivery of `order_id`
    /// (-> DISPATCHED, out of the waiting index) in one transaction.
    /// [`Claim::DeliveryExists`]: the delivery is not WAITING any more.
    async fn claim_waiting(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<Claim, StoreError>;
    /// WAITING -> CANCELLED, out of the waiting index; false if it was not WAITING.
    async fn cancel_waiting(&self, order_id: &str) -> Result<bool, StoreError>;
    /// Records that retry `attempt` of a WAITING delivery is scheduled (its `attempt`
    /// moves from `attempt - 1`); false if it is not WAITING at `attempt - 1` any more.
    async fn schedule_retry(&self, order_id: &str, attempt: u32) -> Result<bool, StoreError>;
    /// A page of the deliveries assigned to `courier_id`, newest first, after the page
    /// `page_token` ended.
    async fn for_courier(
        &self,
        courier_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeliveryPage, StoreError>;
}

fn delivery_key(order_id: &str) -> Item {
    key(delivery_pk(order_id), DELIVERY_SK)
}

#[derive(Clone, Debug)]
pub struct DynamoDeliveryStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDeliveryStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoDeliveryStore {
            client,
            table: table.into(),
        }
    }

    fn put_new(&self, delivery: &Delivery) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let mut item = keyed(delivery_key(&delivery.order_id), delivery)?;
        if delivery.status == DeliveryStatus::Waiting {
            item.insert("gsi1pk".into(), s(WAITING_DELIVERIES));
            item.insert(
                "gsi1sk".into(),
                s(index_sk(&delivery.created_at, &delivery.order_id)),
            );
        }
        put_new(&self.table, item)
    }

    /// The courier AVAILABLE -> BUSY on `order_id`, out of the free index.
    fn busy(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression(
                    "SET #status = :busy, activeOrderId = :o, updatedAt = :at REMOVE gsi1pk, gsi1sk",
                )
                .condition_expression("#status = :available")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":busy", s("BUSY"))
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":o", s(order_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )
    }

    /// The courier back to AVAILABLE, only if it is still on `order_id`.
    fn release_courier(
        &self,
        order_id: &str,
        courier_id: &str,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression(
                    "SET #status = :available, gsi1pk = :index, gsi1sk = :c, updatedAt = :at REMOVE activeOrderId",
                )
                .condition_expression("activeOrderId = :o")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":index", s(AVAILABLE_KEY))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":o", s(order_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )
    }

    /// The delivery DISPATCHED (by `courier_id`) -> `to`.
    fn move_delivery(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
        at: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        let dispatched = DeliveryStatus::Dispatched.as_str();
        built(
            status_move(
                &self.table,
                delivery_key(order_id),
                dispatched,
                to.as_str(),
                at,
            )
            .condition_expression("#status = :from AND courierId = :c")
            .expression_attribute_values(":c", s(courier_id))
            .build(),
        )
    }
}

#[async_trait::async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    async fn get(&self, order_id: &str) -> Result<Option<Delivery>, StoreError> {
        get_as(&self.client, &self.table, delivery_key(order_id)).await
    }

    async fn available_couriers(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Free {
            courier_id: String,
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI)
            .key_condition_expression("gsi1pk = :index")
            .expression_attribute_values(":index", s(AVAILABLE_KEY))
            .projection_expression("courierId")
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(classify)?;
        let free: Vec<Free> = from_items(out.items)?;
        Ok(free.into_iter().map(|f| f.courier_id).collect())
    }

    async fn claim(&self, courier_id: &str, delivery: &Delivery) -> Result<Claim, StoreError> {
        let busy = self.busy(courier_id, &delivery.order_id, &now())?;
        let tx = vec![Action::Update(busy), Action::Put(self.put_new(delivery)?)];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Claim::Claimed);
        };
        // The delivery record decides first: if it exists, whichever courier we tried is moot.
        if refused.failed(1) {
            return Ok(Claim::DeliveryExists);
        }
        if refused.failed(0) {
            return Ok(Claim::CourierTaken);
        }
        match refused.reason(0) {
            Some("TransactionConflict") => Ok(Claim::Contended),
            _ => Err(refused.into()),
        }
    }

    async fn record(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        put_alone(&self.client, &self.put_new(delivery)?).await
    }

    async fn finish(
        &self,
        order_id: &str,
        courier_id: &str,
        to: DeliveryStatus,
    ) -> Result<bool, StoreError> {
        let at = now();
        let tx = vec![
            Action::Update(self.move_delivery(order_id, courier_id, to, &at)?),
            Action::Update(self.release_courier(order_id, courier_id, &at)?),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(true);
        };
        if refused.failed(0) {
            return Ok(false);
        }
        if refused.failed(1) {
            // The courier is not on this order any more (edited by hand, or a broken
            // invariant): finish the delivery anyway rather than leave it DISPATCHED for
            // ever, and leave the courier as it is.
            tracing::warn!(
                order_id,
                courier_id,
                "courier not held by this delivery; finishing the delivery alone"
            );
            let moved = self.move_delivery(order_id, courier_id, to, &at)?;
            return update_alone(&self.client, &moved).await;
        }
        Err(refused.into())
    }

    async fn waiting(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Waiting {
            order_id: String,
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI)
            .key_condition_expression("gsi1pk = :index")
            .expression_attribute_values(":index", s(WAITING_DELIVERIES))
            .projection_expression("orderId")
            .scan_index_forward(true)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(classify)?;
        let waiting: Vec<Waiting> = from_items(out.items)?;
        Ok(waiting.into_iter().map(|w| w.order_id).collect())
    }

    async fn claim_waiting(
        &self,
        courier_id: &str,
        order_id: &str,
        at: &str,
    ) -> Result<Claim, StoreError> {
        let dispatched = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(delivery_key(order_id)))
                .update_expression(
                    "SET #status = :to, courierId = :c, dispatchedAt = :at, updatedAt = :at \
                     REMOVE gsi1pk, gsi1sk",
                )
                .condition_expression("#status = :from")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":from", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":to", s(DeliveryStatus::Dispatched.as_str()))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":at", s(at))
                .build(),
        )?;
        let tx = vec![
            Action::Update(self.busy(courier_id, order_id, at)?),
            Action::Update(dispatched),
        ];
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Claim::Claimed);
        };
        if refused.failed(1) {
            return Ok(Claim::DeliveryExists);
        }
        if refused.failed(0) {
            return Ok(Claim::CourierTaken);
        }
        match (refused.reason(0), refused.reason(1)) {
            (Some("TransactionConflict"), _) | (_, Some("TransactionConflict")) => {
                Ok(Claim::Contended)
            }
            _ => Err(refused.into()),
        }
    }

    async fn cancel_waiting(&self, order_id: &str) -> Result<bool, StoreError> {
        let at = now();
        let update = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(delivery_key(order_id)))
                .update_expression("SET #status = :to, updatedAt = :at REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :from")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":from", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":to", s(DeliveryStatus::Cancelled.as_str()))
                .expression_attribute_values(":at", s(at))
                .build(),
        )?;
        update_alone(&self.client, &update).await
    }

    async fn schedule_retry(&self, order_id: &str, attempt: u32) -> Result<bool, StoreError> {
        let previous = attempt.saturating_sub(1);
        let update = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(delivery_key(order_id)))
                .update_expression("SET attempt = :next")
                .condition_expression(
                    "#status = :waiting AND (attempt = :prev OR (attribute_not_exists(attempt) AND :prev = :zero))",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":waiting", s(DeliveryStatus::Waiting.as_str()))
                .expression_attribute_values(":next", n(attempt))
                .expression_attribute_values(":prev", n(previous))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )?;
        update_alone(&self.client, &update).await
    }

    async fn for_courier(
        &self,
        courier_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeliveryPage, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(dishpatch::keys::COURIER_DELIVERIES_INDEX)
            .key_condition_expression("courierId = :c")
            .expression_attribute_values(":c", s(courier_id))
            .scan_index_forward(false)
            .limit(page_size.clamp(1, 100) as i32);
        if let Some(token) = page_token {
            let sk = decode_cursor(token)
                .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))?;
            let (created_at, order_id) = sk
                .rsplit_once('#')
                .ok_or_else(|| StoreError::Corrupt("invalid page token".into()))?;
            let start: Item = [
                ("pk", delivery_pk(order_id)),
                ("sk", DELIVERY_SK.to_owned()),
                ("courierId", courier_id.to_owned()),
                ("createdAt", created_at.to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), s(v)))
            .collect();
            q = q.set_exclusive_start_key(Some(start));
        }
        let out = q.send().await.map_err(classify)?;
        let text = |k: &Item, name: &str| k.get(name).and_then(|v| v.as_s().ok()).cloned();
        let next_token = out.last_evaluated_key.as_ref().and_then(|k| {
            let created_at = text(k, "createdAt")?;
            let order_id = text(k, "pk")?.strip_prefix("DELIVERY#")?.to_owned();
            Some(encode_cursor(&index_sk(&created_at, &order_id)))
        });
        // Keys only: the page's deliveries are read from the table, fresh, in index order.
        let keys: Vec<Item> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                i.into_iter()
                    .filter(|(k, _)| k == "pk" || k == "sk")
                    .collect()
            })
            .collect();
        let order: Vec<Option<String>> = keys
            .iter()
            .map(|k| k.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        let mut found = std::collections::HashMap::new();
        for item in batch_get_consistent(&self.client, &self.table, keys).await? {
            let d: Delivery = from_item(item)?;
            found.insert(delivery_pk(&d.order_id), d);
        }
        let deliveries = order
            .into_iter()
            .flatten()
            .filter_map(|pk| found.remove(&pk))
            .collect();
        Ok(DeliveryPage {
            deliveries,
            next_token,
        })
    }
}

/// The longest sort key a page token may name (a timestamp, `#`, an id).
const MAX_CURSOR_LEN: usize = 200;

/// A page token: the last delivery read (`{createdAt}#{orderId}`), opaque to clients.
pub fn encode_cursor(sort_key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sort_key)
}

/// The sort key a page token names, if it is one this store could have issued.
pub fn decode_cursor(token: &str) -> Option<String> {
    use base64::Engine;
    if token.is_empty() || token.len() > MAX_CURSOR_LEN * 2 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let sk = String::from_utf8(bytes).ok()?;
    let (at, order_id) = sk.rsplit_once('#')?;
    (sk.len() <= MAX_CURSOR_LEN
        && !at.is_empty()
        && at.bytes().all(|b| b.is_ascii_graphic())
        && dishpatch::validation::is_valid_id(order_id))
    .then_some(sk)
}

#[async_trait::async_trait]
impl CourierStore for DynamoDeliveryStore {
    async fn courier(&self, courier_id: &str) -> Result<Option<Courier>, StoreError> {
        get_as(
            &self.client,
            &self.table,
            key(courier_pk(courier_id), COURIER_SK),
        )
        .await
    }

    async fn go_on_shift(&self, courier_id: &str) -> Result<Courier, StoreError> {
        let update = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression(
                    "SET #status = :available, courierId = :c, gsi1pk = :index, gsi1sk = :c, updatedAt = :at",
                )
                .condition_expression("attribute_not_exists(pk) OR #status = :off")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":off", s("OFF_SHIFT"))
                .expression_attribute_values(":c", s(courier_id))
                .expression_attribute_values(":index", s(AVAILABLE_KEY))
                .expression_attribute_values(":at", s(now()))
                .build(),
        )?;
        for _ in 0..SHIFT_ATTEMPTS {
            // Not applied: already on shift (AVAILABLE or BUSY), where it should be; unless
            // it went off shift meanwhile, which this try then undoes.
            update_alone(&self.client, &update).await?;
            match self.courier(courier_id).await? {
                Some(c) if c.status.on_shift() => return Ok(c),
                _ => continue,
            }
        }
        Err(StoreError::Conflict("the courier kept changing".into()))
    }

    async fn go_off_shift(&self, courier_id: &str) -> Result<OffShift, StoreError> {
        let update = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(courier_pk(courier_id), COURIER_SK)))
                .update_expression("SET #status = :off, updatedAt = :at REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :available")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":available", s("AVAILABLE"))
                .expression_attribute_values(":off", s("OFF_SHIFT"))
                .expression_attribute_values(":at", s(now()))
                .build(),
        )?;
        for _ in 0..SHIFT_ATTEMPTS {
            update_alone(&self.client, &update).await?;
            match self.courier(courier_id).await? {
                Some(c) if c.status == CourierStatus::Busy => return Ok(OffShift::OnDelivery(c)),
                // Freed between the update and the read: try again.
                Some(c) if c.status == CourierStatus::Available => continue,
                other => return Ok(OffShift::Done(other)),
            }
        }
        Err(StoreError::Conflict("the courier kept changing".into()))
    }
}
