//! The saga's inventory commands: ReserveInventory (which sells the stock) and
//! ReleaseInventory (which gives it back); CommitInventory only as sent for a
//! reservation written RESERVED before stock was sold at reservation.
//!
//! Idempotency: the reservation record (one per order) is the guard. A duplicate command
//! finds it and re-publishes the recorded outcome, so a crash between the write and the
//! publish heals when the command is retried; stock moves only with the record's state.

use crate::reservations::{Reservation, ReservationStatus, Reserve};
use crate::App;
use dishpatch::envelope::{data, now, Envelope, MessageType};
use dishpatch::order::ItemQuantity;
use dishpatch::runtime::MessageError;
use dishpatch::worker::{kept_changing, stored};

pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";
/// One transaction holds at most 100 actions: the record plus one per line.
pub const MAX_LINES: usize = 99;
/// Re-reads of a record whose state changed under us, before giving up for a retry.
const ATTEMPTS: usize = 3;

pub async fn reserve(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    let req: data::ReserveInventory = cmd.data_as()?;
    let items = merge_lines(req.items);
    if items.len() > MAX_LINES {
        return Err(MessageError::invalid_content(format!(
            "{} lines; at most {MAX_LINES} can be reserved",
            items.len()
        )));
    }
    let at = now();
    let reservation = Reservation {
        order_id: order_id.to_owned(),
        restaurant_id: req.restaurant_id,
        items,
        // Sold at once: no second move when the order is delivered.
        status: ReservationStatus::Sold,
        reason: None,
        detail: None,
        created_at: at.clone(),
        updated_at: at,
    };
    match app.reservations.reserve(&reservation).await? {
        Reserve::Reserved => {
            tracing::info!(lines = reservation.items.len(), "stock reserved (sold)");
            republish(app, cmd, &reservation).await
        }
        Reserve::Exists => {
            tracing::info!("duplicate reserve; re-publishing the recorded outcome");
            republish_stored(app, cmd).await
        }
        Reserve::OutOfStock { menu_item_id } => {
            let rejected = Reservation {
                status: ReservationStatus::Rejected,
                reason: Some(OUT_OF_STOCK.into()),
                detail: Some(format!(
                    "menu item {menu_item_id} is out of stock or not on the menu"
                )),
                ..reservation
            };
            // Conditional too: a concurrent duplicate may have reserved meanwhile, and its
            // outcome is the one to repeat.
            if app.reservations.record(&rejected).await? {
                tracing::info!(menu_item_id = %menu_item_id, "reservation rejected: out of stock");
                republish(app, cmd, &rejected).await
            } else {
                republish_stored(app, cmd).await
            }
        }
    }
}

pub async fn release(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    for _ in 0..ATTEMPTS {
        match app.reservations.get(order_id).await? {
            // Sold at reservation (or held RESERVED, as written before): the saga
            // releases only a cancelled order's stock, never a delivered one's.
            Some(r)
                if matches!(
                    r.status,
                    ReservationStatus::Reserved | ReservationStatus::Sold
                ) =>
            {
                if app
                    .reservations
                    .settle(&r, ReservationStatus::Released)
                    .await?
                {
                    tracing::info!("stock released");
                    return released(app, cmd).await;
                }
                // A duplicate settled it meanwhile: decide again on the fresh record.
            }
            // Already released, or rejected: nothing is held.
            Some(_) => return released(app, cmd).await,
            // Never reserved, or not yet: the reserve may still be in flight (the saga
            // releases a reserve that missed its deadline). Cancel wins: leave a tombstone
            // so that reserve, when it lands, finds a record and takes nothing.
            None => {
                if app
                    .reservations
                    .record(&Reservation::tombstone(order_id, now()))
                    .await?
                {
                    tracing::info!("release before any reserve; tombstone left");
                    return released(app, cmd).await;
                }
                // The reserve landed meanwhile: release it on the fresh record.
            }
        }
    }
    Err(kept_changing("reservation"))
}

/// A `CommitInventory` the saga sent for a delivered order before stock was sold at
/// reservation: sells a RESERVED reservation; a SOLD one is already sold.
pub async fn commit(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let order_id = cmd.order_id.as_str();
    for _ in 0..ATTEMPTS {
        match app.reservations.get(order_id).await? {
            Some(r) if r.status == ReservationStatus::Reserved => {
                if app.reservations.settle(&r, ReservationStatus::Sold).await? {
                    tracing::info!("reserved stock sold");
                    return Ok(());
                }
            }
            Some(r) if r.status == ReservationStatus::Sold => {
                tracing::info!("duplicate commit; already sold");
                return Ok(());
            }
            other => {
                // Nothing held to sell: the saga only commits a delivered order, which held
                // stock. Log it for an operator; retrying would not change anything.
                let status = other.map(|r| r.status.as_str()).unwrap_or("MISSING");
                tracing::warn!(
                    status,
                    "commit for a reservation that holds no stock; ignored"
                );
                return Ok(());
            }
        }
    }
    Err(kept_changing("reservation"))
}

/// The same item on two lines becomes one line: one transaction may touch an item once.
fn merge_lines(items: Vec<ItemQuantity>) -> Vec<ItemQuantity> {
    let mut out: Vec<ItemQuantity> = Vec::with_capacity(items.len());
    for line in items {
        match out.iter_mut().find(|l| l.menu_item_id == line.menu_item_id) {
            Some(l) => l.quantity = l.quantity.saturating_add(line.quantity),
            None => out.push(line),
        }
    }
    out
}

async fn released(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let fact = cmd.follow(MessageType::InventoryReleased, serde_json::json!({}));
    app.outlets.publisher.publish(&fact).await?;
    Ok(())
}

/// Reads the record a duplicate (or a concurrent one) wrote and re-publishes its outcome.
async fn republish_stored(app: &App, cmd: &Envelope) -> Result<(), MessageError> {
    let r = stored(app.reservations.get(&cmd.order_id).await?, "reservation")?;
    republish(app, cmd, &r).await
}

/// Publishes the reserve outcome a record stands for. A reservation that was later
/// released or sold was, as a reserve step, a success: repeating that is what the saga
/// expects (it undoes a late success on a cancelled order itself). A tombstone answers the
/// same; the saga's second release then finds it and only confirms, holding nothing.
async fn republish(app: &App, cmd: &Envelope, r: &Reservation) -> Result<(), MessageError> {
    let fact = match r.status {
        ReservationStatus::Rejected => cmd.follow(
            MessageType::InventoryRejected,
            data::Rejected {
                reason: r.reason.clone().unwrap_or_else(|| OUT_OF_STOCK.into()),
            },
        ),
        ReservationStatus::Reserved | ReservationStatus::Released | ReservationStatus::Sold => {
            cmd.follow(MessageType::InventoryReserved, serde_json::json!({}))
        }
    };
    app.outlets.publisher.publish(&fact).await?;
    Ok(())
}
