//! Invariant 4: a courier is on at most one active delivery. A courier is AVAILABLE
//! (listed as free), BUSY (on its `activeOrderId`) or OFF_SHIFT (neither); a delivery
//! WAITING for a courier has none and is listed in the waiting index.

use crate::state::State;
use crate::{CourierState, Invariant, Report};

pub(crate) fn check_couriers(st: &State, q: bool, r: &mut Report) {
    for (c, v) in &st.couriers {
        r.couriers.insert(
            c.clone(),
            CourierState {
                status: v.status.clone(),
                active_order_id: v.active_order_id.clone(),
                dispatched: Vec::new(),
            },
        );
        let problem = match v.status.as_str() {
            "AVAILABLE" if v.active_order_id.is_some() => Some(format!(
                "AVAILABLE but activeOrderId = {}",
                v.active_order_id.as_deref().unwrap_or_default()
            )),
            "AVAILABLE" if v.gsi1pk.is_none() => {
                Some("AVAILABLE but not in the free-courier index (no gsi1pk)".to_owned())
            }
            "BUSY" if v.active_order_id.is_none() => {
                Some("BUSY without an activeOrderId".to_owned())
            }
            "BUSY" if v.gsi1pk.is_some() => {
                Some("BUSY but still in the free-courier index (gsi1pk set)".to_owned())
            }
            "OFF_SHIFT" if v.active_order_id.is_some() => Some(format!(
                "OFF_SHIFT but activeOrderId = {}",
                v.active_order_id.as_deref().unwrap_or_default()
            )),
            "OFF_SHIFT" if v.gsi1pk.is_some() => {
                Some("OFF_SHIFT but still in the free-courier index (gsi1pk set)".to_owned())
            }
            "AVAILABLE" | "BUSY" | "OFF_SHIFT" => None,
            other => Some(format!("unknown status {other:?}")),
        };
        if let Some(p) = problem {
            r.violate(Invariant::CourierStateConsistent, format!("courier {c}"), p);
        }
    }
    for (id, d) in &st.deliveries {
        if !st.orders.contains_key(id) {
            r.violate(
                Invariant::RecordHasOrder,
                format!("delivery {id}"),
                format!("{} delivery for an order that does not exist", d.status),
            );
        }
        let waiting_problem = match (d.status.as_str(), &d.courier_id, &d.gsi1pk) {
            ("WAITING", Some(c), _) => Some(format!("WAITING but names courier {c}")),
            ("WAITING", _, None) => {
                Some("WAITING but not in the waiting index (no gsi1pk)".to_owned())
            }
            (s, _, Some(_)) if s != "WAITING" => {
                Some(format!("{s} but still in the waiting index (gsi1pk set)"))
            }
            _ => None,
        };
        if let Some(p) = waiting_problem {
            r.violate(
                Invariant::CourierStateConsistent,
                format!("delivery {id}"),
                p,
            );
        }
        if d.status == "DISPATCHED" {
            let c = d.courier_id.clone().unwrap_or_default();
            r.couriers.entry(c).or_default().dispatched.push(id.clone());
        }
    }
    if !q {
        return;
    }
    for (c, s) in &r.couriers.clone() {
        let subject = format!("courier {c}");
        if s.dispatched.len() > 1 {
            r.violate(
                Invariant::CourierSingleDelivery,
                &subject,
                format!(
                    "on {} DISPATCHED deliveries: {}",
                    s.dispatched.len(),
                    s.dispatched.join(", ")
                ),
            );
        }
        if !st.couriers.contains_key(c) {
            r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "named by DISPATCHED deliveries {} but no such courier",
                    s.dispatched.join(", ")
                ),
            );
            continue;
        }
        match (s.status.as_str(), s.dispatched.as_slice()) {
            ("BUSY", [one]) if s.active_order_id.as_deref() == Some(one.as_str()) => {}
            ("BUSY", [one]) => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "BUSY with activeOrderId {} but its DISPATCHED delivery is {one}",
                    s.active_order_id.as_deref().unwrap_or("-")
                ),
            ),
            ("BUSY", []) => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "BUSY (activeOrderId {}) but no DISPATCHED delivery names it",
                    s.active_order_id.as_deref().unwrap_or("-")
                ),
            ),
            ("BUSY", _) => {} // reported as CourierSingleDelivery
            (status, d) if !d.is_empty() => r.violate(
                Invariant::CourierBusyMatchesDelivery,
                &subject,
                format!(
                    "{status} but DISPATCHED deliveries name it: {}",
                    d.join(", ")
                ),
            ),
            _ => {}
        }
    }
    for (id, o) in &st.orders {
        let d = st.deliveries.get(id).map(|d| d.status.as_str());
        match o.status() {
            // A waiting delivery of a cancelled order would take a courier later.
            "CANCELLED" if d == Some("WAITING") => r.violate(
                Invariant::CancelledCourierReleased,
                format!("order {id}"),
                "CANCELLED but its delivery is still WAITING for a courier".to_owned(),
            ),
            "CANCELLED" if d == Some("DISPATCHED") => r.violate(
                Invariant::CancelledCourierReleased,
                format!("order {id}"),
                format!(
                    "CANCELLED but its delivery is still DISPATCHED to {}",
                    st.deliveries[id].courier_id.as_deref().unwrap_or("-")
                ),
            ),
            "DELIVERED" if d != Some("DELIVERED") => r.violate(
                Invariant::DeliveredRecorded,
                format!("order {id}"),
                format!("DELIVERED but its delivery is {}", d.unwrap_or("missing")),
            ),
            _ => {}
        }
    }
}
