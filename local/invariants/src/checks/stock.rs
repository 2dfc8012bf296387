//! Invariant 3: stock is conserved, never negative, and matches the reservations.

use std::collections::BTreeMap;

use crate::state::State;
use crate::views::*;
use crate::{Invariant, Report, Stock};

pub(crate) fn check_stock(st: &State, q: bool, r: &mut Report) {
    // Per item, always (invariant 3).
    for ((rest, m), i) in &st.items {
        let subject = format!("{rest}/{m}");
        r.stock.insert(
            subject.clone(),
            Stock {
                available: i.available,
                reserved: i.reserved,
                sold: i.sold,
                stocked: i.stocked,
            },
        );
        let negative: Vec<String> = [
            ("available", i.available),
            ("reserved", i.reserved),
            ("sold", i.sold),
            ("stocked", i.stocked),
        ]
        .iter()
        .filter(|(_, v)| *v < 0)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
        if !negative.is_empty() {
            r.violate(Invariant::StockNonNegative, &subject, negative.join(", "));
        }
        if i.available + i.reserved + i.sold != i.stocked {
            r.violate(
                Invariant::StockConservation,
                &subject,
                format!(
                    "available {} + reserved {} + sold {} = {} but stocked = {}",
                    i.available,
                    i.reserved,
                    i.sold,
                    i.available + i.reserved + i.sold,
                    i.stocked
                ),
            );
        }
    }

    // Reservations against their orders (immutable lines), always.
    for (id, res) in &st.reservations {
        let Some(o) = st.orders.get(id) else {
            r.violate(
                Invariant::RecordHasOrder,
                format!("reservation {id}"),
                format!(
                    "{} reservation for an order that does not exist",
                    res.status
                ),
            );
            continue;
        };
        if !res.items.is_empty() && quantities(&res.items) != o.quantities() {
            r.violate(
                Invariant::ReservationMatchesOrder,
                format!("reservation {id}"),
                format!(
                    "holds {:?}, the order has {:?}",
                    quantities(&res.items),
                    o.quantities()
                ),
            );
        }
    }

    if !q {
        return;
    }
    // Reservation lines add up to the counters.
    let mut held: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for res in st.reservations.values() {
        // Stock is sold at reservation (SOLD, in `sold`); a reservation written before
        // that holds its units in `reserved` until its order's CommitInventory.
        let (reserved, sold) = match res.status.as_str() {
            "RESERVED" => (true, false),
            "SOLD" => (false, true),
            _ => continue,
        };
        let restaurant = if res.restaurant_id.is_empty() {
            st.orders
                .get(&res.order_id)
                .map(|o| o.restaurant_id.clone())
                .unwrap_or_default()
        } else {
            res.restaurant_id.clone()
        };
        for l in &res.items {
            let e = held
                .entry((restaurant.clone(), l.menu_item_id.clone()))
                .or_insert((0, 0));
            if reserved {
                e.0 += l.quantity;
            }
            if sold {
                e.1 += l.quantity;
            }
        }
    }
    for (k, (reserved, sold)) in &held {
        if !st.items.contains_key(k) {
            r.violate(
                Invariant::StockReservedMatchesReservations,
                format!("{}/{}", k.0, k.1),
                format!("reservations hold {reserved} reserved and {sold} sold of a menu item that does not exist"),
            );
        }
    }
    for (k, i) in &st.items {
        let (reserved, sold) = held.get(k).copied().unwrap_or((0, 0));
        let subject = format!("{}/{}", k.0, k.1);
        if i.reserved != reserved {
            r.violate(
                Invariant::StockReservedMatchesReservations,
                &subject,
                format!(
                    "reserved = {} but RESERVED reservations hold {reserved}",
                    i.reserved
                ),
            );
        }
        if i.sold != sold {
            r.violate(
                Invariant::StockSoldMatchesReservations,
                &subject,
                format!("sold = {} but SOLD reservations hold {sold}", i.sold),
            );
        }
    }
    // Terminal orders and their reservation.
    for (id, o) in &st.orders {
        let res = st.reservations.get(id).map(|r| r.status.as_str());
        match o.status() {
            "DELIVERED" if res != Some("SOLD") => r.violate(
                Invariant::DeliveredStockSold,
                format!("order {id}"),
                format!(
                    "DELIVERED but its reservation is {}",
                    res.unwrap_or("missing")
                ),
            ),
            "CANCELLED" if matches!(res, Some("RESERVED" | "SOLD")) => r.violate(
                Invariant::CancelledStockReleased,
                format!("order {id}"),
                format!(
                    "CANCELLED ({}) but its reservation is still {}",
                    o.saga.cancel_reason.as_deref().unwrap_or("no reason"),
                    res.unwrap_or_default()
                ),
            ),
            _ => {}
        }
    }
}
