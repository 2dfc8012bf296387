//! The delivery record (one per order) and its port; how deliveries and couriers are
//! kept in the delivery table.
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
//!
//! The courier pool and shifts are in [`crate::couriers`], the DynamoDB adapter of both
//! ports in [`crate::dynamo`].

use dishpatch::aws::dynamo::page::{decode_text_token, encode_text_token};
use dishpatch::error::StoreError;
use dishpatch::order::Address;
use serde::{Deserialize, Serialize};

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

/// The longest sort key a page token may name (a timestamp, `#`, an id).
const MAX_CURSOR_LEN: usize = 200;

/// A page token of a courier's deliveries: the last delivery read
/// (`{createdAt}#{orderId}`), opaque to clients.
pub fn encode_cursor(sort_key: &str) -> String {
    encode_text_token(sort_key)
}

/// The sort key a page token names, if it is one a store could have issued.
pub fn decode_cursor(token: &str) -> Option<String> {
    let sk = decode_text_token(token, MAX_CURSOR_LEN * 2)?;
    let (at, order_id) = sk.rsplit_once('#')?;
    (sk.len() <= MAX_CURSOR_LEN
        && !at.is_empty()
        && at.bytes().all(|b| b.is_ascii_graphic())
        && dishpatch::validation::is_valid_id(order_id))
    .then_some(sk)
}
