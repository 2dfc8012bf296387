//! The checks, one family per module, run over everything read.

mod couriers;
mod ledger;
mod money;
mod stock;
#[cfg(test)]
mod tests;

use crate::report::{OrderRecords, Scanned};
use crate::state::State;
use crate::views::is_terminal;
use crate::{CheckOptions, Invariant, Report};

use couriers::check_couriers;
use money::check_money;
use stock::check_stock;

pub(crate) fn evaluate(mut st: State, opts: &CheckOptions) -> Report {
    let q = opts.expect_quiescent;
    let mut r = Report {
        quiescent: q,
        scanned: Scanned {
            orders: st.orders.len(),
            menu_items: st.items.len(),
            reservations: st.reservations.len(),
            wallets: st.wallets.len(),
            payments: st.payments.len(),
            couriers: st.couriers.len(),
            deliveries: st.deliveries.len(),
            other: st.other,
        },
        ..Default::default()
    };
    r.violations.append(&mut st.unreadable);

    // Orders (invariant 1).
    for (id, o) in &st.orders {
        *r.orders_by_status.entry(o.status().to_owned()).or_insert(0) += 1;
        if q && !is_terminal(o.status()) {
            r.violate(
                Invariant::OrderTerminal,
                format!("order {id}"),
                format!(
                    "still {} (last change {}{})",
                    o.status(),
                    o.updated_at,
                    o.saga
                        .cancel_reason
                        .as_deref()
                        .map(|c| format!(", reason {c}"))
                        .unwrap_or_default()
                ),
            );
        }
        if o.status() == "COMPENSATION_FAILED" {
            r.compensation_failed.push(id.clone());
            r.left_behind.insert(
                id.clone(),
                OrderRecords {
                    reservation: st.reservations.get(id).map(|x| x.status.clone()),
                    payment: st.payments.get(id).map(|x| x.status.clone()),
                    delivery: st.deliveries.get(id).map(|x| x.status.clone()),
                },
            );
            match &opts.alerted_orders {
                None => r.unverified_alerts.push(id.clone()),
                Some(alerted) if q && !alerted.contains(id) => r.violate(
                    Invariant::CompensationFailedAlerted,
                    format!("order {id}"),
                    "COMPENSATION_FAILED but no CompensationFailed alert was seen on the ops topic"
                        .into(),
                ),
                Some(_) => {}
            }
        }
    }

    check_stock(&st, q, &mut r);
    check_money(&st, opts, &mut r);
    check_couriers(&st, q, &mut r);

    r.violations.sort();
    r
}
