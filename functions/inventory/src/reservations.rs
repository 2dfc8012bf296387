//! The reservation record (one per order) and the stock it holds: the port and its
//! DynamoDB adapter.
//!
//! A reservation is `RESERVATION#{orderId}`/`RESERVATION` in the inventory table. Every
//! stock move (reserve, release, commit) writes the reservation and the menu items'
//! counters in ONE transaction, conditional on the reservation's state: the record is
//! the idempotency guard, and `available + reserved + sold == stocked` holds after
//! every write (invariant 3).
//!
//! Stock is sold once, when it is reserved: a reservation is written SOLD and moves
//! `available` to `sold`; a release of a cancelled order moves it back. A reservation
//! written RESERVED before (its units in `reserved`) is released from there, or sold by
//! the `CommitInventory` its delivered order sent.

use dishpatch::aws::dynamo::{
    built, get_as, key, keyed, n, put_alone, put_new, status_move, transact, Action, Item,
};
use dishpatch::envelope::now;
use dishpatch::error::StoreError;
use dishpatch::keys::{reservation_pk, RESERVATION_SK};
use dishpatch::order::ItemQuantity;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Stock is held for the order in `reserved` (written before stock was sold at
    /// reservation; sold by a `CommitInventory`, or released).
    Reserved,
    /// The reservation was refused (out of stock): the recorded outcome of the step.
    Rejected,
    /// The held stock went back to `available`.
    Released,
    /// The order's stock is in `sold`: since its reservation (or, for a RESERVED one,
    /// since its order was delivered). A release moves it back to `available`.
    Sold,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "RESERVED",
            ReservationStatus::Rejected => "REJECTED",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Sold => "SOLD",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: String,
    /// Empty (and not stored) only for a tombstone: a release never names the restaurant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restaurant_id: String,
    pub items: Vec<ItemQuantity>,
    pub status: ReservationStatus,
    /// Why a REJECTED reservation was refused (a stable code such as `OUT_OF_STOCK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail of the refusal (which item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Reservation {
    /// What a release leaves when it finds no reservation ("cancel wins"): RELEASED and
    /// holding nothing. The saga releases a reserve that missed its deadline, whose command
    /// may still be in flight; when it lands it finds this record and takes no stock.
    pub fn tombstone(order_id: &str, at: String) -> Self {
        Reservation {
            order_id: order_id.to_owned(),
            restaurant_id: String::new(),
            items: Vec::new(),
            status: ReservationStatus::Released,
            reason: None,
            detail: None,
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

/// What an attempt to reserve stock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// Every line is held and the reservation is recorded RESERVED.
    Reserved,
    /// A record for this order already exists (a duplicate, or a concurrent one won).
    Exists,
    /// This line is short of stock (or not on the menu): nothing was written.
    OutOfStock { menu_item_id: String },
}

#[async_trait::async_trait]
pub trait ReservationStore: Send + Sync {
    /// The order's reservation (strongly consistent).
    async fn get(&self, order_id: &str) -> Result<Option<Reservation>, StoreError>;
    /// Records `reservation` (new, SOLD) and sells every line's stock, all or nothing.
    async fn reserve(&self, reservation: &Reservation) -> Result<Reserve, StoreError>;
    /// Records a reservation that holds nothing (REJECTED, or a RELEASED tombstone) if none
    /// exists; false if one did.
    async fn record(&self, reservation: &Reservation) -> Result<bool, StoreError>;
    /// The reservation's status (RESERVED or SOLD) -> `to` (RELEASED, or SOLD from
    /// RESERVED), moving its units from `reserved` or `sold` to `available` or `sold`, in
    /// one transaction. False if the reservation is no longer in the status it was read in.
    async fn settle(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
    ) -> Result<bool, StoreError>;
}

/// The item counter a reservation in `status` holds its units in.
pub fn counter(status: ReservationStatus) -> Result<&'static str, StoreError> {
    match status {
        ReservationStatus::Reserved => Ok("reserved"),
        ReservationStatus::Sold => Ok("sold"),
        other => Err(StoreError::Corrupt(format!(
            "a {} reservation holds no stock",
            other.as_str()
        ))),
    }
}

fn reservation_key(order_id: &str) -> Item {
    key(reservation_pk(order_id), RESERVATION_SK)
}

#[derive(Clone, Debug)]
pub struct DynamoReservationStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoReservationStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoReservationStore {
            client,
            table: table.into(),
        }
    }

    fn put_new(
        &self,
        reservation: &Reservation,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let item = keyed(reservation_key(&reservation.order_id), reservation)?;
        put_new(&self.table, item)
    }

    /// Moves `q` units of one menu item between two counters, never below zero.
    fn move_units(
        &self,
        restaurant_id: &str,
        line: &ItemQuantity,
        from: &str,
        to: &str,
    ) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
        built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(crate::menu::key(restaurant_id, &line.menu_item_id)))
                .update_expression("SET #from = #from - :q, #to = #to + :q")
                // Also refuses a missing item: the update would otherwise create one.
                .condition_expression("#from >= :q")
                .expression_attribute_names("#from", from)
                .expression_attribute_names("#to", to)
                .expression_attribute_values(":q", n(line.quantity))
                .build(),
        )
    }
}

#[async_trait::async_trait]
impl ReservationStore for DynamoReservationStore {
    async fn get(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        get_as(&self.client, &self.table, reservation_key(order_id)).await
    }

    async fn reserve(&self, reservation: &Reservation) -> Result<Reserve, StoreError> {
        let to = counter(reservation.status)?;
        let mut tx = vec![Action::Put(self.put_new(reservation)?)];
        for line in &reservation.items {
            let hold = self.move_units(&reservation.restaurant_id, line, "available", to)?;
            tx.push(Action::Update(hold));
        }
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(Reserve::Reserved);
        };
        // The record decides first: if it exists, the stock question is moot.
        if refused.failed(0) {
            return Ok(Reserve::Exists);
        }
        if let Some(i) = refused.first_failed(1) {
            return Ok(Reserve::OutOfStock {
                menu_item_id: reservation.items[i - 1].menu_item_id.clone(),
            });
        }
        // A concurrent transaction on the same items (TransactionConflict) or an AWS
        // failure: nothing was written, the command is retried.
        Err(refused.into())
    }

    async fn record(&self, reservation: &Reservation) -> Result<bool, StoreError> {
        put_alone(&self.client, &self.put_new(reservation)?).await
    }

    async fn settle(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
    ) -> Result<bool, StoreError> {
        let from = counter(reservation.status)?;
        let counter = match to {
            ReservationStatus::Released => "available",
            ReservationStatus::Sold if from == "reserved" => "sold",
            other => {
                return Err(StoreError::Corrupt(format!(
                    "cannot settle a {} reservation as {}",
                    reservation.status.as_str(),
                    other.as_str()
                )))
            }
        };
        let record = built(
            status_move(
                &self.table,
                reservation_key(&reservation.order_id),
                reservation.status.as_str(),
                to.as_str(),
                &now(),
            )
            .build(),
        )?;
        let mut tx = vec![Action::Update(record)];
        for line in &reservation.items {
            let moved = self.move_units(&reservation.restaurant_id, line, from, counter)?;
            tx.push(Action::Update(moved));
        }
        let Err(refused) = transact(&self.client, tx).await else {
            return Ok(true);
        };
        if refused.failed(0) {
            return Ok(false);
        }
        if let Some(i) = refused.first_failed(1) {
            // The record holds the units but the item's counter does not: the invariant
            // was broken outside this code. Refuse (the command goes to the DLQ after its
            // retries) rather than make the counters worse.
            return Err(StoreError::Corrupt(format!(
                "reservation {} holds {} of {} but the item's {from} counter is lower",
                reservation.order_id,
                reservation.items[i - 1].quantity,
                reservation.items[i - 1].menu_item_id
            )));
        }
        Err(refused.into())
    }
}
